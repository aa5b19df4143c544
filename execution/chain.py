"""The option chain page's data (issue 13, item 8): strikes around spot for one underlying and
expiry, with LTP, IV and Greeks, from the trader's broker (one of their connected accounts
with a quote API) or from the simulated market, labelled with the source and the time.

Broker chains come from `BrokerMarket.chain` (the instrument master's strikes, quoted in
batches within the broker's per-call limit, from the account's one request budget); the
simulator's from `SimulatedMarket.chain`. IV and Greeks are ours in both cases (Black-76 on
the forward, vollib: `execution.market.pricing`), so they differ from the brokers' own figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

SIMULATOR = "sim"
MAX_STRIKES_EACH_SIDE = 30


@dataclass(frozen=True)
class ChainSide:
    ltp: Decimal
    iv_pct: Decimal | None  # implied volatility in percent; None where no IV gives the LTP
    delta: float
    gamma: float
    theta: float
    vega: float
    oi: int | None
    at: datetime

    @classmethod
    def of(cls, quote: Any) -> ChainSide:
        iv = quote.iv
        return cls(
            ltp=Decimal(quote.ltp),
            iv_pct=None if iv is None else Decimal(str(round(iv * 100, 2))),
            delta=quote.delta,
            gamma=quote.gamma,
            theta=quote.theta,
            vega=quote.vega,
            oi=getattr(quote, "oi", None),
            at=quote.at,
        )


@dataclass(frozen=True)
class ChainLine:
    strike: Decimal
    ce: ChainSide
    pe: ChainSide


@dataclass
class ChainPage:
    source: str = ""  # what priced it, in words
    at: datetime | None = None
    spot: Decimal | None = None
    expiry: date | None = None
    rows: list[ChainLine] = field(default_factory=list)
    has_oi: bool = False
    problem: str = ""


def chain_accounts_for_user(*, user: Any) -> QuerySet[Any]:
    """The user's accounts whose broker quotes can price a chain (or a paper run): live,
    connected, token not yet dead, at a broker with a quote API."""
    from brokers.models import AccountStatus, BrokerAccount
    from execution.market.broker import BROKERS_WITH_QUOTES

    return BrokerAccount.objects.filter(
        owner=user, status=AccountStatus.CONNECTED, broker__in=BROKERS_WITH_QUOTES
    ).exclude(token_expires_at__lte=timezone.now())


def option_chain_get(
    *,
    user: Any,
    underlying: Any,
    expiry: date,
    source: str,
    strikes_each_side: int,
    now: datetime | None = None,
) -> ChainPage:
    """The chain of `underlying` at `expiry` from `source` ("sim", or the id of one of the
    user's quoting accounts). A source that cannot answer (no fresh quote, no master row,
    a broker error) gives a page with `problem` in words, never an exception."""
    from execution.market import default_market
    from execution.market.broker import BrokerMarket
    from execution.markettime import IST
    from execution.reference import contracts

    now = now or timezone.now()
    step = Decimal(contracts.strike_step(underlying, now.astimezone(IST).date()))
    page = ChainPage(expiry=expiry)
    if source == SIMULATOR:
        market: Any = default_market()
        page.source = "Simulated market"
        at: datetime | None = now
    else:
        account = chain_accounts_for_user(user=user).filter(pk=int(source)).first()
        if account is None:
            page.problem = "That account cannot give quotes now (not connected, or not yours)."
            return page
        market = BrokerMarket(account)
        page.source = market.name
        at = None  # a broker's quotes are of now; their own times are on the rows
    try:
        rows = market.chain(
            underlying.symbol,
            expiry,
            strike_step=step,
            strikes_each_side=strikes_each_side,
            at=at,
        )
    except (LookupError, ValueError) as exc:
        page.problem = str(exc)[:1].upper() + str(exc)[1:]
        return page
    page.rows = [ChainLine(r.strike, ChainSide.of(r.ce), ChainSide.of(r.pe)) for r in rows]
    # The simulator's quotes carry the spot they were priced on; a broker's spot was quoted
    # for the chain and is remembered by its market (no second call).
    page.spot = getattr(rows[0].ce, "spot", None) or market.spot(underlying.symbol)
    page.at = now if source == SIMULATOR else min(line.ce.at for line in page.rows)
    page.has_oi = any(line.ce.oi is not None or line.pe.oi is not None for line in page.rows)
    return page
