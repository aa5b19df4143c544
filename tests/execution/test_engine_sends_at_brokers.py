"""The protective paths sending for real, at the emulators on 127.0.0.1: automatic failover
after a rejected or unknown outcome, the kill switch (per trader and global, a broker refusing a
cancel) and the watch's stop-loss, target and trailing exits. Celery runs eagerly, so each task
the engine enqueues after a commit runs in this thread, as a solo worker would run it; the
outcomes are read back from the database and from the emulators' order logs."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from brokers.base import OrderRequest, OrderType, Product, Side
from brokers.registry import get_adapter
from execution.intents.build import batches_for
from execution.models import (
    ExecutionEvent,
    IntentState,
    KillSwitch,
    OrderIntent,
    Position,
    RunState,
)
from execution.protection.killswitch import kill_switch_engage
from execution.protection.watch import runs_watch
from execution.reference import contracts, instruments
from execution.send import sender
from execution.tasks import account_send_task
from tests.brokers.contract.venues import atm_strike, make_venue
from tests.brokers.paper_market import today_ist
from tests.execution.engine_factories import IntentFactory, LegFactory, RunFactory, VersionFactory
from tests.trader.factories import ProfileFactory
from trader.models import BrokerAllocation

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.network,
    pytest.mark.usefixtures("calendar_loaded_today", "session_open", "eager_tasks"),
]


@pytest.fixture
def eager_tasks(settings):
    """Tasks enqueued by the engine run at once in this thread, errors raised; entries are
    never "late" while a test runs (the lateness cap has its own tests)."""
    from trader.celery import app

    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    settings.EXECUTION_ENTRY_LATE_CAP_SECONDS = 3600
    sender.ADAPTERS.clear()
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before
    sender.ADAPTERS.clear()


@pytest.fixture
def kite_upstox(settings):
    """One trader with a Kite account (priority 1) and an Upstox account (priority 2), both
    logged in at their emulators."""
    owner = ProfileFactory().user
    venues = []
    for broker in ("kite", "upstox"):
        venue = make_venue(broker, settings)
        venue.account.owner = owner
        venue.account.save()
        venue.login()
        venues.append(venue)
    yield owner, venues
    for venue in venues:
        venue.stop()


def _contract(strike: int, option_type: str = "CE"):
    """Today's nearest NIFTY contract at `strike`, known to the platform's instrument table."""
    expiry = contracts.expiries("NIFTY", today_ist())[0]
    return instruments.instrument_for("NIFTY", expiry, strike, option_type)


def _register(venue, instrument) -> tuple[str, str]:
    """The contract in `venue`'s notation; brokers that name contracts by id learn its id."""
    symbol, token = instruments.broker_symbol(instrument, venue.broker)
    if venue.broker != "kite":
        kite_symbol, _ = instruments.broker_symbol(instrument, "kite")
        venue.emulator.add_instruments(
            [
                {
                    "key": token,
                    "exchange": "NFO",
                    "tradingsymbol": kite_symbol,
                    "broker_symbol": symbol,
                }
            ]
        )
    return symbol, token


def _posts(venue, tags) -> list[dict]:
    return [
        r
        for r in venue.emulator.order_log()
        if r["method"] == "POST" and r.get("tag") in set(tags) and "cancel" not in r["path"]
    ]


def _state_at(venue, tag: str) -> str:
    """The order's state in the emulator's own book."""
    (order,) = [o for o in venue.emulator.orders(venue.account.api_key) if o["tag"] == tag]
    return str(order["state"]).upper()


def _entry_run(owner, venues):
    version = VersionFactory(strategy__owner=owner)
    for priority, venue in enumerate(venues, start=1):
        BrokerAllocation.objects.create(
            strategy=version.strategy,
            broker_account=venue.account,
            multiplier=Decimal("1"),
            priority=priority,
        )
    return RunFactory(
        strategy_version=version,
        owner=owner,
        state=RunState.DISPATCHED,
        allocations=[
            {"account_id": v.account.pk, "broker": v.broker, "priority": p, "algo_id": ""}
            for p, v in enumerate(venues, start=1)
        ],
    )


def _entry_intents(run, venue, strikes=((26000, "BUY", 0), (25000, "SELL", 1)), also=()):
    """Entry intents at `venue`; the contracts are listed at the `also` venues too (where the
    orders may be moved)."""
    intents = []
    for strike, side, phase in strikes:
        instrument = _contract(atm_strike() + strike - 25000)
        symbol, token = _register(venue, instrument)
        for other in also:
            _register(other, instrument)
        intents.append(
            IntentFactory(
                run=run,
                account=venue.account,
                side=side,
                phase=phase,
                tradingsymbol=symbol,
                instrument_token=token,
                quantity=instrument.lot_size,
                lot_size=instrument.lot_size,
                product="NRML",
                intended_at=timezone.now(),
            )
        )
    return intents


def _send_now(intents, account):
    (payload,) = [b.to_json() for b in batches_for(intents, fire_at=timezone.now())]
    payload["fire_at"] = None
    return account_send_task(payload)


# --- automatic failover ----------------------------------------------------------------------
def test_a_rejected_entry_fails_over_to_the_next_broker_by_priority_and_is_sent_there(
    kite_upstox, django_capture_on_commit_callbacks
):
    owner, (kite, upstox) = kite_upstox
    run = _entry_run(owner, [kite, upstox])
    hedge, short = _entry_intents(run, kite, also=[upstox])
    kite.fault("reject")  # the hedge is refused by Kite's OMS; the short is held back

    with django_capture_on_commit_callbacks(execute=True):
        _send_now([hedge, short], kite.account)

    hedge.refresh_from_db()
    short.refresh_from_db()
    assert hedge.state == IntentState.FAILED_OVER
    assert short.state == IntentState.ABANDONED  # never written: its hedge was not placed
    assert len(_posts(kite, [hedge.tag, short.tag])) == 1
    moved = list(OrderIntent.objects.filter(failover_from__isnull=False).order_by("phase"))
    assert [(m.account_id, m.side, m.failover_from_id) for m in moved] == [
        (upstox.account.pk, "BUY", hedge.pk),
        (upstox.account.pk, "SELL", short.pk),
    ]
    # Renamed into Upstox's notation and written there once each, hedge first.
    assert all(m.tradingsymbol.startswith("NIFTY") and "|" in m.instrument_token for m in moved)
    assert {m.state for m in moved} == {IntentState.ACKNOWLEDGED}, [m.error for m in moved]
    assert all(m.broker_order_id for m in moved)
    logged = _posts(upstox, [m.tag for m in moved])
    assert [r["tag"] for r in logged] == [moved[0].tag, moved[1].tag]
    assert moved[0].sent_at <= moved[1].sent_at
    event = ExecutionEvent.objects.get(kind="run.failover", run_id=run.pk)
    assert event.data["to_account"] == upstox.account.pk


def test_an_unknown_outcome_triggers_the_failover_task_which_waits_for_the_lookup(
    kite_upstox, django_capture_on_commit_callbacks, monkeypatch
):
    """The answer is lost and the book cannot be read: the order may exist at Kite, so nothing
    is sent elsewhere (a second position is worse than a late one) until it is settled."""
    from brokers.base import RetryableError
    from brokers.kite.adapter import KiteAdapter

    owner, (kite, upstox) = kite_upstox
    run = _entry_run(owner, [kite, upstox])
    (hedge,) = _entry_intents(run, kite, strikes=((26000, "BUY", 0),), also=[upstox])
    kite.fault("drop")
    monkeypatch.setattr(sender, "LOOKUP_PAUSE", 0.0)

    def book_unreadable(self, tag):
        raise RetryableError("order book unavailable")

    monkeypatch.setattr(KiteAdapter, "find_order_by_tag", book_unreadable)
    handled = []
    from execution.protection import failover

    real = failover.run_failures_handle
    monkeypatch.setattr(
        failover,
        "run_failures_handle",
        lambda run_id: handled.append(run_id) or real(run_id=run_id),
    )

    with django_capture_on_commit_callbacks(execute=True):
        _send_now([hedge], kite.account)

    hedge.refresh_from_db()
    assert hedge.state == IntentState.UNKNOWN and hedge.unknown_since is not None
    assert handled == [run.pk]  # the failover task ran for the run ...
    assert not OrderIntent.objects.filter(failover_from__isnull=False).exists()  # ... moved none
    assert len(_posts(kite, [hedge.tag])) == 1  # written once, never again
    assert [r for r in upstox.emulator.order_log() if r["method"] == "POST"] == []


def test_a_rejection_with_no_account_left_unwinds_the_filled_hedge_at_the_broker(
    kite_upstox, django_capture_on_commit_callbacks
):
    owner, (kite, _upstox) = kite_upstox
    run = _entry_run(owner, [kite])  # Kite only: nowhere to fail over to
    hedge_instrument = _contract(atm_strike() + 1000)
    symbol, token = _register(kite, hedge_instrument)
    Position.objects.create(
        run=run,
        account=kite.account,
        owner=owner,
        exchange="NFO",
        tradingsymbol=symbol,
        instrument_token=token,
        lot_size=hedge_instrument.lot_size,
        net_quantity=hedge_instrument.lot_size,
        buy_quantity=hedge_instrument.lot_size,
    )
    (second_hedge,) = _entry_intents(run, kite, strikes=((27000, "BUY", 0),))
    kite.fault("reject")

    with django_capture_on_commit_callbacks(execute=True):
        _send_now([second_hedge], kite.account)

    run.refresh_from_db()
    assert run.state == RunState.HALTED
    (unwind,) = OrderIntent.objects.filter(run=run, purpose="unwind")
    assert (unwind.side, unwind.tradingsymbol) == ("SELL", symbol)
    assert unwind.state == IntentState.ACKNOWLEDGED
    assert len(_posts(kite, [unwind.tag])) == 1


# --- the kill switch -------------------------------------------------------------------------
def _resting_order(venue, run, tag: str, strike_from_atm: int = -1000):
    instrument = _contract(atm_strike() + strike_from_atm)
    symbol, token = _register(venue, instrument)
    ack = get_adapter(venue.account).place_order(
        OrderRequest(
            exchange="NFO",
            tradingsymbol=symbol,
            side=Side.BUY,
            quantity=instrument.lot_size,
            order_type=OrderType.LIMIT,
            product=Product.NRML,
            tag=tag,
            price=Decimal("0.05"),
            instrument_token=token,
        )
    )
    return IntentFactory(
        run=run,
        account=venue.account,
        state=IntentState.ACKNOWLEDGED,
        broker_order_id=ack.broker_order_id,
        tradingsymbol=symbol,
        instrument_token=token,
        tag=tag,
    )


def _short_and_hedge(run, venue):
    positions = []
    for offset, quantity in ((0, -1), (1000, 1)):
        instrument = _contract(atm_strike() + offset)
        symbol, token = _register(venue, instrument)
        positions.append(
            Position.objects.create(
                run=run,
                account=venue.account,
                owner=run.owner,
                exchange="NFO",
                tradingsymbol=symbol,
                instrument_token=token,
                lot_size=instrument.lot_size,
                net_quantity=quantity * instrument.lot_size,
            )
        )
    return positions


def test_the_global_switch_cancels_and_flattens_every_traders_positions_at_the_brokers(
    kite_upstox, django_capture_on_commit_callbacks, admin_user
):
    owner, (kite, upstox) = kite_upstox
    other = ProfileFactory().user
    run = _entry_run(owner, [kite, upstox])
    _short_and_hedge(run, kite)
    _short_and_hedge(run, upstox)
    resting = _resting_order(kite, run, "RESTGLOBAL1")
    staff = ProfileFactory(user__is_staff=True).user
    staff.user_permissions.add(Permission.objects.get(codename="operate_global_kill_switch"))
    staff = type(staff).objects.get(pk=staff.pk)  # permissions are cached per instance
    planned_elsewhere = RunFactory(
        strategy_version=VersionFactory(strategy__owner=other), owner=other
    )

    with django_capture_on_commit_callbacks(execute=True):
        payloads = kill_switch_engage(actor=staff, user=None, reason="exchange glitch")

    assert KillSwitch.objects.get(user=None).engaged
    resting.refresh_from_db()
    assert resting.state == IntentState.CANCELLED
    assert _state_at(kite, "RESTGLOBAL1") == "CANCELLED"
    assert {p["account_id"] for p in payloads} == {kite.account.pk, upstox.account.pk}
    for venue in (kite, upstox):
        flatten = list(OrderIntent.objects.filter(account=venue.account, purpose="flatten"))
        assert sorted(i.side for i in flatten) == ["BUY", "SELL"]
        assert {i.state for i in flatten} == {IntentState.ACKNOWLEDGED}
        buy = next(i for i in flatten if i.side == "BUY")
        sell = next(i for i in flatten if i.side == "SELL")
        assert buy.sent_at <= sell.sent_at  # the short is bought back before its hedge goes
        assert len(_posts(venue, [i.tag for i in flatten])) == 2
    planned_elsewhere.refresh_from_db()
    assert planned_elsewhere.state == RunState.SKIPPED  # global: every trader's entries stop
    event = ExecutionEvent.objects.get(kind="killswitch.engaged")
    assert "exchange glitch" in event.message and event.user_id is None


def test_the_global_switch_needs_a_reason(admin_user):
    with pytest.raises(ValueError, match="Say why"):
        kill_switch_engage(actor=admin_user, user=None, reason="  ", send=False)
    assert not KillSwitch.objects.filter(engaged=True).exists()


def test_a_cancel_the_broker_refuses_is_recorded_and_the_flattening_still_goes(
    kite_upstox, django_capture_on_commit_callbacks
):
    owner, (kite, _upstox) = kite_upstox
    run = _entry_run(owner, [kite])
    short, _hedge = _short_and_hedge(run, kite)
    # An order the broker no longer holds open (cancelled there already): its cancel is refused.
    gone = _resting_order(kite, run, "RESTGONE1")
    get_adapter(kite.account).cancel_order(gone.broker_order_id)
    still_open = _resting_order(kite, run, "RESTOPEN1", strike_from_atm=-1100)

    with django_capture_on_commit_callbacks(execute=True):
        kill_switch_engage(actor=owner, user=owner, reason="")

    gone.refresh_from_db()
    still_open.refresh_from_db()
    assert gone.state == IntentState.ACKNOWLEDGED  # unchanged: the broker said no
    assert still_open.state == IntentState.CANCELLED
    assert _state_at(kite, "RESTOPEN1") == "CANCELLED"
    failed = ExecutionEvent.objects.get(kind="killswitch.cancel_failed")
    assert failed.intent_id == gone.pk and failed.message
    flatten = OrderIntent.objects.filter(run=run, purpose="flatten")
    assert {i.state for i in flatten} == {IntentState.ACKNOWLEDGED}
    assert flatten.get(side="BUY").tradingsymbol == short.tradingsymbol


# --- the watch's exits -----------------------------------------------------------------------
class _PricedMarket:
    """Option prices set by the test, per strike."""

    def __init__(self, prices: dict[int, Decimal]) -> None:
        self.prices = prices

    def option_quote(self, symbol, expiry, strike, option_type, at=None):
        price = self.prices[int(strike)]

        class Quote:
            ltp = price

        return Quote()


def _watched_run(venue, *, kind="positional", leg_kwargs=None, **version_kwargs):
    """A run short ATM (entered at 100) and long ATM+500 (at 40) at `venue`."""
    version = VersionFactory(strategy__owner=venue.account.owner, **version_kwargs)
    version.strategy.kind = kind
    version.strategy.save(update_fields=["kind"])
    run = RunFactory(
        strategy_version=version,
        owner=venue.account.owner,
        state=RunState.DISPATCHED,
    )
    atm = atm_strike()
    for strike, sign, price in ((atm, -1, "100"), (atm + 500, 1, "40")):
        instrument = _contract(strike)
        symbol, token = _register(venue, instrument)
        quantity = sign * instrument.lot_size
        value = Decimal(price) * instrument.lot_size
        Position.objects.create(
            run=run,
            account=venue.account,
            owner=run.owner,
            leg=LegFactory(
                version=version,
                side="SELL" if sign < 0 else "BUY",
                **((leg_kwargs or {}) if sign < 0 else {}),
            ),
            exchange="NFO",
            tradingsymbol=symbol,
            instrument_token=token,
            lot_size=instrument.lot_size,
            net_quantity=quantity,
            buy_quantity=max(quantity, 0),
            sell_quantity=max(-quantity, 0),
            buy_value=value if sign > 0 else 0,
            sell_value=value if sign < 0 else 0,
        )
    return run, atm


@pytest.fixture
def kite_alone(settings):
    owner = ProfileFactory().user
    venue = make_venue("kite", settings)
    venue.account.owner = owner
    venue.account.save()
    venue.login()
    yield venue
    venue.stop()


@pytest.mark.parametrize(
    ("limits", "prices", "reason"),
    [
        ({"stop_loss_mtm": Decimal("1000")}, (150, 45), "combined stop-loss"),
        ({"target_mtm": Decimal("1000")}, (60, 40), "combined target"),
    ],
)
def test_a_combined_exit_sends_its_closing_orders_shorts_first(
    kite_alone, django_capture_on_commit_callbacks, limits, prices, reason
):
    run, atm = _watched_run(kite_alone, **limits)
    market = _PricedMarket({atm: Decimal(prices[0]), atm + 500: Decimal(prices[1])})

    with django_capture_on_commit_callbacks(execute=True):
        runs_watch(now=timezone.now(), market=market)

    run.refresh_from_db()
    assert run.exit_reason.startswith(reason)
    closing = list(OrderIntent.objects.filter(run=run, purpose="stop").order_by("phase"))
    assert [i.side for i in closing] == ["BUY", "SELL"]
    assert {i.state for i in closing} == {IntentState.ACKNOWLEDGED}
    assert [r["tag"] for r in _posts(kite_alone, [i.tag for i in closing])] == [
        closing[0].tag,
        closing[1].tag,
    ]
    # Marked once: a second pass at the same prices sends nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        runs_watch(now=timezone.now(), market=market)
    assert OrderIntent.objects.filter(run=run).count() == 2


def test_a_trailing_stop_sends_after_the_run_gives_back_from_its_best(
    kite_alone, django_capture_on_commit_callbacks
):
    run, atm = _watched_run(kite_alone, trailing_stop_mtm=Decimal("1000"))
    best = _PricedMarket({atm: Decimal("40"), atm + 500: Decimal("40")})
    with django_capture_on_commit_callbacks(execute=True):
        runs_watch(now=timezone.now(), market=best)
    assert not OrderIntent.objects.filter(run=run).exists()
    given_back = _PricedMarket({atm: Decimal("80"), atm + 500: Decimal("40")})
    with django_capture_on_commit_callbacks(execute=True):
        runs_watch(now=timezone.now(), market=given_back)
    run.refresh_from_db()
    assert run.exit_reason.startswith("trailing stop")
    closing = OrderIntent.objects.filter(run=run, purpose="stop")
    assert {i.state for i in closing} == {IntentState.ACKNOWLEDGED}
    assert len(_posts(kite_alone, [i.tag for i in closing])) == 2


def test_a_leg_target_sends_only_that_legs_closing_order(
    kite_alone, django_capture_on_commit_callbacks
):
    run, atm = _watched_run(
        kite_alone, leg_kwargs={"target": Decimal("30"), "target_unit": "points"}
    )
    market = _PricedMarket({atm: Decimal("65"), atm + 500: Decimal("40")})
    with django_capture_on_commit_callbacks(execute=True):
        runs_watch(now=timezone.now(), market=market)
    (closing,) = OrderIntent.objects.filter(run=run)
    short = Position.objects.get(run=run, net_quantity__lt=0)
    assert (closing.side, closing.tradingsymbol) == ("BUY", short.tradingsymbol)
    assert closing.state == IntentState.ACKNOWLEDGED
    assert len(_posts(kite_alone, [closing.tag])) == 1
    run.refresh_from_db()
    assert not run.exit_reason  # the run goes on with its other leg


def test_intended_time_is_recorded_for_the_watchs_orders(
    kite_alone, django_capture_on_commit_callbacks
):
    run, atm = _watched_run(kite_alone, stop_loss_mtm=Decimal("10"))
    before = timezone.now()
    market = _PricedMarket({atm: Decimal("101"), atm + 500: Decimal("40")})
    with django_capture_on_commit_callbacks(execute=True):
        runs_watch(now=before, market=market)
    for intent in OrderIntent.objects.filter(run=run):
        assert intent.intended_at == before
        assert intent.sent_at >= before - datetime.timedelta(seconds=1)
        assert intent.acked_at >= intent.sent_at
