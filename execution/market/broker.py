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
- Every quote call takes a slot of the account's one budget shared with its orders (and of the
  broker's own quote limit where it documents one: `brokers.ratelimit.quote_slot_take`); no
  slot within a second counts as no fresh price.
- `chain()` builds an option chain for an expiry from the instrument master's strikes around
  the broker's spot, quoted in batches; IV and Greeks come from `execution.market.pricing` (Black-76
  on the forward, vollib) with the broker's LTP, OI where the broker's quote carries it.
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
PRICE_SOURCE_LENGTH = 80


class StalePriceError(LookupError):
    """No price fresh enough to act on; the message says which and how old."""


@dataclasses.dataclass(frozen=True)
class BrokerQuote:
    ltp: Decimal
    bid: Decimal | None
    ask: Decimal | None
    at: datetime
    oi: int | None = None


@dataclasses.dataclass(frozen=True)
class BrokerOptionQuote:
    """One side of a broker chain row: the quote, and the IV and Greeks implied by its LTP
    (iv None where no volatility reproduces the LTP: at or below intrinsic; the Greeks are
    then the payoff's)."""

    tradingsymbol: str
    ltp: Decimal
    bid: Decimal | None
    ask: Decimal | None
    oi: int | None
    at: datetime
    iv: float | None
    delta: float
    gamma: float
    theta: float
    vega: float


@dataclasses.dataclass(frozen=True)
class BrokerChainRow:
    strike: Decimal
    ce: BrokerOptionQuote
    pe: BrokerOptionQuote


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
        # Asked and not answered this instant: not asked again; the reader says in words
        # which quote is missing (`fresh`).
        self._unanswered: set[str] = set()
        self._keys: dict[tuple[str, date, Decimal, str], str | None] = {}
        self.calls = 0  # quote calls made (one per batch): what sharing saves is countable
        # A request slot reserved ahead for the next call (`read_reserve`), as epoch seconds.
        self._reserved: float | None = None

    def _use(self, account: Any, adapter: Any = None) -> None:
        from brokers.registry import get_adapter

        self.account = account
        self.adapter = adapter or get_adapter(account)
        # What a run records as its price source (ScheduledRun.price_source: 80 characters).
        self.name = f"{account.get_broker_display()} quotes ({account.label})"[:PRICE_SOURCE_LENGTH]

    # --- fetching ---------------------------------------------------------------------------
    def fetch(self, keys: list[str]) -> dict[str, BrokerQuote]:
        """Quotes of these keys in batches within the broker's per-call limit (remembered:
        one instant, one read per key). A failed call is retried through the next fallback
        account; when none is left, BrokerError becomes StalePriceError."""
        wanted = list(dict.fromkeys(keys))
        missing = [
            k
            for k in wanted
            if k not in self._quotes and k not in self._failed and k not in self._unanswered
        ]
        batch = QUOTE_BATCH.get(self.broker, 50)
        for start in range(0, len(missing), batch):
            chunk = missing[start : start + batch]
            try:
                answered = self._read_with_fallback(chunk)
            except StalePriceError as exc:
                self._failed.update(dict.fromkeys(chunk, exc))
                continue
            self._quotes.update(answered)
            # asked and not answered: no quote this instant, no second call
            self._unanswered.update(key for key in chunk if key not in answered)
        failed = [self._failed[k] for k in wanted if k in self._failed and k not in self._quotes]
        if failed:
            raise failed[0]
        return {k: self._quotes[k] for k in keys if k in self._quotes}

    def _read_with_fallback(self, keys: list[str]) -> dict[str, BrokerQuote]:
        while True:
            try:
                self.calls += 1
                return self._read(keys)
            except (BrokerError, StalePriceError) as exc:
                # A refused call, or no request slot free on this account (its budget is
                # shared with its orders): the next account of the broker has its own.
                if not self._fallbacks:
                    if isinstance(exc, StalePriceError):
                        raise
                    raise StalePriceError(f"no price from {self.name}: {exc.message}") from exc
                failed = self.name
                self._use(self._fallbacks.pop(0))
                logger.warning("quotes through %s failed (%s): using %s", failed, exc, self.name)

    def forget(self) -> None:
        """Forget the quotes read so far (the next instant is read afresh)."""
        self._quotes.clear()
        self._failed.clear()
        self._unanswered.clear()

    def read_reserve(self, at: datetime) -> bool:
        """Reserve the request slot of one quote call at `at` (the broker's own quote limit
        and the account's budget shared with its orders), so that the call made then waits for
        none (Kite allows one quote request a second). False: the window ending at `at` is
        full; the call then takes a slot as any other."""
        from brokers.ratelimit import quote_slot_reserve
        from execution.markettime import IST

        reserved = quote_slot_reserve(
            account_id=self.account.pk,
            broker=self.broker,
            ops_limit=self.account.orders_per_second,
            day=at.astimezone(IST).date(),
            at_epoch=at.timestamp(),
        )
        self._reserved = at.timestamp() if reserved else None
        return reserved

    def _read(self, keys: list[str]) -> dict[str, BrokerQuote]:
        import time

        from brokers.ratelimit import quote_slot_take
        from execution.markettime import IST

        reserved, self._reserved = self._reserved, None
        if reserved is not None and time.time() >= reserved:
            pass  # the slot of this call was reserved for this instant (read_reserve)
        elif not quote_slot_take(
            account_id=self.account.pk,
            broker=self.broker,
            ops_limit=self.account.orders_per_second,
            day=timezone.now().astimezone(IST).date(),
        ):
            raise StalePriceError(
                f"no fresh price: no request slot came free for {self.name} (quotes share "
                f"the account's requests per second with its orders)"
            )
        received = timezone.now()
        if self.broker == "kite":
            from brokers.kite.market import quotes_with_time

            rows = quotes_with_time(self.adapter, keys)
        else:
            rows = {key: (quote, None) for key, quote in self.adapter.quote(keys).items()}
        return {
            key: BrokerQuote(
                quote.last_price, quote.bid, quote.ask, at or received, getattr(quote, "oi", None)
            )
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

    def prefetch_options(self, contracts: list[tuple[str, date, Decimal, str]]) -> None:
        """Quote these (underlying, expiry, strike, CE/PE) contracts in as few calls as the
        broker allows, so the per-leg `option_quote` calls that follow make none."""
        keys = []
        for contract in contracts:
            try:
                keys.append(self.key_for(*contract))
            except StalePriceError:
                continue  # option_quote says so, for that leg
        self.fetch(keys)

    def chain(
        self,
        symbol: str,
        expiry: date,
        *,
        strike_step: Decimal,
        strikes_each_side: int = 10,
        at: datetime | None = None,
    ) -> list[BrokerChainRow]:
        """Strikes of `expiry` in the broker's master around the ATM strike (nearest multiple
        of `strike_step` to the broker's spot), CE and PE each, quoted in batches. A strike
        with a side unquoted or stale is left out; StalePriceError when the spot is not fresh,
        LookupError when no strike is left."""
        from execution.market import pricing
        from execution.market.sessions import reference_hours
        from execution.market.simulated import DEFAULT_RATE
        from execution.models import BrokerSymbol

        if strike_step <= 0 or strikes_each_side < 0:
            raise ValueError("strike_step must be positive and strikes_each_side not negative")
        now = timezone.now()
        spot = self.spot(symbol)
        step = Decimal(strike_step)
        atm = (spot / step).quantize(Decimal(1)) * step
        low, high = atm - strikes_each_side * step, atm + strikes_each_side * step
        rows = (
            BrokerSymbol.objects.select_related("instrument__underlying")
            .filter(
                broker=self.broker,
                instrument__underlying__symbol=symbol,
                instrument__expiry=expiry,
                instrument__strike__gte=low,
                instrument__strike__lte=high,
                instrument__option_type__in=["CE", "PE"],
            )
            .order_by("instrument__strike")
        )
        keys: dict[tuple[Decimal, str], tuple[str, str]] = {}
        for row in rows:
            instrument = row.instrument
            keys[(instrument.strike, instrument.option_type)] = (
                contract_key(
                    self.broker, instrument.underlying.segment, row.tradingsymbol, row.token
                ),
                row.tradingsymbol,
            )
        quotes = self.fetch([key for key, _ in keys.values()])
        t = pricing.year_fraction(now, expiry, expiry_close=reference_hours().on(expiry)[1])
        forward = pricing.forward_price(spot=float(spot), t=t, r=DEFAULT_RATE)

        def side(strike: Decimal, option_type: str) -> BrokerOptionQuote | None:
            key, tradingsymbol = keys.get((strike, option_type), ("", ""))
            quote = quotes.get(key)
            if quote is None or now - quote.at > self.max_age:
                return None
            iv = pricing.implied_volatility(
                price=float(quote.ltp),
                forward=forward,
                strike=float(strike),
                t=t,
                r=DEFAULT_RATE,
                option_type=option_type,
            )
            greeks = pricing.greeks(
                forward=forward,
                strike=float(strike),
                t=t if iv else 0.0,
                r=DEFAULT_RATE,
                sigma=iv or 0.0,
                option_type=option_type,
            )
            return BrokerOptionQuote(
                tradingsymbol=tradingsymbol,
                ltp=quote.ltp,
                bid=quote.bid,
                ask=quote.ask,
                oi=quote.oi,
                at=quote.at,
                iv=iv,
                delta=greeks.delta,
                gamma=greeks.gamma,
                theta=greeks.theta,
                vega=greeks.vega,
            )

        chain = []
        for strike in sorted({strike for strike, _ in keys}):
            ce, pe = side(strike, "CE"), side(strike, "PE")
            if ce is not None and pe is not None:
                chain.append(BrokerChainRow(strike=strike, ce=ce, pe=pe))
        if not chain:
            raise LookupError(
                f"no option chain: {self.name} has no fresh quotes for {symbol} "
                f"{expiry:%d-%b-%Y} strikes around {atm}"
            )
        return chain


def _usable(account: Any) -> bool:
    from brokers.models import AccountStatus

    return (
        account.broker in BROKERS_WITH_QUOTES
        and account.status == AccountStatus.CONNECTED
        and (account.token_expires_at is None or account.token_expires_at > timezone.now())
    )


# How a run's prices are chosen, at dispatch and in the watch alike: a live run by its broker's
# own quotes (`boundary_markets`), a paper run whose owner chose a live account by exactly that
# account (`price_account_market`), any other paper or test run by the simulator. Never the
# simulator for a run whose source cannot quote: it is held, or left unmarked.


def price_account_market(account: Any) -> BrokerMarket | None:
    """The market of exactly this account, the price source a trader chose for a paper run
    ("paper on live prices"); None when it cannot quote now (never another account's)."""
    return BrokerMarket(account) if _usable(account) else None


def boundary_markets(accounts: Iterable[Any]) -> dict[str, BrokerMarket]:
    """One market per live broker, for one boundary or one round of the watch: its quotes are
    read once for every run of that broker, through the first connected account of the broker
    among `accounts` (lowest id), the next ones as fallbacks should a call through it fail."""
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


class PaperLiveMarket:
    """ "Paper on live prices": a paper run priced by the quotes of one of its owner's live
    accounts. Spot, strikes and reference prices come from that broker (as for a live run);
    each contract it quotes is also left as the paper books' live touch
    (brokers.paper.market.live_touch_set), so the paper orders fill at the live price."""

    def __init__(self, inner: BrokerMarket, paper_account_ids: list[int]) -> None:
        self.inner = inner
        self.paper_account_ids = paper_account_ids
        label = inner.account.label[: PRICE_SOURCE_LENGTH - 40]
        self.name = f"{inner.account.get_broker_display()} quotes ({label}), paper"

    def spot(self, symbol: str, at: datetime | None = None) -> Decimal:
        return self.inner.spot(symbol, at)

    def prefetch_options(self, contracts: list[tuple[str, date, Decimal, str]]) -> None:
        self.inner.prefetch_options(contracts)

    def chain(self, *args: Any, **kwargs: Any) -> list[BrokerChainRow]:
        return self.inner.chain(*args, **kwargs)

    def option_quote(
        self,
        underlying: str,
        expiry: date,
        strike: Decimal,
        option_type: str,
        at: datetime | None = None,
    ) -> BrokerQuote:
        from brokers.paper.market import live_touch_set
        from execution.models import BrokerSymbol

        quote = self.inner.option_quote(underlying, expiry, strike, option_type, at)
        # The paper broker speaks Kite's notation.
        symbol = (
            BrokerSymbol.objects.filter(
                broker="kite",
                instrument__underlying__symbol=underlying,
                instrument__expiry=expiry,
                instrument__strike=strike,
                instrument__option_type=option_type,
            )
            .values_list("tradingsymbol", flat=True)
            .first()
        )
        if symbol:
            for account_id in self.paper_account_ids:
                live_touch_set(
                    account_id=account_id,
                    tradingsymbol=symbol,
                    ltp=quote.ltp,
                    bid=quote.bid,
                    ask=quote.ask,
                )
        return quote


def paper_live_sources(runs: list[Any], skipped: dict[int, str]) -> dict[int, PaperLiveMarket]:
    """run id → the live market pricing each paper run whose owner chose one of their live
    accounts as its price source ("paper on live prices"). A chosen account that can no longer
    quote (disconnected, token dead, not the owner's) holds the run: a paper run on live
    prices is never priced by the simulator in their place."""
    from brokers.models import BrokerAccount

    wanted = [
        r
        for r in runs
        if r.pk not in skipped
        and r.price_account_id
        and all(a.get("broker") == "paper" for a in r.allocations)  # never a live run
    ]
    if not wanted:
        return {}
    accounts = {
        a.pk: a for a in BrokerAccount.objects.filter(pk__in={r.price_account_id for r in wanted})
    }
    markets: dict[int, BrokerMarket] = {}
    found: dict[int, PaperLiveMarket] = {}
    for run in wanted:
        account = accounts.get(run.price_account_id)
        if account is None or account.owner_id != run.owner_id:
            skipped[run.pk] = "No fresh price: the chosen price source is not yours: not sent."
            continue
        if account.pk not in markets:
            market = price_account_market(account)
            if market is None:
                skipped[run.pk] = (
                    f"No fresh price: {account.label}, chosen to price this paper run, is not "
                    f"connected: not sent."
                )
                continue
            markets[account.pk] = market
        paper = [int(a["account_id"]) for a in run.allocations if a.get("broker") == "paper"]
        found[run.pk] = PaperLiveMarket(markets[account.pk], paper)
    return found


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
        # Paper on live prices: run id → (the live market, its paper accounts).
        self.paper_live: dict[int, tuple[BrokerMarket, list[int]]] = {}
        self.paper_held: set[int] = set()  # paper runs whose chosen price source cannot quote
        self._at: dict[tuple[str, str], datetime] = {}

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

    def quoted_at(self, *, broker: str, tradingsymbol: str) -> datetime:
        """When the last price given for this contract was quoted (the broker's time where it
        gives one; now for the simulator)."""
        return self._at.get((broker, tradingsymbol), self.now)

    def quote(
        self, *, broker: str, tradingsymbol: str, run_id: int | None = None
    ) -> tuple[Decimal, Decimal] | None:
        if broker == "paper" and run_id in self.paper_held:
            return None
        if broker == "paper" and run_id in self.paper_live:
            return self._paper_live_quote(run_id, tradingsymbol)
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
        self._at[(broker, tradingsymbol)] = quote.at
        return quote.ltp, tick

    def _paper_live_quote(self, run_id: int, tradingsymbol: str) -> tuple[Decimal, Decimal] | None:
        from brokers.paper.market import live_touch_set
        from execution.models import Instrument
        from execution.reference.instruments import instrument_from_broker_symbol

        market, paper_accounts = self.paper_live[run_id]
        try:
            instrument = instrument_from_broker_symbol("kite", tradingsymbol)
        except Instrument.DoesNotExist:
            self.stale[("paper", tradingsymbol)] = f"{tradingsymbol} is not in the master"
            return None
        try:
            key = market.key_for(
                instrument.underlying.symbol,
                instrument.expiry,
                instrument.strike,
                instrument.option_type,
            )
            quote = market.fresh(key, tradingsymbol, now=self.now)
        except StalePriceError as exc:
            self.stale[("paper", tradingsymbol)] = str(exc)
            return None
        for account_id in paper_accounts:  # the paper book fills its exits at this price
            live_touch_set(
                account_id=account_id,
                tradingsymbol=tradingsymbol,
                ltp=quote.ltp,
                bid=quote.bid,
                ask=quote.ask,
            )
        self._at[("paper", tradingsymbol)] = quote.at
        return quote.ltp, instrument.tick_size

    def ltp(self, *, broker: str, tradingsymbol: str, run_id: int | None = None) -> Decimal | None:
        found = self.quote(broker=broker, tradingsymbol=tradingsymbol, run_id=run_id)
        return None if found is None else found[0]


def live_prices(positions: list[Any], *, simulated: Any, now: datetime) -> LivePrices:
    """Prices for these positions: one BrokerMarket per live broker, chosen as at dispatch
    (`boundary_markets` over the positions' accounts), the simulator for the rest."""
    markets = boundary_markets({p.account_id: p.account for p in positions}.values())
    prices = LivePrices(simulated, markets, now)
    prices.prefetch([(p.account.broker, p.tradingsymbol) for p in positions])
    paper_live_watch(prices, positions)
    return prices


def paper_live_watch(prices: LivePrices, positions: list[Any]) -> None:
    """Paper positions of runs priced by a live account ("paper on live prices") are marked
    with that account's quotes (one market per account, its contracts in one batch); a
    chosen account that cannot quote leaves them unmarked (never the simulator's price)."""
    from execution.models import Instrument
    from execution.reference.instruments import instrument_from_broker_symbol

    by_account: dict[int, BrokerMarket | None] = {}
    contracts: dict[int, list[tuple[str, date, Decimal, str]]] = {}
    for position in positions:
        run = position.run
        account = run.price_account if run.price_account_id else None
        if account is None or not position.account.is_paper:
            continue
        if account.pk not in by_account:
            by_account[account.pk] = price_account_market(account)
        market = by_account[account.pk]
        if market is None or account.owner_id != run.owner_id:
            prices.stale[("paper", position.tradingsymbol)] = (
                f"{account.label}, chosen to price this paper run, gives no quotes now"
            )
            prices.paper_held.add(run.pk)
            continue
        paper = prices.paper_live.setdefault(run.pk, (market, []))[1]
        if position.account_id not in paper:
            paper.append(position.account_id)
        try:
            instrument = instrument_from_broker_symbol("kite", position.tradingsymbol)
        except Instrument.DoesNotExist:
            continue
        contracts.setdefault(account.pk, []).append(
            (
                instrument.underlying.symbol,
                instrument.expiry,
                instrument.strike,
                instrument.option_type,
            )
        )
    for account_id, wanted in contracts.items():
        market = by_account[account_id]
        if market is None:
            continue
        try:
            market.prefetch_options(wanted)
        except StalePriceError:
            continue  # each position's quote says so
