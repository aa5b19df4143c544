"""Instruments: the simulated strike grid with per-broker symbols, and the Kite import."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from execution.models import BrokerSymbol, Instrument, Underlying
from execution.reference.contracts import NoSuchExpiryError
from execution.reference.instruments import (
    broker_symbol,
    instrument_for,
    instrument_from_broker_symbol,
    sim_token,
)

pytestmark = pytest.mark.django_db
D = date.fromisoformat


def test_grid_instrument_carries_each_brokers_symbol_and_the_contract_lot():
    weekly = instrument_for("NIFTY", D("2026-12-08"), Decimal("26150"), "PE")
    assert weekly.lot_size == 65 and weekly.tick_size == Decimal("0.05")
    token = str(sim_token("NIFTY", D("2026-12-08"), Decimal("26150"), "PE"))
    assert broker_symbol(weekly, "kite") == ("NIFTY26D0826150PE", token)
    assert broker_symbol(weekly, "fyers") == ("NSE:NIFTY26D0826150PE", token)
    assert broker_symbol(weekly, "angelone") == ("NIFTY08DEC2626150PE", token)
    assert broker_symbol(weekly, "upstox") == ("NIFTY 26150 PE 08 DEC 26", f"NSE_FO|{token}")
    assert broker_symbol(weekly, "dhan") == ("NIFTY-08Dec2026-26150-PE", token)

    monthly = instrument_for("SENSEX", D("2026-11-26"), 85000, "CE")
    assert broker_symbol(monthly, "kite")[0] == "SENSEX26NOV85000CE"
    assert broker_symbol(monthly, "fyers")[0] == "BSE:SENSEX26NOV85000CE"
    assert broker_symbol(monthly, "upstox")[1].startswith("BSE_FO|")
    assert broker_symbol(monthly, "dhan")[0] == "SENSEX-Nov2026-85000-CE"


def test_instrument_for_is_idempotent_and_found_by_symbol():
    first = instrument_for("NIFTY", D("2026-12-29"), 26000, "CE")
    again = instrument_for(Underlying.objects.get(symbol="NIFTY"), D("2026-12-29"), "26000", "CE")
    assert first.pk == again.pk
    assert Instrument.objects.count() == 1 and BrokerSymbol.objects.count() == 5
    assert instrument_from_broker_symbol("kite", "NIFTY26DEC26000CE") == first


def test_instrument_for_refuses_off_grid_strikes_and_non_expiries():
    with pytest.raises(ValueError):
        instrument_for("NIFTY", D("2026-12-29"), 26025, "CE")
    with pytest.raises(NoSuchExpiryError):
        instrument_for("NIFTY", D("2026-12-30"), 26000, "CE")
    with pytest.raises(LookupError):
        broker_symbol(instrument_for("NIFTY", D("2026-12-29"), 26000, "CE"), "nosuchbroker")


def test_sim_tokens_of_the_seeded_underlyings_never_collide():
    codes = {
        str(sim_token(symbol, D("2026-12-29"), Decimal(100), "CE"))[:3]
        for symbol in ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "SENSEX"]
    }
    assert len(codes) == 5
    assert sim_token("NIFTY", D("2026-12-29"), Decimal(100), "CE") != sim_token(
        "NIFTY", D("2026-12-29"), Decimal(100), "PE"
    )


KITE_HEADER = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,"
    "lot_size,instrument_type,segment,exchange\n"
)


def test_import_kite_master_file(tmp_path, capsys):
    path = tmp_path / "instruments.csv"
    path.write_text(
        KITE_HEADER
        + "12345678,48225,NIFTY26D0826150PE,NIFTY,0,2026-12-08,26150,0.05,65,PE,NFO-OPT,NFO\n"
        + "12345679,48226,NIFTY26DECFUT,NIFTY,0,2026-12-29,0,0.05,65,FUT,NFO-FUT,NFO\n"
        + "256265,1001,NIFTY 50,NIFTY 50,0,,0,0,0,EQ,INDICES,NSE\n"
        + "12345680,48227,RELIANCE26DEC1500CE,RELIANCE,0,2026-12-29,1500,0.05,500,CE,NFO-OPT,NFO\n"
        + "bad,1,NIFTY26D0826200PE,NIFTY,0,2026-12-08,26200,0.05,65,PE,NFO-OPT,NFO\n"
    )
    call_command("import_instruments", "--broker", "kite", str(path))
    out = capsys.readouterr()
    assert "1 created, 0 updated, 3 skipped, 1 errors" in out.out
    assert "line 6" in out.err
    instrument = Instrument.objects.get()
    assert (instrument.source, instrument.lot_size) == ("kite", 65)
    assert broker_symbol(instrument, "kite") == ("NIFTY26D0826150PE", "12345678")

    # Kite reuses tokens of expired contracts: the token moves to the newly listed one.
    path.write_text(
        KITE_HEADER
        + "12345678,48225,NIFTY26D1526150PE,NIFTY,0,2026-12-15,26150,0.05,65,PE,NFO-OPT,NFO\n"
    )
    call_command("import_instruments", "--broker", "kite", str(path))
    assert BrokerSymbol.objects.get(broker="kite", token="12345678").tradingsymbol == (
        "NIFTY26D1526150PE"
    )


def test_import_refuses_a_file_without_kite_columns(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("token,symbol\n1,X\n")
    with pytest.raises(CommandError, match="missing columns"):
        call_command("import_instruments", "--broker", "kite", str(path))
