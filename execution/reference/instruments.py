"""Option instruments: the simulated market's strike grid and the Kite instrument-master import.

Each instrument carries one `BrokerSymbol` per broker that knows it. Grid instruments get every
broker's documented symbol format (execution.reference.symbols) and a deterministic simulated
token; imported ones get the broker's own symbol and token. Tokens of grid instruments are ours,
not the brokers': they exist only for the paper broker and the emulators.
"""

from __future__ import annotations

import csv
import logging
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction

from execution.models import BrokerSymbol, Instrument, InstrumentSource, Underlying
from execution.reference import symbols
from execution.reference.calendar import ReferenceDataMissingError
from execution.reference.contracts import (
    NoSuchExpiryError,
    expiry_schedule,
    lot_size,
    resolve_underlying,
    strike_step,
)

logger = logging.getLogger(__name__)

BROKERS = ("kite", "upstox", "angelone", "fyers", "dhan")
_EPOCH = date(2000, 1, 1)


def sim_token(symbol: str, expiry: date, strike: Decimal, option_type: str) -> int:
    """A deterministic token that encodes the contract, so no two grid contracts share one.

    Digits: 3 for the underlying (from its name), 5 for the expiry (days since 2000), 9 for
    the strike in paise, 1 for CE (0) or PE (1).
    """
    code = zlib.crc32(symbol.encode()) % 900 + 100
    days = (expiry - _EPOCH).days
    paise = int(Decimal(strike) * 100)
    if not 0 <= days < 100_000 or not 0 < paise < 1_000_000_000:
        raise ValueError("expiry or strike outside the simulated token range")
    return ((code * 100_000 + days) * 1_000_000_000 + paise) * 10 + (option_type == "PE")


def grid_broker_symbols(
    underlying: Underlying, expiry: date, strike: Decimal, option_type: str, *, monthly: bool
) -> dict[str, tuple[str, str]]:
    """Each broker's (tradingsymbol, token) for a simulated contract."""
    sym, exchange = underlying.symbol, underlying.exchange
    token = str(sim_token(sym, expiry, strike, option_type))
    return {
        "kite": (
            symbols.kite_tradingsymbol(sym, expiry, strike, option_type, monthly=monthly),
            token,
        ),
        "upstox": (
            symbols.upstox_tradingsymbol(sym, expiry, strike, option_type),
            f"{exchange}_FO|{token}",
        ),
        "angelone": (symbols.angelone_tradingsymbol(sym, expiry, strike, option_type), token),
        "fyers": (
            symbols.fyers_tradingsymbol(
                sym, exchange, expiry, strike, option_type, monthly=monthly
            ),
            token,
        ),
        "dhan": (
            symbols.dhan_tradingsymbol(sym, expiry, strike, option_type, monthly=monthly),
            token,
        ),
    }


def instrument_for(
    underlying: Underlying | str, expiry: date, strike: Decimal | int | str, option_type: str
) -> Instrument:
    """The instrument of that contract, created on the simulated grid if it does not exist.

    Raises NoSuchExpiryError when `expiry` is not an expiry of the underlying and ValueError
    when the strike is off the strike grid.
    """
    und = resolve_underlying(underlying)
    strike = Decimal(str(strike))
    if option_type not in ("CE", "PE"):
        raise ValueError(f"option_type must be CE or PE, not {option_type!r}")
    existing = Instrument.objects.filter(
        underlying=und, expiry=expiry, strike=strike, option_type=option_type
    ).first()
    if existing is not None:
        return existing
    entries = [e for e in expiry_schedule(und, expiry, expiry) if e.day == expiry]
    if not entries:
        raise NoSuchExpiryError(f"{expiry} is not an expiry of {und}")
    step = strike_step(und, on=expiry)
    if strike <= 0 or strike % step != 0:
        raise ValueError(f"{und} strikes are multiples of {step}; {strike} is not")
    try:
        with transaction.atomic():
            instrument = Instrument.objects.create(
                underlying=und,
                expiry=expiry,
                strike=strike,
                option_type=option_type,
                lot_size=lot_size(und, expiry),
                tick_size=und.tick_size,
                source=InstrumentSource.GRID,
            )
            monthly = entries[0].monthly
            BrokerSymbol.objects.bulk_create(
                BrokerSymbol(instrument=instrument, broker=broker, tradingsymbol=ts, token=tok)
                for broker, (ts, tok) in grid_broker_symbols(
                    und, expiry, strike, option_type, monthly=monthly
                ).items()
            )
    except IntegrityError:
        # Another process created it first: theirs is the same contract.
        return Instrument.objects.get(
            underlying=und, expiry=expiry, strike=strike, option_type=option_type
        )
    return instrument


def broker_symbol(instrument: Instrument, broker: str) -> tuple[str, str]:
    """(tradingsymbol, token) of the instrument at that broker; LookupError if it has none."""
    row = next(
        (b for b in instrument.broker_symbols.all() if b.broker == broker),
        None,
    )
    if row is None:
        raise LookupError(f"{instrument} has no {broker} symbol")
    return row.tradingsymbol, row.token


def instrument_from_broker_symbol(broker: str, tradingsymbol: str) -> Instrument:
    """The instrument a broker's trading symbol names (Instrument.DoesNotExist if unknown)."""
    return Instrument.objects.select_related("underlying").get(
        broker_symbols__broker=broker, broker_symbols__tradingsymbol=tradingsymbol
    )


# --- Kite instrument master ------------------------------------------------------------------
KITE_COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    skipped: int = 0  # not an option of an active underlying (equities, futures, stocks)
    errors: list[str] | None = None


def kite_rows(path: str) -> Iterable[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = set(KITE_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"Not a Kite instrument file: missing columns {sorted(missing)}")
        yield from reader


def kite_master_import(*, rows: Iterable[Mapping[str, str]]) -> ImportResult:
    """Upsert the index options of our active underlyings from Kite's instrument master.

    Lot and tick sizes come from the file (the broker's daily master is authoritative for
    listed contracts). Kite reuses tokens of expired contracts, so a token or symbol held by
    another instrument moves to the new one. Bad rows are reported, the others imported; each
    row is its own transaction.
    """
    underlyings = {u.symbol: u for u in Underlying.objects.filter(is_active=True)}
    result = ImportResult(errors=[])
    for number, row in enumerate(rows, start=2):
        und = underlyings.get(row.get("name", "").strip())
        if row.get("instrument_type") not in ("CE", "PE") or und is None:
            result.skipped += 1
            continue
        try:
            expiry = date.fromisoformat(row["expiry"])
            strike = Decimal(row["strike"])
            lot = int(row["lot_size"])
            tick = Decimal(row["tick_size"])
            token = str(int(row["instrument_token"]))
        except (KeyError, ValueError, InvalidOperation) as exc:
            result.errors.append(f"line {number}: {exc}")  # type: ignore[union-attr]
            continue
        tradingsymbol = row["tradingsymbol"].strip()
        with transaction.atomic():
            instrument, created = Instrument.objects.update_or_create(
                underlying=und,
                expiry=expiry,
                strike=strike,
                option_type=row["instrument_type"],
                defaults={"lot_size": lot, "tick_size": tick, "source": InstrumentSource.KITE},
            )
            BrokerSymbol.objects.filter(broker="kite").exclude(instrument=instrument).filter(
                tradingsymbol=tradingsymbol
            ).delete()
            BrokerSymbol.objects.filter(broker="kite", token=token).exclude(
                instrument=instrument
            ).delete()
            BrokerSymbol.objects.update_or_create(
                instrument=instrument,
                broker="kite",
                defaults={"tradingsymbol": tradingsymbol, "token": token},
            )
        if created:
            result.created += 1
        else:
            result.updated += 1
    logger.info(
        "Kite import: %s created, %s updated, %s skipped, %s errors",
        result.created,
        result.updated,
        result.skipped,
        len(result.errors or []),
    )
    return result


__all__ = [
    "BROKERS",
    "ImportResult",
    "NoSuchExpiryError",
    "ReferenceDataMissingError",
    "broker_symbol",
    "grid_broker_symbols",
    "instrument_for",
    "instrument_from_broker_symbol",
    "kite_master_import",
    "kite_rows",
    "sim_token",
]
