"""Instrument masters of the five brokers, downloaded from their emulators (item 4)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from brokers.emulator import start_in_thread
from brokers.emulator.core import Clock
from execution.markettime import IST
from execution.models import BrokerSymbol, Instrument, InstrumentMasterImport
from execution.reference.masters import BROKERS, master_refresh, masters_ready_check
from tests.brokers.factories import BrokerAccountFactory

DAY = date(2026, 12, 3)
MASTER_PATHS = {
    "kite": ["/instruments"],
    "upstox": ["/market-quote/instruments/exchange/complete.json.gz"],
    "angelone": ["/OpenAPI_File/files/OpenAPIScripMaster.json"],
    "fyers": ["/sym_details/NSE_FO.csv", "/sym_details/BSE_FO.csv"],
    "dhan": ["/api-data/api-scrip-master.csv"],
}


@pytest.fixture(scope="module")
def emulators():
    clock = Clock(start=datetime(2026, 12, 3, 7, 55, tzinfo=IST), frozen=True)
    running = {b: start_in_thread(b, clock=clock) for b in BROKERS}
    yield running
    for emulator in running.values():
        emulator.stop()


@pytest.fixture
def masters(emulators, settings, db):
    """Settings pointing every master URL at its emulator, and a connected Kite account
    whose token the Kite emulator knows (Kite serves its dump to logged-in apps only)."""
    settings.BROKER_MASTER_URLS = {
        b: [emulators[b].base_url + p for p in paths] for b, paths in MASTER_PATHS.items()
    }
    settings.ADMINS = [("Admin", "admin@example.invalid")]
    kite = emulators["kite"]
    kite.add_account(api_key="mastersapp", api_secret="s", user_id="ZM0001")
    BrokerAccountFactory(api_key="mastersapp", access_token=kite.issue_token("mastersapp"))
    for emulator in emulators.values():
        emulator.set_master(None, mode="ok")
    return emulators


def nifty_contract(emulator) -> dict:
    rows = [c for c in emulator.master() if c["underlying"] == "NIFTY" and c["option_type"] == "CE"]
    nearest = min(c["expiry"] for c in rows)
    return sorted((c for c in rows if c["expiry"] == nearest), key=lambda c: float(c["strike"]))[10]


def test_all_five_masters_map_one_contract_to_each_brokers_symbol_and_token(masters):
    records = [master_refresh(broker=b, day=DAY) for b in BROKERS]
    assert [(r.broker, r.ok) for r in records] == [(b, True) for b in BROKERS], [
        r.message for r in records
    ]
    contract = nifty_contract(masters["kite"])
    token, strike = contract["exchange_token"], Decimal(contract["strike"])
    instrument = Instrument.objects.get(
        underlying__symbol="NIFTY", expiry=date(2026, 12, 8), strike=strike, option_type="CE"
    )
    assert instrument.lot_size == 65 and instrument.tick_size == Decimal("0.05")
    symbols = {s.broker: (s.tradingsymbol, s.token) for s in instrument.broker_symbols.all()}
    text = f"{strike.normalize():f}"
    assert symbols == {
        "kite": (f"NIFTY26D08{text}CE", str(token * 256 + 2)),
        "upstox": (f"NIFTY {text} CE 08 DEC 26", f"NSE_FO|{token}"),
        "angelone": (f"NIFTY08DEC26{text}CE", str(token)),
        "fyers": (f"NSE:NIFTY26D08{text}CE", f"1011{token:010d}"),
        "dhan": (f"NIFTY-08Dec2026-{text}-CE", str(token)),
    }
    # SENSEX comes from BSE's F&O files (Fyers: BSE_FO.csv), BANKNIFTY monthlies too.
    assert BrokerSymbol.objects.filter(
        broker="fyers", instrument__underlying__symbol="SENSEX"
    ).exists()
    assert Instrument.objects.filter(
        underlying__symbol="BANKNIFTY", expiry=date(2026, 12, 29)
    ).exists()
    assert masters_ready_check(day=DAY) == {}


def test_lot_size_disagreement_alerts_admins_and_the_master_wins(masters):
    contracts = [
        {**c, "lot_size": 75} if c["underlying"] == "NIFTY" else c for c in masters["dhan"].master()
    ]
    masters["dhan"].set_master(contracts)
    record = master_refresh(broker="dhan", day=DAY)
    assert record.ok and "lot-size disagreements" in record.message
    assert record.lot_mismatches[0]["ours"] == 65 and record.lot_mismatches[0]["master"] == 75
    assert {i.lot_size for i in Instrument.objects.filter(underlying__symbol="NIFTY")} == {75}
    assert Instrument.objects.filter(underlying__symbol="BANKNIFTY").first().lot_size == 30
    [alert] = mail.outbox
    assert alert.subject.endswith("Lot sizes differ in the dhan master")
    assert "ours 65, master 75" in alert.body


@pytest.mark.parametrize("broker", BROKERS)
@pytest.mark.parametrize("mode", ["corrupt", "empty", "missing"])
def test_a_broken_master_keeps_yesterdays_and_the_ready_check_says_so(masters, broker, mode):
    assert master_refresh(broker=broker, day=DAY - timedelta(days=1)).ok
    before = set(BrokerSymbol.objects.filter(broker=broker).values_list("token", "tradingsymbol"))
    masters[broker].set_master(None, mode=mode)
    record = master_refresh(broker=broker, day=DAY)
    assert not record.ok
    expected = {"corrupt": "gzip", "empty": "empty", "missing": "HTTP 404"}[mode]
    assert expected in record.message
    after = set(BrokerSymbol.objects.filter(broker=broker).values_list("token", "tradingsymbol"))
    assert after == before and before
    warning = masters_ready_check(day=DAY, brokers=[broker])[broker]
    assert "using the master of 02-Dec-2026" in warning
    assert any(f"Instrument master not loaded: {broker}" in m.subject for m in mail.outbox)


def test_a_master_without_the_next_expiry_is_refused(masters):
    contracts = [
        c
        for c in masters["upstox"].master()
        if not (c["underlying"] == "NIFTY" and c["expiry"] == "2026-12-08")
    ]
    masters["upstox"].set_master(contracts)
    record = master_refresh(broker="upstox", day=DAY)
    assert not record.ok and "NIFTY 08-Dec-2026" in record.message
    assert not BrokerSymbol.objects.filter(broker="upstox").exists()


def test_kite_master_needs_a_connected_kite_account(masters):
    from brokers.models import BrokerAccount

    BrokerAccount.objects.filter(broker="kite").update(status="expired")
    record = master_refresh(broker="kite", day=DAY)
    assert not record.ok and "no connected Kite account" in record.message


def test_refresh_masters_command(masters, capsys):
    call_command("refresh_masters", "--broker", "angelone", "--day", "2026-12-03")
    assert "angelone: ok:" in capsys.readouterr().out
    masters["angelone"].set_master(None, mode="corrupt")
    with pytest.raises(CommandError, match="1 master"):
        call_command("refresh_masters", "--broker", "angelone", "--day", "2026-12-04")
    assert (
        InstrumentMasterImport.objects.get(broker="angelone", session_date="2026-12-04").ok is False
    )


def test_ready_check_mails_admins_once_per_broker_and_day(masters):
    from execution.services import masters_ready_check_notify

    assert masters_ready_check_notify(day=DAY, brokers={"fyers"}) == [
        "fyers instrument master not loaded today (none loaded yet)."
    ]
    masters_ready_check_notify(day=DAY, brokers={"fyers"})
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("broker", "payload", "reason"),
    [
        ("kite", b"instrument_token,name\n1,NIFTY\n", "missing columns"),
        ("upstox", b'{"not": "a list"}', "not a JSON list"),
        ("angelone", b"<html>maintenance</html>", "not JSON"),
        ("fyers", b"101,NIFTY\n", "not Fyers' 21"),
        ("dhan", b"\xff\xfe\x00", "not UTF-8"),
        (
            "angelone",
            b'[{"instrumenttype": "OPTIDX", "symbol": "NIFTY08DEC2625000CE"}]',
            "KeyError",
        ),
    ],
)
def test_files_that_are_not_the_format_are_refused_with_a_reason(broker, payload, reason):
    from execution.reference.masters import MasterError, master_parse

    with pytest.raises(MasterError, match=reason):
        master_parse(broker, [payload])
