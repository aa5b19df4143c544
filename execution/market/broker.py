"""Market data from a trading account's broker (item 1): the same calls dispatch and the watch
make on the simulated market (`spot`, `option_quote`), answered from the broker's quote API,
with a freshness bound.

- Index spot and option quotes come from the account's adapter in the broker's notation: the
  index keys below, and each contract's symbol or token from the broker's instrument master
  (`BrokerSymbol`). Quotes are fetched in batches within each broker's documented per-call
  limit and remembered for the instant they were asked for.
- A quote older than `conf.quote_max_age_seconds()` raises `StalePriceError` ("no fresh price").
  Kite's quotes carry the exchange's timestamp; for the other brokers the moment our client
  received the answer stands in for it.
- Option chains for premium or delta strike picks are not served from broker quotes yet:
  `chain()` raises LookupError, and such a live run is held with that reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from brokers.base import BrokerError

logger = logging.getLogger(__name__)

# Index quote keys in each broker's notation (their quote APIs' documented index names).
INDEX_KEYS: dict[str, dict[str, str]] = {
    "kite": {"NIFTY": "NSE:NIFTY 50", "BANKNIFTY": "NSE:NIFTY BANK", "SENSEX": "BSE:SENSEX"},
    "upstox": {
        "NIFTY": "NSE_INDEX|Nifty 50",
        "BANKNIFTY": "NSE_INDEX|Nifty Bank",
        "SENSEX": "BSE_INDEX|SENSEX",
    },
    "angelone": {"NIFTY": "NSE:99926000", "BANKNIFTY": "NSE:99926009", "SENSEX": "BSE:99919000"},
    "fyers": {
        "NIFTY": "NSE:NIFTY50-INDEX",
        "BANKNIFTY": "NSE:NIFTYBANK-INDEX",
        "SENSEX": "BSE:SENSEX-INDEX",
    },
    "dhan": {"NIFTY": "IDX_I:13", "BANKNIFTY": "IDX_I:25", "SENSEX": "IDX_I:51"},
}
# Instruments per quote call (reference: Kite 500 per /quote, Upstox 500 per v3 LTP; Angel One
# and Fyers 50 per call; Dhan 1000 per marketfeed call).
QUOTE_BATCH = {"kite": 500, "upstox": 500, "angelone": 50, "fyers": 50, "dhan": 1000}
BROKERS_WITH_QUOTES = tuple(INDEX_KEYS)


class StalePriceError(LookupError):
    """No price fresh enough to act on; the message says which and how old."""


@dataclasses.dataclass(frozen=True)
class BrokerQuote:
    ltp: Decimal
    bid: Decimal | None
    ask: Decimal | None
    at: datetime


def contract_key(broker: str, exchange: str, tradingsymbol: str, token: str) -> str:
    """How the broker's quote API names a contract from its master's symbol and token."""
    if broker == "kite":
        return f"{exchange}:{tradingsymbol}"
    if broker == "upstox":
        return token
    if broker == "angelone":
        return f"{exchange}:{token}"
    if broker == "dhan":
        return f"{'BSE_FNO' if exchange == 'BFO' else 'NSE_FNO'}:{token}"
    return tradingsymbol  # fyers: NSE:NIFTY26D0821000CE


class BrokerMarket:
    """Quotes of one broker account. `name` is what a run records as its price source.

    `fallbacks`: other connected accounts of the same broker, tried in order when a quote call
    through the current one fails (a boundary's shared market, `boundary_markets`). A key whose
    fetch failed is remembered as failed for this instant: every run that asks for it gets the
    same reason at once, without another call."""

    def __init__(
        self,
        account: Any,
        adapter: Any = None,
        *,
        max_age: float | None = None,
        fallbacks: Iterable[Any] = (),
    ):
        from execution import conf

        self.broker = account.broker
        self.max_age = timedelta(
            seconds=conf.quote_max_age_seconds() if max_age is None else max_age
        )
        self._use(account, adapter)
        self._fallbacks = [a for a in fallbacks if a.pk != account.pk]
        self._quotes: dict[str, BrokerQuote] = {}
        self._failed: dict[str, StalePriceError] = {}
        self._keys: dict[tuple[str, date, Decimal, str], str | None] = {}
        self.calls = 0  # quote calls made (one per batch): what sharing saves is countable

    def _use(self, account: Any, adapter: Any = None) -> None:
        from brokers.registry import get_adapter

        self.account = account
        self.adapter = adapter or get_adapter(account)
        self.name = f"{account.get_broker_display()} quotes ({account.label})"

    # --- fetching ---------------------------------------------------------------------------
    def fetch(self, keys: list[str]) -> dict[str, BrokerQuote]:
        """Quotes of these keys in batches within the broker's per-call limit (remembered:
        one instant, one read per key). A failed call is retried through the next fallback
        account; when none is left, BrokerError becomes StalePriceError."""
        wanted = list(dict.fromkeys(keys))
        missing = [k for k in wanted if k not in self._quotes and k not in self._failed]
        batch = QUOTE_BATCH.get(self.broker, 50)
        for start in range(0, len(missing), batch):
            chunk = missing[start : start + batch]
            try:
                self._quotes.update(self._read_with_fallback(chunk))
            except StalePriceError as exc:
                self._failed.update(dict.fromkeys(chunk, exc))
        failed = [self._failed[k] for k in wanted if k in self._failed and k not in self._quotes]
        if failed:
            raise failed[0]
        return {k: self._quotes[k] for k in keys if k in self._quotes}

    def _read_with_fallback(self, keys: list[str]) -> dict[str, BrokerQuote]:
        while True:
            try:
                self.calls += 1
                return self._read(keys)
            except BrokerError as exc:
                if not self._fallbacks:
                    raise StalePriceError(f"no price from {self.name}: {exc.message}") from exc
                failed = self.name
                self._use(self._fallbacks.pop(0))
                logger.warning("quotes through %s failed (%s): using %s", failed, exc, self.name)

    def _read(self, keys: list[str]) -> dict[str, BrokerQuote]:
        received = timezone.now()
        if self.broker == "kite":
            from brokers.kite.market import quotes_with_time

            rows = quotes_with_time(self.adapter, keys)
        else:
            rows = {key: (quote, None) for key, quote in self.adapter.quote(keys).items()}
        return {
            key: BrokerQuote(quote.last_price, quote.bid, quote.ask, at or received)
            for key, (quote, at) in rows.items()
            if quote.last_price and quote.last_price > 0
        }

    def fresh(self, key: str, what: str, *, now: datetime | None = None) -> BrokerQuote:
        quote = self.fetch([key]).get(key)
        if quote is None:
            raise StalePriceError(f"no fresh price: {self.name} has no quote for {what}")
        age = (now or timezone.now()) - quote.at
        if age > self.max_age:
            raise StalePriceError(
                f"no fresh price: {what} from {self.name} is {age.total_seconds():.0f} s old "
                f"(limit {self.max_age.total_seconds():.0f} s)"
            )
        return quote

    # --- the calls dispatch and the watch make on a market ------------------------------------
    def spot(self, symbol: str, at: datetime | None = None) -> Decimal:
        key = INDEX_KEYS.get(self.broker, {}).get(symbol)
        if key is None:
            raise StalePriceError(f"no fresh price: {self.name} has no index quote for {symbol}")
        return self.fresh(key, f"{symbol} spot").ltp

    def option_quote(
        self,
        underlying: str,
        expiry: date,
        strike: Decimal,
        option_type: str,
        at: datetime | None = None,
    ) -> BrokerQuote:
        key = self.key_for(underlying, expiry, strike, option_type)
        return self.fresh(key, f"{underlying} {expiry:%d-%b} {strike} {option_type}")

    def key_for(self, underlying: str, expiry: date, strike: Decimal, option_type: str) -> str:
        wanted = (underlying, expiry, Decimal(strike), option_type)
        if wanted not in self._keys:
            self.keys_load(underlying, [expiry], strikes=[Decimal(strike)])
        key = self._keys.get(wanted)
        if key is None:
            raise StalePriceError(
                f"no fresh price: {underlying} {expiry} {strike} {option_type} is not in "
                f"{self.account.get_broker_display()}'s instrument master"
            )
        return key

    def keys_load(
        self, underlying: str, expiries: Iterable[date], *, strikes: Iterable[Decimal] = ()
    ) -> None:
        """Remember the quote keys of the master's contracts of `underlying` at these expiries
        (all strikes, or only `strikes`) in one query: a boundary loads them before T - ε, so
        that the quotes read at T - ε cost no database lookups."""
        from execution.models import BrokerSymbol

        expiries = list(expiries)
        strikes = [Decimal(s) for s in strikes]
        rows = BrokerSymbol.objects.filter(
            broker=self.broker,
            instrument__underlying__symbol=underlying,
            instrument__expiry__in=expiries,
        )
        if strikes:
            rows = rows.filter(instrument__strike__in=strikes)
            for expiry in expiries:
                for strike in strikes:
                    for option_type in ("CE", "PE"):
                        self._keys.setdefault((underlying, expiry, strike, option_type), None)
        for tradingsymbol, token, segment, expiry, strike, option_type in rows.values_list(
            "tradingsymbol",
            "token",
            "instrument__underlying__segment",
            "instrument__expiry",
            "instrument__strike",
            "instrument__option_type",
        ):
            self._keys[(underlying, expiry, Decimal(strike), option_type)] = contract_key(
                self.broker, segment, tradingsymbol, token
            )

    def symbol_key(self, tradingsymbol: str, token: str, exchange: str) -> str:
        return contract_key(self.broker, exchange, tradingsymbol, token)

    def chain(self, *args: Any, **kwargs: Any) -> list[Any]:
        raise LookupError(
            f"premium and delta strike picks need an option chain, which is not read from "
            f"{self.name} yet"
        )


def _usable(account: Any) -> bool:
    from brokers.models import AccountStatus

    return (
        account.broker in BROKERS_WITH_QUOTES
        and account.status == AccountStatus.CONNECTED
        and (account.token_expires_at is None or account.token_expires_at > timezone.now())
    )


def live_market_for(account: Any, *, candidates: list[Any]) -> BrokerMarket | None:
    """The market of the account that trades, else of another connected account of the same
    owner at a broker with a quote API; never the simulator (None: no source)."""
    if _usable(account):
        return BrokerMarket(account)
    for other in candidates:
        if other.pk != account.pk and other.owner_id == account.owner_id and _usable(other):
            return BrokerMarket(other)
    return None


def boundary_markets(accounts: Iterable[Any]) -> dict[str, BrokerMarket]:
    """One market per live broker for one boundary: its quotes are read once for every run
    of that broker, through the first connected account of the broker among `accounts`
    (lowest id), the next ones as fallbacks should a call through it fail."""
    by_broker: dict[str, list[Any]] = {}
    for account in sorted(accounts, key=lambda a: a.pk):
        if not account.is_paper and _usable(account):
            by_broker.setdefault(account.broker, []).append(account)
    return {
        broker: BrokerMarket(found[0], fallbacks=found[1:]) for broker, found in by_broker.items()
    }


def fetch_all(wanted: dict[BrokerMarket, list[str]]) -> None:
    """Read each market's keys, the brokers concurrently (one thread per broker, each its own
    adapter and connections). A market that cannot answer remembers why (its runs are held
    with that reason when they ask); nothing is raised here."""
    wanted = {market: keys for market, keys in wanted.items() if keys}

    def one(market: BrokerMarket) -> None:
        with contextlib.suppress(StalePriceError):  # remembered per key by the market
            market.fetch(wanted[market])

    if len(wanted) == 1:
        one(next(iter(wanted)))
        return
    with ThreadPoolExecutor(max_workers=max(1, len(wanted))) as pool:
        list(pool.map(one, wanted))


class LivePrices:
    """Contract prices for the watch: each live broker's own quotes (one batch per broker
    and tick), the simulator for paper accounts. A stale or missing broker quote gives no
    price (so no exit fires on it) and is kept in `stale` for the alert."""

    def __init__(self, simulated: Any, markets: dict[str, BrokerMarket], now: datetime):
        self.simulated = simulated
        self.markets = markets
        self.now = now
        self.stale: dict[tuple[str, str], str] = {}
        self._keys: dict[tuple[str, str], tuple[str, Decimal] | None] = {}

    def prefetch(self, contracts: list[tuple[str, str]]) -> None:
        """Read every (broker, trading symbol) of live brokers in as few calls as allowed."""
        from execution.models import BrokerSymbol

        wanted: dict[str, list[str]] = {}
        for broker, symbol in contracts:
            if broker in self.markets:
                wanted.setdefault(broker, []).append(symbol)
        for broker, symbols in wanted.items():
            rows = BrokerSymbol.objects.select_related("instrument__underlying").filter(
                broker=broker, tradingsymbol__in=symbols
            )
            for row in rows:
                key = contract_key(
                    broker, row.instrument.underlying.segment, row.tradingsymbol, row.token
                )
                self._keys[(broker, row.tradingsymbol)] = (key, row.instrument.tick_size)
            keys = [k[0] for s in symbols if (k := self._keys.get((broker, s)))]
            try:
                self.markets[broker].fetch(keys)
            except StalePriceError as exc:
                for symbol in symbols:
                    self.stale[(broker, symbol)] = str(exc)

    def quote(self, *, broker: str, tradingsymbol: str) -> tuple[Decimal, Decimal] | None:
        if broker == "paper":
            return self.simulated.quote(broker=broker, tradingsymbol=tradingsymbol)
        market = self.markets.get(broker)
        if market is None:  # a live position is never marked by the simulator
            self.stale[(broker, tradingsymbol)] = "no connected account gives quotes"
            return None
        if (broker, tradingsymbol) not in self._keys:
            self.prefetch([(broker, tradingsymbol)])
        found = self._keys.get((broker, tradingsymbol))
        if found is None:
            self.stale[(broker, tradingsymbol)] = f"{tradingsymbol} is not in the master"
            return None
        key, tick = found
        try:
            quote = market.fresh(key, tradingsymbol, now=self.now)
        except StalePriceError as exc:
            self.stale[(broker, tradingsymbol)] = str(exc)
            return None
        return quote.ltp, tick

    def ltp(self, *, broker: str, tradingsymbol: str) -> Decimal | None:
        found = self.quote(broker=broker, tradingsymbol=tradingsymbol)
        return None if found is None else found[0]


def live_prices(positions: list[Any], *, simulated: Any, now: datetime) -> LivePrices:
    """Prices for these positions: one BrokerMarket per live broker (its first account that
    can quote, or another of the owner's), the simulator for the rest."""
    markets: dict[str, BrokerMarket] = {}
    accounts = {p.account_id: p.account for p in positions}
    for account in accounts.values():
        if account.is_paper or account.broker in markets:
            continue
        market = live_market_for(account, candidates=list(accounts.values()))
        if market is not None:
            markets[account.broker] = market
    prices = LivePrices(simulated, markets, now)
    prices.prefetch([(p.account.broker, p.tradingsymbol) for p in positions])
    return prices
