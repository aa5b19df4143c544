"""The brokers' instrument masters: download, validate, and map our contracts to each broker's
trading symbol and token (shared/reference/broker-apis.md §1.5, §2.5, §3.5, §4.5, §5.5).

Once a day (`instrument_masters_refresh_task`, 08:00 IST, and `manage.py refresh_masters`) each
broker's master is fetched from `settings.BROKER_MASTER_URLS[broker]` and parsed into rows of
index options of our active underlyings. A master is refused as a whole, changing nothing, when
it cannot be read, lists no option, or misses an expected underlying's next expiry (by our
calendar): yesterday's symbols stay in use and the ready check says so. A lot size that differs
from our dated rows is not a refusal: the master's value is used for that contract and the
admins are told.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from execution.markettime import IST
from execution.models import (
    BrokerSymbol,
    Instrument,
    InstrumentMasterImport,
    InstrumentSource,
    Underlying,
)
from execution.reference.contracts import expiry_schedule, lot_size
from execution.reference.instruments import KITE_COLUMNS

logger = logging.getLogger(__name__)

BROKERS = ("kite", "upstox", "angelone", "fyers", "dhan")
DOWNLOAD_TIMEOUT = 60.0
# How far ahead the next expiry of an expected underlying is looked for.
EXPIRY_HORIZON = timedelta(days=45)


class MasterError(Exception):
    """The master could not be used (download, format or validation); nothing was changed."""


@dataclass(frozen=True)
class MasterRow:
    underlying: str
    expiry: date
    strike: Decimal
    option_type: str
    lot_size: int
    tick_size: Decimal
    tradingsymbol: str
    token: str


# --- parsers: raw bytes of each broker's files → option rows --------------------------------
def _text(payload: bytes) -> str:
    if payload[:2] == b"\x1f\x8b":
        try:
            payload = gzip.decompress(payload)
        except (OSError, EOFError) as exc:
            raise MasterError(f"not a readable gzip file ({exc})") from exc
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MasterError("not UTF-8 text") from exc


def _json_list(payload: bytes) -> list[dict[str, Any]]:
    try:
        rows = json.loads(_text(payload))
    except ValueError as exc:
        raise MasterError(f"not JSON ({exc})") from exc
    if not isinstance(rows, list):
        raise MasterError("not a JSON list of instruments")
    return [r for r in rows if isinstance(r, dict)]


def _csv_dicts(payload: bytes, required: Iterable[str]) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(_text(payload)))
    missing = set(required) - set(reader.fieldnames or ())
    if missing:
        raise MasterError(f"missing columns {sorted(missing)}")
    return list(reader)


def _ist_date(epoch_seconds: float) -> date:
    return datetime.fromtimestamp(epoch_seconds, UTC).astimezone(IST).date()


def _tick(value: Any, *, scaled: bool) -> Decimal:
    """Tick in rupees; masters that give it in paise (Angel, Dhan, Upstox's 5 for ₹0.05)
    are scaled back."""
    tick = Decimal(str(value))
    return tick / 100 if scaled or tick >= 1 else tick


def parse_kite(payloads: list[bytes]) -> Iterable[MasterRow]:
    for payload in payloads:
        for row in _csv_dicts(payload, KITE_COLUMNS):
            if row["instrument_type"] not in ("CE", "PE"):
                continue
            yield MasterRow(
                underlying=row["name"].strip(),
                expiry=date.fromisoformat(row["expiry"]),
                strike=Decimal(row["strike"]),
                option_type=row["instrument_type"],
                lot_size=int(float(row["lot_size"])),
                tick_size=Decimal(row["tick_size"]),
                tradingsymbol=row["tradingsymbol"].strip(),
                token=str(int(row["instrument_token"])),
            )


def parse_upstox(payloads: list[bytes]) -> Iterable[MasterRow]:
    for payload in payloads:
        for row in _json_list(payload):
            if row.get("instrument_type") not in ("CE", "PE"):
                continue
            yield MasterRow(
                underlying=str(row.get("underlying_symbol") or row["name"]),
                expiry=_ist_date(int(row["expiry"]) / 1000),
                strike=Decimal(str(row["strike_price"])),
                option_type=row["instrument_type"],
                lot_size=int(row["lot_size"]),
                tick_size=_tick(row["tick_size"], scaled=False),
                tradingsymbol=str(row["trading_symbol"]),
                token=str(row["instrument_key"]),
            )


def parse_angelone(payloads: list[bytes]) -> Iterable[MasterRow]:
    for payload in payloads:
        for row in _json_list(payload):
            symbol = str(row.get("symbol", ""))
            if row.get("instrumenttype") != "OPTIDX" or symbol[-2:] not in ("CE", "PE"):
                continue
            yield MasterRow(
                underlying=str(row["name"]),
                expiry=datetime.strptime(str(row["expiry"]), "%d%b%Y").date(),
                strike=Decimal(str(row["strike"])) / 100,
                option_type=symbol[-2:],
                lot_size=int(float(row["lotsize"])),
                tick_size=_tick(row["tick_size"], scaled=True),
                tradingsymbol=symbol,
                token=str(row["token"]),
            )


FYERS_OPTIDX = "14"


def parse_fyers(payloads: list[bytes]) -> Iterable[MasterRow]:
    for payload in payloads:
        for number, row in enumerate(csv.reader(io.StringIO(_text(payload))), start=1):
            if len(row) < 17:
                raise MasterError(f"line {number}: {len(row)} columns, not Fyers' 21")
            if row[2] != FYERS_OPTIDX or row[16] not in ("CE", "PE"):
                continue
            yield MasterRow(
                underlying=row[13],
                expiry=_ist_date(int(row[8])),
                strike=Decimal(row[15]),
                option_type=row[16],
                lot_size=int(float(row[3])),
                tick_size=_tick(row[4], scaled=False),
                tradingsymbol=row[9],
                token=row[0],
            )


DHAN_COLUMNS = (
    "SEM_SMST_SECURITY_ID", "SEM_INSTRUMENT_NAME", "SEM_TRADING_SYMBOL", "SEM_LOT_UNITS",
    "SEM_EXPIRY_DATE", "SEM_STRIKE_PRICE", "SEM_OPTION_TYPE", "SEM_TICK_SIZE",
)  # fmt: skip


def parse_dhan(payloads: list[bytes]) -> Iterable[MasterRow]:
    for payload in payloads:
        for row in _csv_dicts(payload, DHAN_COLUMNS):
            if row["SEM_INSTRUMENT_NAME"] != "OPTIDX" or row["SEM_OPTION_TYPE"] not in ("CE", "PE"):
                continue
            symbol = row["SEM_TRADING_SYMBOL"]
            yield MasterRow(
                underlying=row.get("SM_SYMBOL_NAME") or symbol.split("-")[0],
                expiry=date.fromisoformat(row["SEM_EXPIRY_DATE"][:10]),
                strike=Decimal(row["SEM_STRIKE_PRICE"]),
                option_type=row["SEM_OPTION_TYPE"],
                lot_size=int(float(row["SEM_LOT_UNITS"])),
                tick_size=_tick(row["SEM_TICK_SIZE"], scaled=True),
                tradingsymbol=symbol,
                token=row["SEM_SMST_SECURITY_ID"],
            )


PARSERS: dict[str, Callable[[list[bytes]], Iterable[MasterRow]]] = {
    "kite": parse_kite,
    "upstox": parse_upstox,
    "angelone": parse_angelone,
    "fyers": parse_fyers,
    "dhan": parse_dhan,
}


def master_parse(broker: str, payloads: list[bytes]) -> list[MasterRow]:
    """Every index-option row of the files; MasterError for a file that is not the format."""
    try:
        return list(PARSERS[broker](payloads))
    except MasterError:
        raise
    except (KeyError, ValueError, InvalidOperation, csv.Error) as exc:
        raise MasterError(f"unreadable row ({type(exc).__name__}: {exc})") from exc


# --- download ---------------------------------------------------------------------------------
def _kite_headers() -> dict[str, str]:
    """Kite serves its dump to an authenticated app only: any live connected Kite account."""
    from brokers.models import AccountStatus, BrokerAccount

    account = (
        BrokerAccount.objects.filter(
            broker="kite", status=AccountStatus.CONNECTED, token_expires_at__gt=timezone.now()
        )
        .order_by("-token_issued_at")
        .first()
    )
    if account is None:
        raise MasterError("no connected Kite account to download Kite's master with")
    return {
        "X-Kite-Version": "3",
        "Authorization": f"token {account.api_key}:{account.access_token}",
    }


def master_fetch(broker: str) -> list[bytes]:
    """The raw files of a broker's master (MasterError on any failure)."""
    urls = settings.BROKER_MASTER_URLS.get(broker) or []
    if not urls:
        raise MasterError("no master URL is configured")
    headers = _kite_headers() if broker == "kite" else {}
    payloads = []
    for url in urls:
        try:
            response = requests.get(url, headers=headers, timeout=DOWNLOAD_TIMEOUT)
        except requests.RequestException as exc:
            raise MasterError(f"download failed ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise MasterError(f"download failed (HTTP {response.status_code})")
        payloads.append(response.content)
    return payloads


# --- validation and mapping -----------------------------------------------------------------
def expected_underlyings() -> list[str]:
    return list(settings.MASTER_EXPECTED_UNDERLYINGS)


def master_validate(
    rows: list[MasterRow], *, day: date, underlyings: dict[str, Underlying]
) -> list[MasterRow]:
    """Our underlyings' rows, after checking the master lists each expected underlying's
    next expiry; MasterError otherwise (an empty master included)."""
    ours = [r for r in rows if r.underlying in underlyings]
    if not ours:
        raise MasterError("the master lists no option of our underlyings (empty master)")
    listed = {(r.underlying, r.expiry) for r in ours}
    problems = []
    for symbol in expected_underlyings():
        und = underlyings.get(symbol)
        if und is None:
            continue
        upcoming = expiry_schedule(und, day, day + EXPIRY_HORIZON)
        if not upcoming:
            continue
        nearest = upcoming[0].day
        if (symbol, nearest) not in listed:
            problems.append(f"{symbol} {nearest:%d-%b-%Y}")
    if problems:
        raise MasterError("expected expiries missing: " + ", ".join(problems))
    return ours


def _lot_mismatches(rows: list[MasterRow], *, day: date) -> list[dict[str, Any]]:
    ours: dict[tuple[str, date], int | None] = {}
    mismatches = []
    for row in rows:
        key = (row.underlying, row.expiry)
        if key not in ours:
            try:
                ours[key] = lot_size(row.underlying, row.expiry, on=day)
            except LookupError:
                ours[key] = None
        expected = ours[key]
        if expected is not None and expected != row.lot_size:
            mismatches.append(
                {"contract": f"{row.underlying} {row.expiry} {row.strike.normalize():f} "
                 f"{row.option_type}", "ours": expected, "master": row.lot_size}
            )  # fmt: skip
    return mismatches


def master_apply(broker: str, rows: list[MasterRow], underlyings: dict[str, Underlying]) -> int:
    """Upsert the contracts (lot and tick from the master) and this broker's symbols and
    tokens for them, in one transaction. Brokers reuse tokens of expired contracts: a token
    or symbol held by another contract moves to the new one."""
    with transaction.atomic():
        keys = {(r.underlying, r.expiry, r.strike, r.option_type) for r in rows}
        existing = {
            (i.underlying.symbol, i.expiry, i.strike, i.option_type): i
            for i in Instrument.objects.select_related("underlying").filter(
                underlying__symbol__in={k[0] for k in keys},
                expiry__in={k[1] for k in keys},
            )
        }
        new, changed = [], []
        for row in rows:
            key = (row.underlying, row.expiry, row.strike, row.option_type)
            instrument = existing.get(key)
            if instrument is None:
                instrument = Instrument(
                    underlying=underlyings[row.underlying], expiry=row.expiry, strike=row.strike,
                    option_type=row.option_type, lot_size=row.lot_size,
                    tick_size=row.tick_size, source=broker,
                )  # fmt: skip
                existing[key] = instrument
                new.append(instrument)
            elif (instrument.lot_size, instrument.tick_size) != (row.lot_size, row.tick_size):
                instrument.lot_size, instrument.tick_size = row.lot_size, row.tick_size
                changed.append(instrument)
        Instrument.objects.bulk_create(new, batch_size=500)
        Instrument.objects.bulk_update(changed, ["lot_size", "tick_size"], batch_size=500)
        ids = {existing[(r.underlying, r.expiry, r.strike, r.option_type)].pk for r in rows}
        BrokerSymbol.objects.filter(broker=broker).filter(
            Q(instrument_id__in=ids)
            | Q(token__in={r.token for r in rows})
            | Q(tradingsymbol__in={r.tradingsymbol for r in rows})
        ).delete()
        BrokerSymbol.objects.bulk_create(
            [
                BrokerSymbol(
                    instrument=existing[(r.underlying, r.expiry, r.strike, r.option_type)],
                    broker=broker,
                    tradingsymbol=r.tradingsymbol,
                    token=r.token,
                )
                for r in {
                    (r.underlying, r.expiry, r.strike, r.option_type): r for r in rows
                }.values()
            ],
            batch_size=500,
        )
    return len(ids)


def master_refresh(
    *, broker: str, day: date, payloads: list[bytes] | None = None
) -> InstrumentMasterImport:
    """Download (unless `payloads` are given), validate and apply one broker's master for
    `day`. Never raises for a bad master: the attempt is recorded with its reason, nothing
    changes, and the admins are told; a lot-size disagreement is recorded and mailed too."""
    from django.core.mail import mail_admins

    from execution.audit import event_record

    underlyings = {u.symbol: u for u in Underlying.objects.filter(is_active=True)}
    mismatches: list[dict[str, Any]] = []
    try:
        rows = master_parse(broker, master_fetch(broker) if payloads is None else payloads)
        rows = master_validate(rows, day=day, underlyings=underlyings)
        mismatches = _lot_mismatches(rows, day=day)
        contracts = master_apply(broker, rows, underlyings)
    except MasterError as exc:
        message = f"{broker} instrument master not loaded: {exc}"
        logger.warning("%s", message)
        record, _ = InstrumentMasterImport.objects.update_or_create(
            broker=broker,
            session_date=day,
            defaults={"ok": False, "contracts": 0, "message": message, "lot_mismatches": []},
        )
        event_record(kind="master.failed", message=message, data={"broker": broker})
        mail_admins(subject=f"Instrument master not loaded: {broker}", message=message)
        return record
    message = f"{contracts} contracts"
    if mismatches:
        lines = [f"{m['contract']}: ours {m['ours']}, master {m['master']}" for m in mismatches]
        text = (
            f"{broker} master lot sizes differ from our dated rows for {len(mismatches)} "
            "contracts; the master's lot is used for them:\n" + "\n".join(lines[:50])
        )
        mail_admins(subject=f"Lot sizes differ in the {broker} master", message=text)
        event_record(
            kind="master.lot_mismatch",
            message=text.splitlines()[0],
            data={"broker": broker, "contracts": mismatches[:50]},
        )
        message += f"; {len(mismatches)} lot-size disagreements (master used)"
    record, _ = InstrumentMasterImport.objects.update_or_create(
        broker=broker,
        session_date=day,
        defaults={
            "ok": True,
            "contracts": contracts,
            "message": message,
            "lot_mismatches": mismatches,
        },
    )
    return record


def masters_refresh(*, day: date, brokers: Iterable[str] = BROKERS) -> list[InstrumentMasterImport]:
    return [master_refresh(broker=b, day=day) for b in brokers]


def masters_ready_check(*, day: date, brokers: Iterable[str] = BROKERS) -> dict[str, str]:
    """broker → warning, for every broker whose master was not loaded today, naming the
    master still in use."""
    today = {m.broker: m for m in InstrumentMasterImport.objects.filter(session_date=day)}
    warnings = {}
    for broker in brokers:
        attempt = today.get(broker)
        if attempt is not None and attempt.ok:
            continue
        last = (
            InstrumentMasterImport.objects.filter(broker=broker, ok=True, session_date__lt=day)
            .order_by("-session_date")
            .first()
        )
        kept = f"using the master of {last.session_date:%d-%b-%Y}" if last else "none loaded yet"
        reason = attempt.message if attempt else f"{broker} instrument master not loaded today"
        warnings[broker] = f"{reason} ({kept})."
    return warnings


__all__ = [
    "BROKERS",
    "InstrumentSource",
    "MasterError",
    "MasterRow",
    "master_apply",
    "master_fetch",
    "master_parse",
    "master_refresh",
    "master_validate",
    "masters_ready_check",
    "masters_refresh",
]
