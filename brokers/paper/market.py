"""The paper broker's view of the market: contracts, lot sizes and prices come from the
execution app's reference data and simulated market (one place, so paper fills and the rest of
the platform agree)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from django.utils import timezone

from execution.markettime import IST


class UnknownContractError(LookupError):
    """The symbol does not name a contract listed today."""


class _Contract(Protocol):
    # Read-only members, so frozen dataclasses satisfy the protocol.
    @property
    def underlying(self) -> str: ...
    @property
    def expiry(self) -> date: ...
    @property
    def strike(self) -> Decimal: ...
    @property
    def option_type(self) -> str: ...


@dataclass(frozen=True)
class Touch:
    bid: Decimal
    ask: Decimal
    ltp: Decimal


def _today(market: Any = None) -> date:
    """Today in IST: the wall clock's, or the clock of the market passed in (a simulated
    session, execution.simulate_day)."""
    now = market.clock() if market is not None else timezone.now()
    return now.astimezone(IST).date()  # type: ignore[no-any-return]


def _underlying(symbol: str) -> Any:
    from execution.models import Underlying

    return Underlying.objects.filter(symbol=symbol, is_active=True).first()


def is_underlying(name: str) -> bool:
    return _underlying(name) is not None


def parse(tradingsymbol: str) -> Any:
    """The paper broker speaks Kite's notation (weekly `NIFTY25D1625750CE`, monthly
    `NIFTY25DEC25000CE`); UnknownContractError for anything else."""
    from execution.market import parse_kite_symbol

    try:
        return parse_kite_symbol(tradingsymbol)
    except ValueError as exc:
        raise UnknownContractError(
            f"{tradingsymbol} is not an option symbol such as NIFTY25D1625750CE."
        ) from exc


def exchange_of(tradingsymbol: str) -> str:
    """NFO or BFO for an option symbol, from its underlying's segment."""
    parsed = parse(tradingsymbol)
    underlying = _underlying(parsed.underlying)
    if underlying is None:
        raise UnknownContractError(f"{parsed.underlying} is not an index we trade.")
    return str(underlying.segment)


def _listed(underlying: str, market: Any = None) -> list[date]:
    from execution.reference.contracts import expiries

    return list(expiries(underlying, _today(market)))


def resolve_expiry(parsed: Any) -> date:
    """The expiry day a symbol names; a monthly symbol means its month's monthly expiry, after
    any holiday shift (from the expiry calendar)."""
    if parsed.expiry is not None:
        return parsed.expiry  # type: ignore[no-any-return]
    from execution.reference.contracts import monthly_expiry

    if not is_underlying(parsed.underlying):
        raise UnknownContractError(f"{parsed.underlying} is not an index we trade.")
    expiry = monthly_expiry(parsed.underlying, parsed.year, parsed.month)
    if expiry is None:
        raise UnknownContractError(
            f"{parsed.underlying} has no monthly expiry in {parsed.month:02d}/{parsed.year}."
        )
    return expiry


def check_listed(underlying: str, *, exchange: str, expiry: date, market: Any = None) -> None:
    row = _underlying(underlying)
    if row is None:
        raise UnknownContractError(f"{underlying} is not an index we trade.")
    if row.segment != exchange:
        raise UnknownContractError(f"{underlying} options trade on {row.segment}, not {exchange}.")
    if expiry not in _listed(underlying, market):
        raise UnknownContractError(
            f"{underlying} has no contract expiring on {expiry:%d %b %Y} listed today."
        )


def lot_size(underlying: str, expiry: date) -> int:
    from execution.reference.contracts import lot_size as contract_lot_size

    return int(contract_lot_size(underlying, expiry))


def _market() -> Any:
    """The process-wide simulated market on the wall clock (tests replace it)."""
    from execution.market import default_market

    return default_market()


def spot(underlying: str, market: Any = None) -> Decimal:
    """`market`: the one passed in (a simulated session runs on its own clock), else
    the process-wide one."""
    return Decimal(str((market if market is not None else _market()).spot(underlying)))


def option_quote(contract: _Contract, market: Any = None) -> Touch:
    quote = (market if market is not None else _market()).option_quote(
        contract.underlying, contract.expiry, contract.strike, contract.option_type
    )
    return Touch(
        bid=Decimal(str(quote.bid)), ask=Decimal(str(quote.ask)), ltp=Decimal(str(quote.ltp))
    )


# "Paper on live prices": the live quotes that price a paper run are left here, per paper
# account and contract, by the engine (execution.market.broker.PaperLiveMarket and the watch);
# the paper book fills and marks that contract at them instead of the simulator's. Kept a
# while past the quote's own freshness: an order sent at T fills at the price seen at T - ε.
LIVE_TOUCH_SECONDS = 300


def _live_key(account_id: int, tradingsymbol: str) -> str:
    return f"paper:live-touch:{account_id}:{tradingsymbol}"


def live_touch_set(
    *,
    account_id: int,
    tradingsymbol: str,
    ltp: Decimal,
    bid: Decimal | None = None,
    ask: Decimal | None = None,
) -> None:
    """Price `tradingsymbol` in this paper book from a live quote (a broker that quotes its
    LTP only gives a touch of bid = ask = LTP)."""
    from django.core.cache import cache

    touch = Touch(bid=bid or ltp, ask=ask or ltp, ltp=ltp)
    cache.set(_live_key(account_id, tradingsymbol), touch, LIVE_TOUCH_SECONDS)


def touch_for(
    account_id: int, tradingsymbol: str, contract: _Contract, market: Any = None
) -> Touch:
    """The live touch left for this paper book and contract, else the simulator's (`market`
    when one is given, e.g. simulate_day's clocked market)."""
    from django.core.cache import cache

    found = cache.get(_live_key(account_id, tradingsymbol))
    return found if isinstance(found, Touch) else option_quote(contract, market)


def instrument_rows() -> list[dict[str, Any]]:
    """Listed option contracts in Kite's instrument-master columns."""
    from execution.models import Instrument
    from execution.reference.contracts import kite_symbol

    rows = []
    for instrument in Instrument.objects.select_related("underlying").filter(expiry__gte=_today()):
        rows.append(
            {
                "tradingsymbol": kite_symbol(
                    instrument.underlying,
                    instrument.expiry,
                    instrument.strike,
                    instrument.option_type,
                ),
                "name": instrument.underlying.symbol,
                "expiry": instrument.expiry.isoformat(),
                "strike": str(instrument.strike),
                "lot_size": instrument.lot_size,
                "instrument_type": instrument.option_type,
                "tick_size": str(instrument.tick_size),
                "segment": f"{instrument.underlying.segment}-OPT",
                "exchange": instrument.underlying.segment,
            }
        )
    return rows
