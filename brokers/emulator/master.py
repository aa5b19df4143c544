"""The emulated exchange's contract list, from which every emulator serves its broker's
instrument master (Kite CSV, Upstox JSON, Angel One scrip master JSON, Fyers symbol CSV, Dhan
scrip CSV) and knows the instrument ids its orders and quotes name.

One list per emulator, as one exchange lists one set of contracts: each contract has the
exchange's own token (``exchange_token``), from which each emulator derives its broker's id
(Kite ``instrument_token`` = token * 256 + a segment number, an emulator convention; Upstox
``NSE_FO|<token>``, Angel ``symboltoken`` and Dhan ``securityId`` = the token, Fyers
``fyToken`` = a segment prefix + the token). Trading symbols come from execution.reference.symbols.

By default the list is made from the emulator's clock and market when a master is first asked
for on a day: the next two weekly and next two monthly expiries of NIFTY and SENSEX, the next
two monthlies of BANKNIFTY, strikes around spot. The lot sizes of this default are the
emulated broker's data (the values of late 2026), not ours; a test that needs other contracts
or lot sizes sets the list through the control plane (``EmulatorHandle.set_master``), and a
test of a broken download makes the master ``empty`` or ``corrupt``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

# The emulated broker's listing rules (not ours: the platform reads lot sizes from its own
# dated rows and checks them against the master).
DEFAULT_LISTING: tuple[dict[str, Any], ...] = (
    {"underlying": "NIFTY", "exchange": "NFO", "lot_size": 65, "step": 50, "weekday": 1,
     "weekly": True, "token_base": 40000, "index": "NIFTY 50"},
    {"underlying": "BANKNIFTY", "exchange": "NFO", "lot_size": 30, "step": 100, "weekday": 1,
     "weekly": False, "token_base": 50000, "index": "NIFTY BANK"},
    {"underlying": "SENSEX", "exchange": "BFO", "lot_size": 20, "step": 100, "weekday": 3,
     "weekly": True, "token_base": 60000, "index": "SENSEX"},
)  # fmt: skip
STRIKES_EACH_SIDE = 10


@dataclasses.dataclass(frozen=True)
class IndexRow:
    """An index as the brokers list it (quotes only, never traded)."""

    name: str  # the emulators' quote name: NIFTY 50, NIFTY BANK, SENSEX
    underlying: str
    exchange: str  # NSE / BSE
    exchange_token: int


# Index tokens chosen so that Kite's numbers come out (256265 = 1001 * 256 + 9, NIFTY 50).
INDICES = (
    IndexRow("NIFTY 50", "NIFTY", "NSE", 1001),
    IndexRow("NIFTY BANK", "BANKNIFTY", "NSE", 1016),
    IndexRow("SENSEX", "SENSEX", "BSE", 1),
)


@dataclasses.dataclass(frozen=True)
class Contract:
    exchange_token: int
    underlying: str
    exchange: str  # NFO / BFO
    expiry: date
    strike: Decimal
    option_type: str
    lot_size: int
    monthly: bool
    tick_size: Decimal = Decimal("0.05")

    @property
    def kite_symbol(self) -> str:
        """The emulators' canonical name (the simulated market prices Kite symbols)."""
        from execution.reference.symbols import kite_tradingsymbol

        return kite_tradingsymbol(
            self.underlying, self.expiry, self.strike, self.option_type, monthly=self.monthly
        )

    @property
    def index_exchange(self) -> str:
        return "BSE" if self.exchange == "BFO" else "NSE"

    def to_json(self) -> dict[str, Any]:
        return {
            "exchange_token": self.exchange_token,
            "underlying": self.underlying,
            "exchange": self.exchange,
            "expiry": self.expiry.isoformat(),
            "strike": str(self.strike),
            "option_type": self.option_type,
            "lot_size": self.lot_size,
            "monthly": self.monthly,
            "tick_size": str(self.tick_size),
        }

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Contract:
        return cls(
            exchange_token=int(row["exchange_token"]),
            underlying=str(row["underlying"]),
            exchange=str(row.get("exchange", "NFO")),
            expiry=date.fromisoformat(str(row["expiry"])),
            strike=Decimal(str(row["strike"])),
            option_type=str(row["option_type"]),
            lot_size=int(row["lot_size"]),
            monthly=bool(row.get("monthly", False)),
            tick_size=Decimal(str(row.get("tick_size", "0.05"))),
        )


def _last_weekday(year: int, month: int, weekday: int) -> date:
    from execution.reference.symbols import last_weekday_of_month

    return last_weekday_of_month(year, month, weekday)


def listed_expiries(today: date, *, weekday: int, weekly: bool) -> list[tuple[date, bool]]:
    """(expiry, monthly) of the next two weeklies (if any) and the next two monthlies."""
    monthlies: list[date] = []
    year, month = today.year, today.month
    while len(monthlies) < 2:
        last = _last_weekday(year, month, weekday)
        if last >= today:
            monthlies.append(last)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    found = {d: True for d in monthlies}
    if weekly:
        day = today + timedelta(days=(weekday - today.weekday()) % 7)
        while sum(1 for monthly in found.values() if not monthly) < 2:
            found.setdefault(day, False)
            day += timedelta(days=7)
    return sorted(found.items())


def default_contracts(today: date, spot_of: Callable[[str, str], Decimal | None]) -> list[Contract]:
    """The default listing for `today`: strikes around each index's spot now."""
    contracts = []
    for listing in DEFAULT_LISTING:
        index_exchange = "BSE" if listing["exchange"] == "BFO" else "NSE"
        spot = spot_of(index_exchange, listing["index"])
        if spot is None:
            continue
        step = Decimal(listing["step"])
        atm = (spot / step).quantize(Decimal(1)) * step
        expiries = listed_expiries(today, weekday=listing["weekday"], weekly=listing["weekly"])
        token = listing["token_base"]
        for expiry, monthly in expiries:
            for offset in range(-STRIKES_EACH_SIDE, STRIKES_EACH_SIDE + 1):
                if atm + offset * step <= 0:
                    continue  # a test market with a toy index level
                for option_type in ("CE", "PE"):
                    token += 1
                    contracts.append(
                        Contract(
                            exchange_token=token,
                            underlying=listing["underlying"],
                            exchange=listing["exchange"],
                            expiry=expiry,
                            strike=atm + offset * step,
                            option_type=option_type,
                            lot_size=listing["lot_size"],
                            monthly=monthly,
                        )
                    )
    return contracts


class Master:
    """The contracts of the day and how the master download behaves (`mode`: ``ok``,
    ``empty`` (a file with its header only), ``corrupt`` (bytes that are not the format),
    ``missing`` (HTTP 404))."""

    MODES = ("ok", "empty", "corrupt", "missing")

    def __init__(self, clock: Callable[[], datetime], spot_of: Callable[[str, str], Any]):
        self._clock = clock
        self._spot_of = spot_of
        self._explicit: list[Contract] | None = None
        self._built_for: date | None = None
        self._contracts: list[Contract] = []
        self.mode = "ok"
        self.on_change: list[Callable[[Iterable[Contract]], None]] = []

    def set(self, contracts: list[Contract] | None) -> None:
        """Replace the default listing (None goes back to it)."""
        self._explicit = contracts
        self._built_for = None

    def contracts(self, today: date) -> list[Contract]:
        if self._built_for != today:
            self._contracts = (
                list(self._explicit)
                if self._explicit is not None
                else default_contracts(today, self._spot)
            )
            self._built_for = today
            for callback in self.on_change:
                callback(self._contracts)
        return self._contracts

    def _spot(self, exchange: str, name: str) -> Decimal | None:
        quote = self._spot_of(exchange, name)
        return None if quote is None else quote.last_price
