"""Non-ATM strike modes and positional strategies dispatched end to end (plan → dispatch →
intents) on paper accounts, against a hand-built option chain whose answers are known."""

from __future__ import annotations

import datetime
from decimal import Decimal as D
from types import SimpleNamespace

import pytest

from brokers.base import BrokerOrder, OrderStatus, Side
from brokers.models import Broker
from execution.dispatch import boundary_dispatch
from execution.markettime import IST
from execution.models import IntentState, OrderIntent, Position, Purpose, RunState, ScheduledRun
from execution.orders.lifecycle import fill_apply
from execution.planning.plan import day_plan
from execution.reference import contracts
from execution.reference.symbols import parse_kite_symbol
from tests.execution.engine_factories import LegFactory, strategy_with_accounts

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 11, 19)  # Thursday, a session
T = datetime.datetime.combine(DAY, datetime.time(9, 20), tzinfo=IST)
SPOT = D("24012.35")  # ATM 24000 on NIFTY's 50-point grid
STEP = D(50)


def _ce_premium(strike: D) -> D:
    # Falls 40 paise per point above 24000 and never below ₹0.05: strictly decreasing on the
    # grid used here, so "premium closest to X" has one answer.
    return max(D("0.05"), D("200") - (strike - D("24000")) * D("0.4"))


def _pe_premium(strike: D) -> D:
    return max(D("0.05"), D("200") + (strike - D("24000")) * D("0.4"))


def _ce_delta(strike: D) -> float:
    return max(0.01, min(0.99, 0.5 - float(strike - 24000) / 2000))


class ChainMarket:
    """Spot 24012.35; one chain (any expiry) of ±20 strikes with the premiums and deltas above."""

    def __init__(self, *, empty: bool = False):
        self.empty = empty

    def spot(self, symbol, at=None):
        return SPOT

    def _quote(self, strike: D, option_type: str):
        if option_type == "CE":
            return SimpleNamespace(ltp=_ce_premium(strike), delta=_ce_delta(strike), iv=0.12)
        return SimpleNamespace(ltp=_pe_premium(strike), delta=_ce_delta(strike) - 1, iv=0.12)

    def chain(self, symbol, expiry, *, strike_step, strikes_each_side=10, at=None):
        if self.empty:
            return []
        strikes = [
            D(24000) + n * strike_step for n in range(-strikes_each_side, strikes_each_side + 1)
        ]
        return [
            SimpleNamespace(strike=k, ce=self._quote(k, "CE"), pe=self._quote(k, "PE"))
            for k in strikes
        ]

    def option_quote(self, symbol, expiry, strike, option_type, at=None):
        return self._quote(D(strike), option_type)


def _ready(accounts):
    for account in accounts:
        account.token_issued_at = T - datetime.timedelta(hours=1)
        account.static_ip_primary = "203.0.113.7"
        account.save()


def _strategy(legs, *, kind="intraday", lots=1):
    """A strategy on one paper account with `legs`: (side, option type, mode, parameter)."""
    strategy, version, accounts = strategy_with_accounts(brokers=(Broker.PAPER,), legs=0)
    strategy.kind = kind
    strategy.save()
    field = {"atm": "strike_offset", "exact": "strike_price"}
    field |= {"premium": "target_premium", "delta": "target_delta"}
    for position, (side, option_type, mode, value) in enumerate(legs, start=1):
        LegFactory(
            version=version,
            position=position,
            side=side,
            option_type=option_type,
            lots=lots,
            strike_mode=mode,
            **({"strike_offset": None} | {field[mode]: value}),
        )
    _ready(accounts)
    return strategy, version, accounts


def _strike(intent) -> tuple[D, str]:
    parsed = parse_kite_symbol(intent.tradingsymbol)
    return parsed.strike, parsed.option_type


def test_exact_premium_and_delta_legs_resolve_to_the_chains_strikes():
    _strategy(
        [
            ("BUY", "CE", "atm", 4),
            ("SELL", "CE", "exact", D("24350")),
            ("SELL", "PE", "premium", D("121")),
            ("SELL", "CE", "delta", D("0.30")),
        ]
    )
    day_plan(day=DAY)
    result = boundary_dispatch(fire_at=T, market=ChainMarket(), wait=False, start_sends=False)
    assert not result.skipped and result.intents == 4
    intents = {i.leg.position: i for i in OrderIntent.objects.select_related("leg")}
    # ATM+4: 24000 + 4 x 50. Exact: as typed.
    assert _strike(intents[1]) == (D("24200"), "CE")
    assert _strike(intents[2]) == (D("24350"), "CE")
    # Premium ≈ ₹121 on the puts: 200 + 0.4 x (K - 24000) is 120 at 23800, the nearest.
    assert _strike(intents[3]) == (D("23800"), "PE")
    # Delta ≈ 0.30 on the calls: 0.5 - (K - 24000)/2000 is 0.30 at 24400.
    assert _strike(intents[4]) == (D("24400"), "CE")
    lot = contracts.lot_size("NIFTY", contracts.pick_expiry("NIFTY", DAY, "current_week"), on=DAY)
    for position, intent in intents.items():
        strike, option_type = _strike(intent)
        quote = ChainMarket().option_quote("NIFTY", None, strike, option_type)
        assert intent.reference_price == quote.ltp, position
        assert intent.quantity == lot and intent.product == "MIS"
        assert intent.purpose == Purpose.ENTRY and intent.state == IntentState.INTENT
        assert intent.phase == (0 if intent.side == "BUY" else 1)


def test_an_exact_strike_off_the_grid_skips_the_run_in_words():
    _strategy([("SELL", "CE", "exact", D("24330"))])
    day_plan(day=DAY)
    result = boundary_dispatch(fire_at=T, market=ChainMarket(), wait=False, start_sends=False)
    (reason,) = result.skipped.values()
    assert reason.startswith("Could not build the orders")
    # Written before T - ε with a placeholder, abandoned with the reason at T - ε: none sent.
    assert not OrderIntent.objects.exclude(state=IntentState.ABANDONED).exists()
    assert set(OrderIntent.objects.values_list("error", flat=True)) == {reason}
    assert ScheduledRun.objects.get(boundary="entry").state == RunState.SKIPPED


def test_an_empty_chain_skips_a_premium_leg_instead_of_guessing():
    _strategy([("SELL", "PE", "premium", D("50"))])
    day_plan(day=DAY)
    market = ChainMarket(empty=True)
    result = boundary_dispatch(fire_at=T, market=market, wait=False, start_sends=False)
    (reason,) = result.skipped.values()
    assert "option chain is empty" in reason
    assert not OrderIntent.objects.exclude(state=IntentState.ABANDONED).exists()
    assert ScheduledRun.objects.get(boundary="entry").state == RunState.SKIPPED


def _fill_all(intents):
    for intent in intents:
        OrderIntent.objects.filter(pk=intent.pk).update(
            state=IntentState.ACKNOWLEDGED, broker_order_id=f"P{intent.pk}"
        )
        price = D("100")
        fill_apply(
            intent=intent,
            order=BrokerOrder(
                broker_order_id=f"P{intent.pk}",
                tag=intent.tag,
                tradingsymbol=intent.tradingsymbol,
                side=Side(intent.side),
                quantity=intent.quantity,
                filled_quantity=intent.quantity,
                average_price=price,
                status=OrderStatus.FILLED,
            ),
        )


def _runs_of(day):
    return sorted(ScheduledRun.objects.filter(session_date=day).values_list("boundary", flat=True))


def test_a_positional_strategy_is_carried_to_its_expiry_and_closed_there():
    _strategy(
        [("BUY", "PE", "premium", D("60")), ("SELL", "PE", "delta", D("0.35"))],
        kind="positional",
        lots=30,  # above NIFTY's freeze quantity: entries and exits are sliced
    )
    expiry = contracts.pick_expiry("NIFTY", DAY, "current_week")
    assert expiry > DAY + datetime.timedelta(days=1), "needs a session between entry and expiry"
    freeze = contracts.freeze_quantity("NIFTY", DAY)

    # Entry day: an entry, no exit (carried overnight), in NRML.
    day_plan(day=DAY)
    assert _runs_of(DAY) == ["entry"]
    result = boundary_dispatch(fire_at=T, market=ChainMarket(), wait=False, start_sends=False)
    entries = list(OrderIntent.objects.filter(purpose=Purpose.ENTRY))
    assert result.intents == len(entries) > 2
    assert {i.product for i in entries} == {"NRML"}
    assert all(i.quantity <= freeze for i in entries)
    by_symbol: dict[str, int] = {}
    for intent in entries:
        signed = intent.quantity if intent.side == "BUY" else -intent.quantity
        by_symbol[intent.tradingsymbol] = by_symbol.get(intent.tradingsymbol, 0) + signed
    assert sorted(abs(q) for q in by_symbol.values()) == [30 * entries[0].lot_size] * 2
    _fill_all(entries)
    entry_run = ScheduledRun.objects.get(boundary="entry")
    assert {p.tradingsymbol: p.net_quantity for p in Position.objects.all()} == by_symbol

    # A session in between: the position is open and not expiring, so nothing is planned.
    between = DAY + datetime.timedelta(days=1)
    day_plan(day=between)
    assert _runs_of(between) == []

    # Expiry day: only the exit, on the open entry's positions, closing each in NRML slices.
    day_plan(day=expiry)
    assert _runs_of(expiry) == ["exit"]
    exit_run = ScheduledRun.objects.get(session_date=expiry)
    assert exit_run.entry_run_id == entry_run.pk
    result = boundary_dispatch(
        fire_at=exit_run.fire_at, market=ChainMarket(), wait=False, start_sends=False
    )
    assert not result.skipped
    exits = list(OrderIntent.objects.filter(run=exit_run))
    assert {i.purpose for i in exits} == {Purpose.EXIT} and {i.product for i in exits} == {"NRML"}
    assert all(i.quantity <= freeze for i in exits)
    closing: dict[str, int] = {}
    for intent in exits:
        signed = intent.quantity if intent.side == "BUY" else -intent.quantity
        closing[intent.tradingsymbol] = closing.get(intent.tradingsymbol, 0) + signed
    assert closing == {symbol: -quantity for symbol, quantity in by_symbol.items()}
    # The short is bought back before the long is sold.
    assert {i.phase for i in exits if i.side == "BUY"} == {0}
    assert {i.phase for i in exits if i.side == "SELL"} == {1}
    _fill_all(exits)
    assert not Position.objects.exclude(net_quantity=0).exists()

    # Flat again: the next session enters anew.
    after = expiry + datetime.timedelta(days=1)
    while not day_plan(day=after).created:
        after += datetime.timedelta(days=1)
    assert _runs_of(after) == ["entry"]


# --- planning and risk refusals, in words ---------------------------------------------------
def test_planning_says_why_a_version_is_not_planned_that_day():
    _, monday_only, _ = _strategy([("SELL", "CE", "atm", 0)])
    monday_only.trading_days = 0b1  # Mondays
    monday_only.save()
    _, early, _ = _strategy([("SELL", "CE", "atm", 0)])
    early.entry_time = datetime.time(8, 0)  # before the open
    early.save()
    result = day_plan(day=DAY)
    assert any("does not trade on Thursdays" in reason for reason in result.not_planned)
    assert any("entry at 08:00:00 is outside the session window" in r for r in result.not_planned)
    # The early version's exit is still planned; nothing of the Monday-only one.
    planned = set(ScheduledRun.objects.values_list("strategy_version_id", "boundary"))
    assert planned == {(early.pk, "exit")}


def test_a_disconnected_account_and_a_strategy_over_its_lot_limit_are_refused_in_words():
    from trader.models.strategies import RiskLimit

    strategy, _, accounts = strategy_with_accounts(brokers=(Broker.KITE,), lots=3)
    _ready(accounts)
    accounts[0].status = "expired"
    accounts[0].save()
    other, _, other_accounts = strategy_with_accounts(brokers=(Broker.KITE,), lots=3)
    _ready(other_accounts)
    RiskLimit.objects.create(
        user=other.owner,
        max_lots_per_order=10,
        max_lots_per_strategy=10,
        max_open_strategies=5,
        max_daily_loss=D("50000"),
    )
    day_plan(day=DAY)
    result = boundary_dispatch(fire_at=T, market=ChainMarket(), wait=False, start_sends=False)
    reasons = {
        ScheduledRun.objects.get(pk=pk).owner_id: text for pk, text in result.skipped.items()
    }
    assert "login expired" in reasons[strategy.owner_id]
    assert "12 lots in this strategy is above your limit of 10" in reasons[other.owner_id]
    assert not OrderIntent.objects.exists()
