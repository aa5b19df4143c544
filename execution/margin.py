"""Margin needed (issue 13, item 6): the broker's own basket margin estimate for a strategy's
entry orders on one account, where the broker offers one (Kite `POST /margins/basket`; the
others: `capabilities.basket_margin` is False until their estimate is read).

The legs are resolved as dispatch would resolve them now, from the account's own quotes (a
generous freshness bound: this is an estimate, and before the open the last quotes are
yesterday's), sized by the allocation, named by the broker's master, and sent to the broker's
estimate in one call. The estimate is kept a minute per version and account.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone

from brokers.base import BrokerError, OrderRequest, OrderType, Product, Side

CACHE_SECONDS = 60
ESTIMATE_QUOTE_AGE_SECONDS = 4 * 86400


@dataclass(frozen=True)
class MarginNeeded:
    account: Any
    amount: Decimal | None  # after the basket's hedge benefit (the broker's "final")
    problem: str = ""


def strategy_margin_needed(
    *, version: Any, account: Any, lots_for: Any = None, adapter: Any = None
) -> MarginNeeded:
    """The broker's margin estimate for `version`'s entry legs on `account`, or the reason
    there is none, in words. `lots_for(leg)` sizes each leg (default: its own lots)."""
    from brokers.registry import get_adapter
    from execution.market.broker import BrokerMarket, StalePriceError
    from execution.markettime import IST
    from execution.reference import instruments
    from trader.strategies.strikes import StrikeResolutionError, resolve_legs

    if account.is_paper:
        return MarginNeeded(account, None, "the paper broker gives no margin estimate")
    try:
        adapter = adapter or get_adapter(account)
    except Exception as exc:  # an account whose adapter cannot be built (no credentials)
        return MarginNeeded(account, None, f"no estimate ({exc})")
    if not adapter.capabilities.basket_margin:
        return MarginNeeded(
            account, None, f"{account.get_broker_display()} gives no basket margin estimate"
        )
    market = BrokerMarket(account, adapter, max_age=ESTIMATE_QUOTE_AGE_SECONDS)
    legs = list(version.legs.all())
    underlying = version.strategy.underlying
    try:
        resolved = resolve_legs(
            version, on=timezone.now().astimezone(IST).date(), market=market, legs=legs
        )
        orders = []
        by_id = {leg.pk: leg for leg in legs}
        for leg in resolved:
            instrument = instruments.instrument_for(
                underlying, leg.expiry, leg.strike, leg.option_type
            )
            symbol, token = instruments.broker_symbol(instrument, account.broker)
            lots = lots_for(by_id[leg.leg_id]) if lots_for else leg.lots
            orders.append(
                OrderRequest(
                    exchange=underlying.segment,
                    tradingsymbol=symbol,
                    side=Side(leg.side),
                    quantity=int(lots) * leg.lot_size,
                    order_type=OrderType.MARKET,
                    product=Product.MIS if version.strategy.kind == "intraday" else Product.NRML,
                    tag="marginestimate",
                    instrument_token=str(token),
                )
            )
        estimate = adapter.basket_margin(orders)
    except BrokerError as exc:
        return MarginNeeded(account, None, f"no estimate from the broker ({exc.message})")
    except (StalePriceError, StrikeResolutionError, LookupError, ValueError) as exc:
        return MarginNeeded(account, None, f"no estimate ({exc})")
    return MarginNeeded(account, estimate.final)


def strategy_margins_for_page(*, strategy: Any) -> list[MarginNeeded]:
    """ "Margin needed" on the strategy page: per enabled live allocation, the estimate for
    the current version at the allocation's size (kept a minute)."""
    from django.core.cache import cache

    from execution.planning.sources import AccountAllocation

    version = strategy.current_version
    if version is None:
        return []
    results = []
    for allocation in strategy.allocations.select_related("broker_account"):
        account = allocation.broker_account
        if not allocation.enabled or account.is_paper:
            continue
        key = f"margin-needed:{version.pk}:{account.pk}:{allocation.pk}"
        found = cache.get(key)
        if not isinstance(found, MarginNeeded):
            sizing = AccountAllocation(
                account_id=account.pk,
                broker=account.broker,
                priority=allocation.priority,
                multiplier=allocation.multiplier,
                fixed_lots=allocation.fixed_lots,
            )
            found = strategy_margin_needed(
                version=version,
                account=account,
                lots_for=lambda leg, s=sizing: s.lots(leg.lots),
            )
            cache.set(key, found, CACHE_SECONDS)
        results.append(found)
    return results
