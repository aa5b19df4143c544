"""Writes for strategies: one transaction each, with an audit row (StrategyEvent)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from brokers.models import AccountStatus, BrokerAccount
from execution.markettime import IST
from execution.models import Underlying
from execution.reference import contracts
from trader.audit_context import audit_via
from trader.models import (
    BrokerAllocation,
    Leg,
    RiskLimit,
    Strategy,
    StrategyEvent,
    StrategyStatus,
    StrategyVersion,
    User,
)
from trader.strategies import selectors
from trader.strategies.specs import (
    AllocationSpec,
    Errors,
    LegSpec,
    Limits,
    StrategySpec,
    allocation_errors,
    allocations_total_errors,
    expiry_choice_error,
    leg_errors,
    legs_errors,
    money_errors,
    times_errors,
    trading_days_errors,
)
from trader.strategies.templates_catalog import template_get


class StrategyStateError(ValueError):
    """The action does not apply to the strategy in its current status."""


def _today() -> datetime.date:
    return timezone.now().astimezone(IST).date()


def _record(strategy: Strategy, *, actor: User | None, action: str, **detail: Any) -> None:
    StrategyEvent.objects.create(
        strategy=strategy, actor=actor, action=action, detail={**detail, **audit_via()}
    )


def _raise_if(errors: Errors) -> None:
    if errors:
        raise ValidationError(errors)


def strike_step_for(underlying: Underlying, on: datetime.date) -> Decimal | None:
    try:
        return Decimal(contracts.strike_step(underlying, on))
    except LookupError:
        return None


def strategy_spec_errors(
    *, user: User, spec: StrategySpec, limits: Limits | None = None
) -> tuple[Underlying | None, Errors]:
    """Every rule a strategy must satisfy, as {field: [messages]}; legs as `legs-N-field`."""
    errors: Errors = {}
    limits = limits or selectors.risk_limits_for_user(user=user)
    underlying = Underlying.objects.filter(pk=spec.underlying_id, is_active=True).first()
    if underlying is None:
        errors["underlying"] = ["Choose an underlying from the list."]
    if not spec.name.strip():
        errors["name"] = ["Give the strategy a name."]
    today = _today()
    session = selectors.session_times_for(
        exchange=underlying.exchange if underlying else "NSE", on=today
    )
    for key, messages in (
        times_errors(spec.entry_time, spec.exit_time, session=session, on=today)
        | trading_days_errors(spec.trading_days)
        | money_errors(
            {
                "stop_loss_mtm": spec.stop_loss_mtm,
                "target_mtm": spec.target_mtm,
                "trailing_stop_mtm": spec.trailing_stop_mtm,
            }
        )
    ).items():
        errors.setdefault(key, []).extend(messages)
    step = strike_step_for(underlying, today) if underlying else None
    symbol = underlying.symbol if underlying else ""
    kinds = selectors.expiry_kinds_for(underlying=underlying, on=today) if underlying else None
    for index, leg in enumerate(spec.legs):
        for key, messages in leg_errors(
            leg, strike_step=step, limits=limits, symbol=symbol, expiry_kinds=kinds
        ).items():
            errors[f"legs-{index}-{key}"] = messages
    template = template_get(spec.template)
    set_errors = legs_errors(
        spec.legs,
        limits=limits,
        needs_distinct_expiries=bool(template and template.needs_distinct_expiries),
    )
    if set_errors:
        errors["legs"] = set_errors
    errors.update(_allocation_spec_errors(user=user, spec=spec, limits=limits))
    return underlying, errors


def _allocation_spec_errors(*, user: User, spec: StrategySpec, limits: Limits) -> Errors:
    errors: Errors = {}
    ids = [a.broker_account_id for a in spec.allocations]
    accounts = {a.pk: a for a in BrokerAccount.objects.filter(pk__in=ids, owner=user)}
    for index, allocation in enumerate(spec.allocations):
        account = accounts.get(allocation.broker_account_id)
        if account is None:
            # Same words whether the account exists for someone else or not at all.
            errors[f"allocations-{index}-broker_account"] = [
                "Choose one of your own broker accounts."
            ]
            continue
        if account.status == AccountStatus.DISABLED:
            errors[f"allocations-{index}-broker_account"] = [
                f"{account.label} is disabled: enable it or choose another account."
            ]
        for key, messages in allocation_errors(allocation, legs=spec.legs, limits=limits).items():
            errors[f"allocations-{index}-{key}"] = messages
    total = allocations_total_errors(spec.allocations, legs=spec.legs, limits=limits)
    if total:
        errors["allocations"] = total
    return errors


def _create_version(
    *, strategy: Strategy, spec: StrategySpec, number: int, effective_from: datetime.date
) -> StrategyVersion:
    version = StrategyVersion.objects.create(
        strategy=strategy,
        number=number,
        entry_time=spec.entry_time,
        exit_time=spec.exit_time,
        trading_days=spec.trading_days,
        stop_loss_mtm=spec.stop_loss_mtm,
        target_mtm=spec.target_mtm,
        trailing_stop_mtm=spec.trailing_stop_mtm,
        effective_from=effective_from,
    )
    Leg.objects.bulk_create(
        [
            Leg(version=version, position=position, **_leg_fields(leg.normalized()))
            for position, leg in enumerate(spec.legs, start=1)
        ]
    )
    return version


def _leg_fields(leg: LegSpec) -> dict[str, Any]:
    return {
        "side": leg.side,
        "option_type": leg.option_type,
        "lots": leg.lots,
        "expiry_choice": leg.expiry_choice,
        "strike_mode": leg.strike_mode,
        "strike_offset": leg.strike_offset,
        "strike_price": leg.strike_price,
        "target_premium": leg.target_premium,
        "target_delta": leg.target_delta,
        "stop_loss": leg.stop_loss,
        "stop_loss_unit": leg.stop_loss_unit,
        "target": leg.target,
        "target_unit": leg.target_unit,
    }


def _replace_allocations(*, strategy: Strategy, allocations: Sequence[AllocationSpec]) -> None:
    keep = {a.broker_account_id for a in allocations}
    strategy.allocations.exclude(broker_account_id__in=keep).delete()
    for allocation in allocations:
        BrokerAllocation.objects.update_or_create(
            strategy=strategy,
            broker_account_id=allocation.broker_account_id,
            defaults={
                "sizing": allocation.sizing,
                "multiplier": allocation.multiplier if allocation.sizing == "multiplier" else None,
                "fixed_lots": allocation.fixed_lots if allocation.sizing == "fixed" else None,
                "priority": allocation.priority,
                "enabled": allocation.enabled,
            },
        )


@transaction.atomic
def strategy_create(*, user: User, spec: StrategySpec) -> Strategy:
    """Create a draft strategy with version 1, its legs and allocations.

    Raises ValidationError ({field: [messages]}) and saves nothing when any rule fails.
    """
    underlying, errors = strategy_spec_errors(user=user, spec=spec)
    _raise_if(errors)
    assert underlying is not None  # a missing underlying is one of the errors raised above
    strategy = Strategy.objects.create(
        owner=user,
        name=spec.name.strip(),
        description=spec.description.strip(),
        underlying=underlying,
        kind=spec.kind,
        template=spec.template,
        leg_failure_policy=spec.leg_failure_policy,
        hedge_confirmation=spec.hedge_confirmation,
    )
    version = _create_version(strategy=strategy, spec=spec, number=1, effective_from=_today())
    strategy.current_version = version
    strategy.save(update_fields=["current_version"])
    _replace_allocations(strategy=strategy, allocations=spec.allocations)
    _record(strategy, actor=user, action="created", version=1, template=spec.template)
    return strategy


@transaction.atomic
def strategy_update(*, user: User, strategy: Strategy, spec: StrategySpec) -> StrategyVersion:
    """Save an edit as a new version; versions already written are never changed.

    An active strategy's new version applies from the next session (today's runs keep the
    version they were planned with); a draft's or paused one's applies today. Raises
    ValidationError and saves nothing when a rule fails, StrategyStateError when archived.
    """
    strategy = Strategy.objects.select_for_update().get(pk=strategy.pk, owner=user)
    if strategy.status == StrategyStatus.ARCHIVED:
        raise StrategyStateError("An archived strategy cannot be edited; duplicate it instead.")
    underlying, errors = strategy_spec_errors(user=user, spec=spec)
    changes_underlying = underlying is not None and underlying.pk != strategy.underlying_id
    if changes_underlying and strategy.status != StrategyStatus.DRAFT:
        errors.setdefault("underlying", []).append(
            "The underlying can only change while the strategy is a draft."
        )
    _raise_if(errors)
    assert underlying is not None  # a missing underlying is one of the errors raised above
    today = _today()
    if strategy.status == StrategyStatus.ACTIVE:
        try:
            effective_from = selectors.next_session_after(today, exchange=underlying.exchange)
        except LookupError:
            # No session is known ahead (next year's holidays not loaded): from tomorrow, so
            # today's runs, if the year is loaded later today, keep the version they had.
            effective_from = today + datetime.timedelta(days=1)
    else:
        effective_from = today
    number = (strategy.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = _create_version(
        strategy=strategy, spec=spec, number=number, effective_from=effective_from
    )
    strategy.name = spec.name.strip()
    strategy.description = spec.description.strip()
    strategy.underlying = underlying
    strategy.kind = spec.kind
    strategy.leg_failure_policy = spec.leg_failure_policy
    strategy.hedge_confirmation = spec.hedge_confirmation
    strategy.current_version = version
    strategy.save()
    _replace_allocations(strategy=strategy, allocations=spec.allocations)
    _record(
        strategy,
        actor=user,
        action="edited",
        version=number,
        effective_from=effective_from.isoformat(),
    )
    return version


@transaction.atomic
def allocation_set(
    *, user: User, strategy: Strategy, allocations: Sequence[AllocationSpec]
) -> list[BrokerAllocation]:
    """Replace the strategy's broker allocations. Raises ValidationError, saving nothing."""
    strategy = Strategy.objects.select_for_update().get(pk=strategy.pk, owner=user)
    version = strategy.current_version
    legs = [
        LegSpec(side=leg.side, option_type=leg.option_type, lots=leg.lots)
        for leg in (version.legs.all() if version else [])
    ]
    limits = selectors.risk_limits_for_user(user=user)
    spec_like = StrategySpec(
        name=strategy.name,
        underlying_id=strategy.underlying_id,
        legs=legs,
        entry_time=datetime.time(9, 15),
        exit_time=datetime.time(15, 30),
        allocations=allocations,
    )
    _raise_if(_allocation_spec_errors(user=user, spec=spec_like, limits=limits))
    _replace_allocations(strategy=strategy, allocations=allocations)
    _record(strategy, actor=user, action="allocations_set", accounts=len(allocations))
    return list(strategy.allocations.order_by("priority", "id"))


def _transition(
    *, user: User, strategy: Strategy, allowed_from: Sequence[str], to: str, action: str
) -> Strategy:
    # A conditional UPDATE: two clicks racing cannot both succeed, and nothing is read first.
    changed = Strategy.objects.filter(
        pk=strategy.pk, owner=user, status__in=list(allowed_from)
    ).update(status=to, updated_at=timezone.now())
    if not changed:
        current = Strategy.objects.filter(pk=strategy.pk).values_list("status", flat=True).first()
        label = StrategyStatus(current).label.lower() if current else "missing"
        raise StrategyStateError(f"Cannot {action} a strategy that is {label}.")
    strategy.refresh_from_db()
    _record(strategy, actor=user, action=f"{action}d" if action.endswith("e") else f"{action}ed")
    return strategy


@transaction.atomic
def strategy_activate(*, user: User, strategy: Strategy) -> Strategy:
    """Start trading from the next planned session.

    Refused (StrategyStateError, nothing changed) without an enabled allocation on an account
    that is not disabled, or when the user already runs their maximum of open strategies.
    """
    locked = Strategy.objects.select_for_update().get(pk=strategy.pk, owner=user)
    usable = locked.allocations.filter(enabled=True).exclude(
        broker_account__status=AccountStatus.DISABLED
    )
    if not usable.exists():
        raise StrategyStateError("Allocate at least one enabled broker account before activating.")
    _raise_if_legs_unresolvable(locked)
    limits = selectors.risk_limits_for_user(user=user)
    open_count = (
        Strategy.objects.filter(owner=user, status=StrategyStatus.ACTIVE)
        .exclude(pk=locked.pk)
        .count()
    )
    if open_count >= limits.max_open_strategies:
        raise StrategyStateError(
            f"You already have {open_count} active strategies, your limit of "
            f"{limits.max_open_strategies}. Pause one first."
        )
    strategy = _transition(
        user=user,
        strategy=locked,
        allowed_from=[StrategyStatus.DRAFT, StrategyStatus.PAUSED],
        to=StrategyStatus.ACTIVE,
        action="activate",
    )
    Strategy.objects.filter(pk=strategy.pk).update(activated_at=timezone.now())
    return strategy


def _raise_if_legs_unresolvable(strategy: Strategy) -> None:
    """Refuse to activate legs that can never resolve (a weekly of a monthly-only index)."""
    version = strategy.versions.order_by("-number").first()
    if version is None:
        raise StrategyStateError("The strategy has no version to activate.")
    underlying = strategy.underlying
    kinds = selectors.expiry_kinds_for(underlying=underlying, on=_today())
    if kinds is None:
        return  # reference data gaps hold runs later, with their reason
    for leg in version.legs.all():
        message = expiry_choice_error(leg.expiry_choice, symbol=underlying.symbol, available=kinds)
        if message:
            raise StrategyStateError(f"Leg {leg.position} cannot be traded: {message}")


@transaction.atomic
def strategy_pause(*, user: User, strategy: Strategy) -> Strategy:
    """Stop planning new runs. Positions already open still exit at their exit time."""
    return _transition(
        user=user,
        strategy=strategy,
        allowed_from=[StrategyStatus.ACTIVE],
        to=StrategyStatus.PAUSED,
        action="pause",
    )


@transaction.atomic
def strategy_archive(*, user: User, strategy: Strategy) -> Strategy:
    """Retire the strategy for good (it stays readable with its versions and runs)."""
    return _transition(
        user=user,
        strategy=strategy,
        allowed_from=[StrategyStatus.DRAFT, StrategyStatus.ACTIVE, StrategyStatus.PAUSED],
        to=StrategyStatus.ARCHIVED,
        action="archive",
    )


def spec_from_version(
    strategy: Strategy, version: StrategyVersion, *, with_allocations: bool = True
) -> StrategySpec:
    """The spec that would recreate `version` (the wizard's edit and duplicate start here)."""
    return StrategySpec(
        name=strategy.name,
        description=strategy.description,
        underlying_id=strategy.underlying_id,
        kind=strategy.kind,
        template=strategy.template,
        leg_failure_policy=strategy.leg_failure_policy,
        hedge_confirmation=strategy.hedge_confirmation,
        entry_time=version.entry_time,
        exit_time=version.exit_time,
        trading_days=version.trading_days,
        stop_loss_mtm=version.stop_loss_mtm,
        target_mtm=version.target_mtm,
        trailing_stop_mtm=version.trailing_stop_mtm,
        legs=[
            LegSpec(
                **{
                    name: getattr(leg, name)
                    for name in LegSpec.__dataclass_fields__
                    if hasattr(leg, name)
                }
            )
            for leg in version.legs.all()
        ],
        allocations=[
            AllocationSpec(
                broker_account_id=a.broker_account_id,
                sizing=a.sizing,
                multiplier=a.multiplier,
                fixed_lots=a.fixed_lots,
                priority=a.priority,
                enabled=a.enabled,
            )
            for a in strategy.allocations.all()
        ]
        if with_allocations
        else [],
    )


def strategy_duplicate(*, user: User, strategy: Strategy, name: str = "") -> Strategy:
    """Copy the latest version into a new draft owned by `user`.

    Allocations are copied only when `user` owns the original (accounts are personal).
    Raises ValidationError when the copy breaks `user`'s own limits.
    """
    version = strategy.current_version
    if version is None:
        raise StrategyStateError("This strategy has no version to copy.")
    spec = spec_from_version(strategy, version, with_allocations=strategy.owner_id == user.pk)
    copy_name = name.strip() or f"{strategy.name} (copy)"[:80]
    with transaction.atomic():
        copy = strategy_create(
            user=user,
            spec=StrategySpec(**{**spec.__dict__, "name": copy_name}),
        )
        _record(copy, actor=user, action="duplicated", source_strategy=strategy.pk)
    return copy


@transaction.atomic
def risk_limit_update(
    *,
    user: User,
    max_lots_per_order: int,
    max_lots_per_strategy: int,
    max_open_strategies: int,
    max_daily_loss: Decimal,
) -> RiskLimit:
    """Set the user's own limits; each must be above 0 and at most the admins' ceiling.

    Raises ValidationError ({field: [message]}) and saves nothing otherwise.
    """
    ceiling = selectors.risk_ceiling_get()
    values: dict[str, int | Decimal] = {
        "max_lots_per_order": max_lots_per_order,
        "max_lots_per_strategy": max_lots_per_strategy,
        "max_open_strategies": max_open_strategies,
        "max_daily_loss": max_daily_loss,
    }
    errors: Errors = {}
    for name, value in values.items():
        top = getattr(ceiling, name)
        if value is None or value <= 0:
            errors[name] = ["Must be above 0."]
        elif value > top:
            errors[name] = [f"The platform allows at most {top}."]
    if not errors and max_lots_per_order > max_lots_per_strategy:
        errors["max_lots_per_order"] = ["Cannot exceed your lots per strategy."]
    _raise_if(errors)
    limit, _ = RiskLimit.objects.update_or_create(user=user, defaults=values)
    return limit
