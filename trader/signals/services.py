"""Signal webhooks: making, rotating and switching off a strategy's webhook, and receiving a
signal (the hot path: checked, recorded, and its orders written and handed to the per-account
send tasks in the same request, as "Test now on paper" does).

Authentication. TradingView cannot sign a request, so the body carries the secret, compared by
its SHA-256 in constant time. A sender that can sign sends `X-Signature: sha256=<hex>`, the
HMAC-SHA256 of the raw body under the webhook's signing key (shown with the secret); with
"require a signature" on, an unsigned signal is refused. A wrong secret or signature is refused
even when the other is right.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from trader.signals.models import Signal, SignalAction, SignalOutcome, SignalWebhook

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature"
_SIGNAL_ID = re.compile(r"^[\w.:@/+=-]{1,64}$")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def signing_key(webhook: SignalWebhook) -> str:
    """The HMAC key of the webhook: derived from the server's key and the current secret's hash
    (so it changes when the secret is rotated and is never stored)."""
    return salted_hmac(
        "trader.signals.signing", f"{webhook.public_id}:{webhook.secret_hash}"
    ).hexdigest()


@dataclass(frozen=True)
class IssuedSecret:
    webhook: SignalWebhook
    secret: str
    signing_key: str


def webhook_enable(*, user: Any, strategy: Any) -> IssuedSecret:
    """Make `strategy` a signal strategy with a new secret (shown once); an existing webhook
    is switched on and gets a new secret (the old one stops working at once). Today's planned
    runs of the strategy are re-planned (a signal strategy has none)."""
    from execution.planning.replan import strategy_replan

    if strategy.owner_id != user.pk:
        raise PermissionError("Only the strategy's owner can change its webhook.")
    secret = "whs_" + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        webhook, created = SignalWebhook.objects.select_for_update().get_or_create(
            strategy=strategy,
            defaults={
                "public_id": secrets.token_urlsafe(18),
                "secret_hash": _hash(secret),
                "rotated_at": now,
            },
        )
        if not created:
            webhook.secret_hash = _hash(secret)
            webhook.rotated_at = now
            webhook.enabled = True
            webhook.save(update_fields=["secret_hash", "rotated_at", "enabled"])
        _strategy_event(strategy, user, "webhook enabled" if created else "webhook secret rotated")
        strategy_replan(strategy_id=strategy.pk)
    return IssuedSecret(webhook=webhook, secret=secret, signing_key=signing_key(webhook))


def webhook_disable(*, user: Any, strategy: Any) -> None:
    """Back to a scheduled strategy: signals are refused (404) and the planner schedules its
    entry and exit times again."""
    from execution.planning.replan import strategy_replan

    if strategy.owner_id != user.pk:
        raise PermissionError("Only the strategy's owner can change its webhook.")
    with transaction.atomic():
        if SignalWebhook.objects.filter(strategy=strategy, enabled=True).update(enabled=False):
            _strategy_event(strategy, user, "webhook disabled")
            strategy_replan(strategy_id=strategy.pk)


def webhook_signature_require(*, user: Any, strategy: Any, required: bool) -> None:
    if strategy.owner_id != user.pk:
        raise PermissionError("Only the strategy's owner can change its webhook.")
    SignalWebhook.objects.filter(strategy=strategy).update(require_signature=required)


def _strategy_event(strategy: Any, user: Any, what: str) -> None:
    from trader.audit_context import audit_via
    from trader.models import StrategyEvent

    StrategyEvent.objects.create(
        strategy=strategy, actor=user, action="webhook", detail={"what": what, **audit_via()}
    )


# --- receiving ------------------------------------------------------------------------------
@dataclass
class SignalAnswer:
    """What the webhook view answers: HTTP status and a JSON body."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


def _refuse(status: int, error: str, **extra: Any) -> SignalAnswer:
    return SignalAnswer(status, {"status": "refused", "error": error, **extra})


def _parse_timestamp(value: Any) -> datetime.datetime | None:
    """Epoch seconds (or milliseconds), or ISO 8601 with a zone (TradingView's {{timenow}})."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and re.fullmatch(r"\d{9,13}(\.\d+)?", value.strip()):
        value = float(value)
    if isinstance(value, int | float):
        seconds = float(value) / (1000 if value > 1e11 else 1)
        try:
            return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else None
    return None


def _authenticate(
    webhook: SignalWebhook, payload: dict[str, Any], body: bytes, signature: str
) -> bool | None:
    """None when refused; else whether the signal was signed."""
    signed = False
    if signature:
        given = signature.strip().removeprefix("sha256=")
        expected = hmac.new(signing_key(webhook).encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return None
        signed = True
    secret = payload.get("secret")
    if secret is not None:
        if not isinstance(secret, str) or not hmac.compare_digest(
            _hash(secret), webhook.secret_hash
        ):
            return None
    elif not signed:
        return None
    if webhook.require_signature and not signed:
        return None
    return signed


def _rate_limited(webhook: SignalWebhook) -> bool:
    from brokers.ratelimit import OrderRateLimiter

    limiter = OrderRateLimiter(namespace="signals", window_seconds=60.0)
    # Keyed by the random public id: a row id is reused by a fresh database, a budget is not.
    return limiter.take(webhook.public_id, max(1, int(settings.SIGNAL_RATE_PER_MINUTE))) > 0


def signal_receive(
    *, public_id: str, body: bytes, signature: str = "", now: datetime.datetime | None = None
) -> SignalAnswer:
    """Check one POST to a webhook and, when it passes, trade it. The answer says what
    happened; every authenticated signal is recorded with its outcome (shown on the strategy
    page). A refused or unauthenticated request changes nothing else. Never raises for bad
    input."""
    now = now or timezone.now()
    webhook = (
        SignalWebhook.objects.select_related("strategy__owner", "strategy__underlying")
        .filter(public_id=public_id, enabled=True)
        .first()
    )
    if webhook is None:
        return _refuse(404, "No such webhook.")
    if len(body) > settings.SIGNAL_MAX_BODY_BYTES:
        return _refuse(400, "Body too large.")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict):
        return _refuse(400, "The body must be a JSON object.")
    signed = _authenticate(webhook, payload, body, signature)
    if signed is None:
        SignalWebhook.objects.filter(pk=webhook.pk).update(
            auth_failures=F("auth_failures") + 1, last_auth_failure_at=now
        )
        return _refuse(401, "Wrong or missing secret or signature.")
    errors: dict[str, str] = {}
    signal_id = payload.get("signal_id")
    if not isinstance(signal_id, str) or not _SIGNAL_ID.match(signal_id):
        errors["signal_id"] = "Required: 1-64 letters, digits or . _ : @ / + = -"
    action = payload.get("action")
    if action not in SignalAction.values:
        errors["action"] = "Required: entry or exit."
    sent_at = _parse_timestamp(payload.get("timestamp"))
    if sent_at is None:
        errors["timestamp"] = "Required: epoch seconds or ISO 8601 with a time zone."
    if errors:
        return _refuse(400, "Invalid signal.", fields=errors)
    assert isinstance(signal_id, str) and sent_at is not None and isinstance(action, str)
    earlier = Signal.objects.filter(webhook=webhook, signal_id=signal_id).first()
    if earlier is not None:
        return _duplicate(earlier)
    reason, status = _refusal(webhook, action, sent_at, now)
    outcome = SignalOutcome.REFUSED if reason else SignalOutcome.ACCEPTED
    try:
        with transaction.atomic():
            signal = Signal.objects.create(
                webhook=webhook,
                signal_id=signal_id,
                action=action,
                sent_at=sent_at,
                received_at=now,
                signed=signed,
                outcome=outcome,
                reason=reason,
            )
    except IntegrityError:  # the same id arrived twice at once: the other one answers it
        return _duplicate(Signal.objects.get(webhook=webhook, signal_id=signal_id))
    if reason:
        return _refuse(status, reason, signal_id=signal_id)
    try:
        if action == SignalAction.ENTRY:
            _entry_trade(webhook, signal, now)
        else:
            _exit_trade(webhook, signal, now)
    except Exception:  # the sender gets an answer and the strategy page the outcome, not a 500
        logger.exception("signal %s of webhook %s could not be traded", signal.pk, webhook.pk)
        _settle(
            signal, SignalOutcome.NOT_SENT, "Internal error while trading it: check the runs page."
        )
    return SignalAnswer(
        202 if signal.outcome == SignalOutcome.ACCEPTED else 409,
        {
            "status": signal.outcome,
            "signal_id": signal_id,
            "orders": signal.orders,
            "runs": signal.run_ids,
            **({"reason": signal.reason} if signal.reason else {}),
        },
    )


def _duplicate(signal: Signal) -> SignalAnswer:
    return SignalAnswer(
        200,
        {
            "status": "duplicate",
            "signal_id": signal.signal_id,
            "first_outcome": signal.outcome,
            "reason": signal.reason,
            "runs": signal.run_ids,
        },
    )


def _refusal(
    webhook: SignalWebhook, action: str, sent_at: datetime.datetime, now: datetime.datetime
) -> tuple[str, int]:
    """Why this signal is refused, with the HTTP status, or ("", 0)."""
    from execution.protection.killswitch import kill_switches_engaged
    from execution.reference import calendar
    from trader.models import StrategyStatus

    strategy = webhook.strategy
    window = settings.SIGNAL_MAX_AGE_SECONDS
    age = (now - sent_at).total_seconds()
    if abs(age) > window:
        return (
            f"Stale: sent {age:.0f} s from now; signals are taken within {window} s of their "
            "timestamp.",
            409,
        )
    if _rate_limited(webhook):
        return f"Over the limit of {settings.SIGNAL_RATE_PER_MINUTE} signals a minute.", 429
    if strategy.status != StrategyStatus.ACTIVE:
        return f"The strategy is {strategy.get_status_display().lower()}, not active.", 409
    # Exits still go while the switch is engaged: they only reduce what is open.
    if action == SignalAction.ENTRY and kill_switches_engaged(user=strategy.owner):
        return "Kill switch engaged: no new entries until it is re-armed.", 409
    closed = calendar.closed_reason(now, strategy.underlying.exchange)
    if closed:
        return f"Market closed: {closed}.", 409
    return "", 0


def _allocations(strategy: Any) -> list[dict[str, Any]]:
    from django.db.models import prefetch_related_objects

    from execution.planning.sources import strategy_allocations

    prefetch_related_objects([strategy], "allocations__broker_account", "algo_ids")
    return [a.to_json() for a in strategy_allocations(strategy)]


def _entry_trade(webhook: SignalWebhook, signal: Signal, now: datetime.datetime) -> None:
    """One entry run at `now`, dispatched at once through the boundary dispatcher (risk
    checks, strikes, intents, then one send task per account after the commit)."""
    from execution.audit import event_record
    from execution.dispatch import boundary_dispatch
    from execution.markettime import IST
    from execution.models import Boundary, ScheduledRun, SpecialSession
    from trader.strategies.selectors import strategy_version_for_day

    strategy = webhook.strategy
    day = now.astimezone(IST).date()
    version = strategy_version_for_day(strategy_id=strategy.pk, on=day)
    allocations = _allocations(strategy)
    if version is None or not allocations:
        problem = (
            "The strategy has no version in force today."
            if version is None
            else "No enabled broker account is allocated to the strategy."
        )
        _settle(signal, SignalOutcome.NOT_SENT, problem)
        return
    special = None
    if day.isoweekday() >= 6:  # a weekend session is a declared special session
        special = SpecialSession.objects.filter(
            exchange=strategy.underlying.exchange, date=day
        ).first()
    with transaction.atomic():
        run = ScheduledRun.objects.create(
            session_date=day,
            boundary=Boundary.ENTRY,
            fire_at=now,
            strategy_version=version,
            owner_id=strategy.owner_id,
            source="signal",
            source_ref=str(signal.pk),
            allocations=allocations,
            special_session=special,
            multiplier=Decimal(1),
        )
        event_record(
            kind="signal.entry",
            message=f"Entry signal {signal.signal_id} for {strategy.name}.",
            user_id=strategy.owner_id,
            run_id=run.pk,
            data={"signal": signal.pk, "signed": signal.signed},
        )
    result = boundary_dispatch(fire_at=now, wait=False, run_ids=[run.pk], late_cap=False)
    signal.run_ids = [run.pk]
    if result.intents:
        _settle(signal, SignalOutcome.ACCEPTED, "", orders=result.intents)
    else:
        _settle(signal, SignalOutcome.NOT_SENT, result.skipped.get(run.pk, "Nothing to send."))


def _exit_trade(webhook: SignalWebhook, signal: Signal, now: datetime.datetime) -> None:
    """Close what the strategy's signal entries hold, like the trader's own exit (positions
    whose closing orders are already working are left to them: never closed twice)."""
    from execution.models import Boundary, ScheduledRun
    from execution.orders.runs import ExitError, run_exit

    entries = list(
        ScheduledRun.objects.filter(
            strategy_version__strategy=webhook.strategy,
            source="signal",
            boundary=Boundary.ENTRY,
        )
        .filter(Q(positions__net_quantity__lt=0) | Q(positions__net_quantity__gt=0))
        .select_related("entry_run")
        .distinct()
        .order_by("pk")
    )
    orders = 0
    problems = []
    for run in entries:
        try:
            orders += len(
                run_exit(
                    actor=f"signal {signal.signal_id}",
                    run=run,
                    reason=f"exit signal {signal.signal_id}"[:60],
                    now=now,
                )
            )
        except ExitError as exc:
            problems.append(str(exc))
    signal.run_ids = [r.pk for r in entries]
    if orders:
        _settle(signal, SignalOutcome.ACCEPTED, "", orders=orders)
    else:
        _settle(
            signal,
            SignalOutcome.NOT_SENT,
            problems[0] if problems else "Nothing to exit: no open position from a signal.",
        )


def _settle(signal: Signal, outcome: str, reason: str, orders: int = 0) -> None:
    signal.outcome, signal.reason, signal.orders = outcome, reason, orders
    signal.save(update_fields=["outcome", "reason", "orders", "run_ids"])
