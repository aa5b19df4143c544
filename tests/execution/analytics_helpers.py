"""Executed orders for analytics tests: intents with their times, fills and closed positions,
built on the engine factories the way the lifecycle writes them."""

from __future__ import annotations

import datetime
from decimal import Decimal

from execution.audit import event_record
from execution.markettime import IST
from execution.models import Fill, IntentState, OrderIntent, Position, ScheduledRun
from tests.execution.engine_factories import IntentFactory, RunFactory

MS = datetime.timedelta(milliseconds=1)


def run_on(version, day: datetime.date, *, owner=None, **kwargs) -> ScheduledRun:
    """An entry run of `version` on `day` at 09:20 IST (owner: the strategy's, by default)."""
    fire_at = datetime.datetime.combine(day, datetime.time(9, 20), tzinfo=IST)
    return RunFactory(
        strategy_version=version,
        session_date=day,
        fire_at=fire_at,
        owner=owner or version.strategy.owner,
        source_ref=kwargs.pop("source_ref", f"{day}"),
        **kwargs,
    )


def sent(
    run: ScheduledRun,
    account,
    *,
    lag_ms: float | None = 5,
    ack_ms: float | None = 40,
    side: str = "SELL",
    state: str = IntentState.ACKNOWLEDGED,
    **kwargs,
) -> OrderIntent:
    """An order sent `lag_ms` after the run's T (not sent if None) and acknowledged `ack_ms`
    after T."""
    return IntentFactory(
        run=run,
        account=account,
        side=side,
        state=state,
        intended_at=run.fire_at,
        sent_at=None if lag_ms is None else run.fire_at + lag_ms * MS,
        acked_at=None if ack_ms is None else run.fire_at + ack_ms * MS,
        **kwargs,
    )


def filled(
    run: ScheduledRun,
    account,
    *,
    side: str,
    quantity: int,
    price: str,
    exchange: str = "NFO",
    position_run: ScheduledRun | None = None,
    tradingsymbol: str = "NIFTY26MAR24000CE",
) -> OrderIntent:
    """A filled order with its fill, booked on the position of `position_run` (default `run`)."""
    intent = sent(
        run,
        account,
        side=side,
        quantity=quantity,
        exchange=exchange,
        state=IntentState.FILLED,
        filled_quantity=quantity,
        average_price=Decimal(price),
        tradingsymbol=tradingsymbol,
    )
    Fill.objects.create(
        intent=intent,
        cumulative_quantity=quantity,
        quantity=quantity,
        price=Decimal(price),
        filled_at=intent.acked_at,
    )
    position, _ = Position.objects.get_or_create(
        run=position_run or run,
        account=account,
        tradingsymbol=tradingsymbol,
        defaults={"owner": run.owner, "exchange": exchange},
    )
    value = Decimal(price) * quantity
    if side == "BUY":
        position.net_quantity += quantity
        position.buy_quantity += quantity
        position.buy_value += value
    else:
        position.net_quantity -= quantity
        position.sell_quantity += quantity
        position.sell_value += value
    position.save()
    return intent


def closed_trade(run: ScheduledRun, account, *, pnl: str, symbol: str = "X") -> Position:
    """A closed position of `run` with realised P&L `pnl` (sold at 100 + pnl, bought at 100)."""
    return Position.objects.create(
        run=run,
        account=account,
        owner=run.owner,
        exchange="NFO",
        tradingsymbol=symbol,
        net_quantity=0,
        buy_quantity=1,
        sell_quantity=1,
        buy_value=Decimal(100),
        sell_value=Decimal(100) + Decimal(pnl),
    )


def audit(intent: OrderIntent, to: str, *, previous: str, message: str = "") -> None:
    """The lifecycle's audit row for one transition of `intent`."""
    event_record(
        kind=f"order.{to}",
        message=message or f"{previous} → {to}",
        user_id=intent.run.owner_id,
        run_id=intent.run_id,
        intent_id=intent.pk,
        account_id=intent.account_id,
        data={"from": previous, "to": to},
    )
