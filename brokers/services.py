"""Writes for broker accounts: create, log in (OAuth with a signed single-use state), test,
disconnect, and the one place where an adapter error changes an account's status.

Network calls to brokers never happen inside a transaction: claim or record first, call the
broker, then record the answer.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from brokers.base import (
    AuthError,
    BrokerError,
    Funds,
    PermanentError,
    StaticIPError,
    TokenGrant,
)
from brokers.models import AccountEvent, AccountStatus, Broker, BrokerAccount, LoginState
from brokers.paper.models import PaperAccount
from brokers.registry import AdapterUnavailableError, adapter_class, get_adapter
from trader.india import rupees
from trader.models import User

logger = logging.getLogger(__name__)

_STATE_SALT = "brokers.login-state"


class ProfileIncompleteError(Exception):
    """Brokers and SEBI need the trader's identity before an account is connected."""


class LoginStateError(Exception):
    """The `state` that came back from the broker is not one we issued, was used, or expired."""


def _event(
    *, account: BrokerAccount, kind: str, actor: User | None = None, message: str = ""
) -> None:
    AccountEvent.objects.create(account=account, kind=kind, actor=actor, message=message)


def _profile_is_complete(user: User) -> bool:
    profile = getattr(user, "profile", None)
    return bool(profile and profile.is_complete)


@transaction.atomic
def broker_account_create(
    *,
    owner: User,
    broker: str,
    label: str,
    api_key: str = "",
    api_secret: str = "",
    broker_user_id: str = "",
    static_ip_primary: str | None = None,
    static_ip_secondary: str | None = None,
    algo_id: str = "",
    orders_per_second: int = 10,
) -> BrokerAccount:
    """Create a (not yet logged-in) account. Raises ProfileIncompleteError when the owner's
    profile is incomplete; a paper account also gets its paper book with starting cash."""
    if not _profile_is_complete(owner):
        raise ProfileIncompleteError("Complete your profile before connecting a broker.")
    account = BrokerAccount.objects.create(
        owner=owner,
        broker=broker,
        label=label.strip(),
        api_key=api_key.strip(),
        api_secret=api_secret.strip(),
        broker_user_id=broker_user_id.strip(),
        static_ip_primary=static_ip_primary or None,
        static_ip_secondary=static_ip_secondary or None,
        algo_id=algo_id.strip(),
        orders_per_second=orders_per_second,
        status=AccountStatus.EXPIRED,
    )
    if broker == Broker.PAPER:
        cash = Decimal(settings.PAPER_STARTING_CASH)
        PaperAccount.objects.create(account=account, starting_cash=cash, cash=cash)
    _event(account=account, kind=AccountEvent.Kind.CREATED, actor=owner)
    return account


def paper_label_for(*, owner: User) -> str:
    """A free label for one more paper account: "Paper", then "Paper 2", "Paper 3"…"""
    taken = set(BrokerAccount.objects.filter(owner=owner).values_list("label", flat=True))
    label, n = "Paper", 1
    while label in taken:
        n += 1
        label = f"Paper {n}"
    return label


@transaction.atomic
def broker_account_update(
    *,
    account: BrokerAccount,
    actor: User,
    label: str,
    broker_user_id: str,
    static_ip_primary: str | None,
    static_ip_secondary: str | None,
    algo_id: str,
    orders_per_second: int,
    api_key: str = "",
    api_secret: str = "",
) -> BrokerAccount:
    """Change an account's settings. Blank api_key/api_secret keep the stored ones (they are
    never shown back). New app credentials end the current session: log in again."""
    account = BrokerAccount.objects.select_for_update().get(pk=account.pk)
    account.label = label.strip()
    account.broker_user_id = broker_user_id.strip()
    account.static_ip_primary = static_ip_primary or None
    account.static_ip_secondary = static_ip_secondary or None
    account.algo_id = algo_id.strip()
    account.orders_per_second = orders_per_second
    changed_credentials = bool(api_key.strip() or api_secret.strip())
    if api_key.strip():
        account.api_key = api_key.strip()
    if api_secret.strip():
        account.api_secret = api_secret.strip()
    if changed_credentials:
        _clear_session(account)
        account.status = AccountStatus.EXPIRED
        account.last_error = "New app credentials were saved: log in to the broker again."
    account.save()
    _event(
        account=account,
        kind=AccountEvent.Kind.SETTINGS_CHANGED,
        actor=actor,
        message="App credentials replaced." if changed_credentials else "",
    )
    return account


def _clear_session(account: BrokerAccount) -> None:
    account.access_token = ""
    account.refresh_token = ""
    account.token_issued_at = None
    account.token_expires_at = None


# --- login (OAuth) ------------------------------------------------------------------------


def _sign_state(nonce: str) -> str:
    return signing.TimestampSigner(salt=_STATE_SALT).sign(nonce)


def _unsign_state(state: str) -> str:
    try:
        return signing.TimestampSigner(salt=_STATE_SALT).unsign(
            state, max_age=settings.BROKER_LOGIN_STATE_MAX_AGE
        )
    except signing.SignatureExpired as exc:
        raise LoginStateError("The broker login took too long. Please start it again.") from exc
    except signing.BadSignature as exc:
        raise LoginStateError(
            "This login link was not issued by us or was altered. Please start it again."
        ) from exc


@dataclass(frozen=True)
class LoginStart:
    url: str  # the broker's login page
    state: str  # signed; brokers that do not echo it back (Dhan) get it from the session


def login_start(*, account: BrokerAccount, actor: User, redirect_uri: str) -> LoginStart:
    """Issue a signed single-use `state` for this account and return the broker's login URL.

    Raises AdapterUnavailableError if the broker's adapter is not installed and BrokerError if
    the adapter cannot build the URL (for example missing app credentials)."""
    nonce = secrets.token_urlsafe(24)
    with transaction.atomic():
        LoginState.objects.create(
            account=account,
            nonce=nonce,
            expires_at=timezone.now() + timedelta(seconds=settings.BROKER_LOGIN_STATE_MAX_AGE),
        )
        _event(account=account, kind=AccountEvent.Kind.LOGIN_STARTED, actor=actor)
    state = _sign_state(nonce)
    url = get_adapter(account).login_url(state=state, redirect_uri=redirect_uri)
    return LoginStart(url=url, state=state)


def _claim_state(*, state: str, broker: str, user: User) -> BrokerAccount:
    nonce = _unsign_state(state)
    now = timezone.now()
    # One conditional UPDATE settles reuse races: only the first callback flips used_at.
    claimed = LoginState.objects.filter(
        nonce=nonce,
        used_at__isnull=True,
        expires_at__gt=now,
        account__broker=broker,
        account__owner=user,
    ).update(used_at=now)
    if claimed != 1:
        raise LoginStateError(
            "This login link was already used or has expired. Please start the login again."
        )
    return LoginState.objects.select_related("account").get(nonce=nonce).account


@dataclass(frozen=True)
class LoginResult:
    account: BrokerAccount
    error: str = ""  # in words, when the broker refused the token exchange


def login_complete(
    *, broker: str, user: User, params: dict[str, str], redirect_uri: str
) -> LoginResult:
    """Check `state`, exchange the broker's code/request token for a session and store it.

    Raises LoginStateError (and stores nothing) for a tampered, reused, foreign or expired
    state. A broker refusal is recorded on the account and returned in words."""
    account = _claim_state(state=params.get("state", ""), broker=broker, user=user)
    adapter = get_adapter(account)
    try:
        grant = adapter.exchange_token(params=params, redirect_uri=redirect_uri)
    except BrokerError as exc:
        message = f"{account.get_broker_display()} refused the login: {exc.message}"
        with transaction.atomic():
            BrokerAccount.objects.filter(pk=account.pk).update(
                status=AccountStatus.ERROR, last_error=message, updated_at=timezone.now()
            )
            _event(
                account=account, kind=AccountEvent.Kind.LOGIN_FAILED, actor=user, message=message
            )
        logger.info("broker login refused for account %s: %s", account.pk, exc.code or "-")
        account.refresh_from_db()
        return LoginResult(account=account, error=message)
    return LoginResult(account=_store_grant(account=account, grant=grant, actor=user))


@transaction.atomic
def _store_grant(*, account: BrokerAccount, grant: TokenGrant, actor: User) -> BrokerAccount:
    account = BrokerAccount.objects.select_for_update().get(pk=account.pk)
    account.access_token = grant.access_token
    account.refresh_token = grant.refresh_token
    account.token_issued_at = grant.issued_at
    account.token_expires_at = grant.expires_at
    if grant.broker_user_id:
        account.broker_user_id = grant.broker_user_id
    account.status = AccountStatus.CONNECTED
    account.last_error = ""
    account.save()
    _event(
        account=account,
        kind=AccountEvent.Kind.CONNECTED,
        actor=actor,
        message=f"Session valid until {timezone.localtime(grant.expires_at):%d %b %Y %H:%M} IST.",
    )
    return account


# --- status from adapter errors -----------------------------------------------------------


def account_record_broker_error(*, account: BrokerAccount, error: BrokerError) -> str:
    """Reflect an adapter error on the account, once, here. Returns the account's status.

    AuthError (token missing, invalid or expired) → expired, with the broker's words;
    StaticIPError → error, with the broker's words and what to do. Order-level errors (input
    rejected, rate limits, ambiguous outcomes) say nothing about the account and change nothing.
    """
    if isinstance(error, AuthError):
        status = AccountStatus.EXPIRED
        message = (
            f"Your {account.get_broker_display()} login has expired or was revoked "
            f"({error.message}). Log in again."
        )
    elif isinstance(error, StaticIPError):
        status = AccountStatus.ERROR
        message = (
            f"{account.get_broker_display()} refused an order from an IP address that is not "
            f"registered for this account ({error.message}). Register this server's static IP "
            "with the broker and on this account."
        )
    else:
        return account.status
    with transaction.atomic():
        BrokerAccount.objects.filter(pk=account.pk).update(
            status=status, last_error=message, updated_at=timezone.now()
        )
        _event(account=account, kind=AccountEvent.Kind.STATUS_CHANGED, message=message)
    account.status, account.last_error = status, message
    logger.warning("broker account %s is now %s (%s)", account.pk, status, type(error).__name__)
    return status


def broker_accounts_expire_tokens(*, now: datetime | None = None) -> int:
    """Mark connected accounts whose token passed its expiry as expired. Returns how many."""
    now = now or timezone.now()
    expired = 0
    for account in BrokerAccount.objects.filter(
        status=AccountStatus.CONNECTED, token_expires_at__lte=now
    ):
        with transaction.atomic():
            message = (
                f"Your {account.get_broker_display()} login ended at "
                f"{timezone.localtime(account.token_expires_at):%d %b %H:%M} IST "
                "(brokers end sessions daily). Log in again."
            )
            # Conditional: a login that completed meanwhile keeps its new token.
            if BrokerAccount.objects.filter(
                pk=account.pk, status=AccountStatus.CONNECTED, token_expires_at__lte=now
            ).update(status=AccountStatus.EXPIRED, last_error=message, updated_at=now):
                _event(account=account, kind=AccountEvent.Kind.STATUS_CHANGED, message=message)
                expired += 1
    return expired


# --- test and disconnect ------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str
    funds: Funds | None = None


def _rupees(amount: Decimal) -> str:
    return rupees(amount)


def broker_account_test(*, account: BrokerAccount, actor: User) -> ConnectionCheck:
    """Ask the broker for funds and say, in words, whether the account works."""
    if not account.access_token:
        return ConnectionCheck(False, "This account is not logged in. Log in to the broker first.")
    try:
        funds = get_adapter(account).funds()
    except AdapterUnavailableError as exc:
        return ConnectionCheck(False, f"This platform cannot reach {account.broker}: {exc}")
    except BrokerError as exc:
        account_record_broker_error(account=account, error=exc)
        message = f"{account.get_broker_display()} answered with an error: {exc.message}"
        _event(account=account, kind=AccountEvent.Kind.TESTED, actor=actor, message=message)
        return ConnectionCheck(False, message)
    message = (
        f"Connection works: {_rupees(funds.available)} available, {_rupees(funds.used)} in use."
    )
    with transaction.atomic():
        BrokerAccount.objects.filter(pk=account.pk).update(last_checked_at=timezone.now())
        _event(account=account, kind=AccountEvent.Kind.TESTED, actor=actor, message=message)
    return ConnectionCheck(True, message, funds)


@transaction.atomic
def broker_account_disconnect(*, account: BrokerAccount, actor: User) -> BrokerAccount:
    """Forget the session token and stop using the account (app credentials are kept so the
    trader can log in again in one click)."""
    account = BrokerAccount.objects.select_for_update().get(pk=account.pk)
    _clear_session(account)
    account.status = AccountStatus.DISABLED
    account.last_error = ""
    account.save()
    _event(account=account, kind=AccountEvent.Kind.DISCONNECTED, actor=actor)
    return account


def needs_app_credentials(broker: str) -> bool:
    return adapter_class(broker).capabilities.needs_app_credentials


def paper_account_log_in(*, account: BrokerAccount, actor: User) -> BrokerAccount:
    """Log a paper account in without a browser (demo data, scripts): the same signed-state
    round trip the web callback performs."""
    redirect_uri = "http://127.0.0.1/brokers/callback/paper/"
    start = login_start(account=account, actor=actor, redirect_uri=redirect_uri)
    params = {key: values[-1] for key, values in parse_qs(urlsplit(start.url).query).items()}
    result = login_complete(
        broker=Broker.PAPER, user=actor, params=params, redirect_uri=redirect_uri
    )
    if result.error:
        raise PermanentError(result.error)
    return result.account
