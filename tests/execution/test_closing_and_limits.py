"""Closing orders sum to the position exactly (freeze slices, an odd remainder that is not a
whole lot, flat positions skipped), and the per-order, per-strategy, open-strategy and
daily-loss limits refuse an entry in words."""

from __future__ import annotations

from decimal import Decimal

import pytest

from execution.intents.build import close_intents
from execution.models import Position, Purpose
from execution.protection import risk
from tests.execution.engine_factories import IntentFactory


class _NoQuotes:
    """A market with no quote for anything (closing orders stay MARKET)."""

    def quote(self, *, broker, tradingsymbol):
        return None


@pytest.mark.django_db
def test_closing_orders_sum_to_the_position_with_an_odd_remainder_and_skip_flat_ones():
    intent = IntentFactory()
    run, account = intent.run, intent.account

    def position(symbol: str, net: int) -> Position:
        return Position.objects.create(
            run=run,
            owner=run.owner,
            account=account,
            exchange="NFO",
            tradingsymbol=symbol,
            product="NRML",
            lot_size=75,
            net_quantity=net,
        )

    # A short of 7 lots and 10 units more (a partial fill of a sliced order), a long, a flat.
    short = position("NIFTY26N1924000CE", -(7 * 75 + 10))
    long = position("NIFTY26N1923000PE", 2 * 75)
    flat = position("NIFTY26N1925000CE", 0)
    closing = close_intents(
        run=run,
        positions=[short, long, flat],
        accounts={account.pk: account},
        purpose=Purpose.STOP,
        intended_at=intent.intended_at,
        freeze=lambda p: 3 * 75,  # at most 3 lots an order
        lot_size=lambda p: p.lot_size,
        quotes=_NoQuotes(),
    )
    by_symbol: dict[str, list] = {}
    for order in closing:
        by_symbol.setdefault(order.tradingsymbol, []).append(order)
    assert flat.tradingsymbol not in by_symbol
    buys = by_symbol[short.tradingsymbol]
    assert {o.side for o in buys} == {"BUY"} and {o.phase for o in buys} == {0}
    assert sum(o.quantity for o in buys) == 7 * 75 + 10
    assert sorted(o.quantity for o in buys) == [10, 75, 225, 225]
    assert all(o.quantity <= 3 * 75 for o in buys)
    assert sorted(o.slice_no for o in buys) == [0, 1, 2, 3]
    sells = by_symbol[long.tradingsymbol]
    assert [(o.side, o.phase, o.quantity) for o in sells] == [("SELL", 1, 150)]
    assert len({o.tag for o in closing}) == len(closing)


def _limits(**values) -> risk.EffectiveLimits:
    return risk.limits_from(own=None, ceiling=values)


def test_a_leg_above_the_per_order_limit_is_refused_in_words():
    problems = risk.strategy_checks(
        limits=_limits(max_lots_per_order=5),
        leg_lots=[2, 6, 1],
        open_strategies=0,
        day_pnl=Decimal(0),
    )
    assert problems == ["A leg of 6 lots is above your limit of 5 lots per order."]


def test_the_open_strategies_limit_counts_the_ones_already_open():
    limits = _limits(max_open_strategies=3)
    assert (
        risk.strategy_checks(limits=limits, leg_lots=[1], open_strategies=2, day_pnl=Decimal(0))
        == []
    )
    assert risk.strategy_checks(
        limits=limits, leg_lots=[1], open_strategies=3, day_pnl=Decimal(0)
    ) == ["You already have 3 strategies open (limit 3)."]


def test_the_smaller_of_the_users_limit_and_the_ceiling_applies():
    class Own:
        max_lots_per_order = 4
        max_lots_per_strategy = None
        max_open_strategies = 9
        max_daily_loss = Decimal("5000")

    limits = risk.limits_from(
        own=Own(), ceiling={"max_lots_per_order": 10, "max_open_strategies": 2}
    )
    assert (limits.max_lots_per_order, limits.max_open_strategies) == (4, 2)
    assert limits.max_daily_loss == Decimal("5000")
    assert limits.max_lots_per_strategy == 10**6  # no limit set anywhere


@pytest.mark.parametrize(
    ("mtm", "fires"), [("-999.99", False), ("-1000", True), ("-1500.50", True)]
)
def test_a_sources_daily_loss_ends_the_run_at_its_limit(mtm, fires):
    reason = risk.source_limit_exit(limits={"max_daily_loss": "1000"}, mtm=Decimal(mtm))
    assert (reason is not None) == fires
    if fires:
        assert reason.startswith("daily loss limit of this deployment")
