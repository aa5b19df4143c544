"""Seed charge rates from shared/reference/india-market.md §4 (rates picked by trade date).

Only dates the reference states exact rates for are seeded: from 1-Oct-2024 ("true-to-label"
exchange charges) on. Earlier trades have no rate row, so their charges are shown as unknown
rather than guessed.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db import migrations

D = datetime.date.fromisoformat
STT_SOURCES = (
    "Finance Act 2024 (0.1% from 1-Oct-2024); Budget 2026-27 (0.15% from 1-Apr-2026): "
    "https://cleartax.in/s/securities-transaction-tax-stt"
)
EXCHANGE_SOURCE = (
    "https://www.ndtvprofit.com/markets/nse-revises-cash-fno-market-fees-october-1 ; "
    "IPFT: https://help.upstox.com/support/solutions/articles/260397-what-are-ipft-charges- ; "
    "SEBI fee and GST: Zerodha charges page; stamp: "
    "https://nseindia.com/invest/first-time-investor-stamp-duty-charges-taxes"
)
COMMON_NOTE = (
    "[UNVERIFIED] GST on IPFT: Upstox says it is not levied, a secondary note says Zerodha adds "
    "it (off here). [UNVERIFIED] Rounding is per contract-note item and broker-specific; "
    "computed here to the paisa per item. STT on exercised in-the-money longs is not computed "
    "(the engine records no settlement price)."
)
# exchange, effective_from, STT on sell %, exchange transaction %, IPFT %, extra note
EXCHANGE_ROWS = [
    ("NSE", "2024-10-01", "0.1", "0.03503", "0.0005", ""),
    ("NSE", "2026-04-01", "0.15", "0.03503", "0.0005", ""),
    (
        "BSE",
        "2024-10-01",
        "0.1",
        "0.0325",
        "0",
        "[UNVERIFIED] IPFT: the reference gives it for NSE only; none is charged on BSE here.",
    ),
    (
        "BSE",
        "2026-04-01",
        "0.15",
        "0.0325",
        "0",
        "[UNVERIFIED] IPFT: the reference gives it for NSE only; none is charged on BSE here.",
    ),
]
ZERODHA = (
    "https://support.zerodha.com/category/account-opening/charges-at-zerodha/"
    "trading-account-charges/articles/what-is-the-brokerage-for-futures-and-options"
)
OTHER_BROKER_NOTE = (
    "[UNVERIFIED] The reference gives ₹20 per executed order for discount brokers with Zerodha "
    "as its example; check this broker's own tariff and correct the row if it differs."
)
# broker, effective_from, rupees per executed order, source, note
BROKERAGE_ROWS = [
    (
        "paper",
        "2024-10-01",
        "0",
        "",
        "Simulated: the paper broker charges nothing real. Set a rate here to simulate one; "
        "pages label paper brokerage as simulated.",
    ),
    (
        "kite",
        "2024-10-01",
        "20",
        ZERODHA,
        "₹40 per order while the account balance is negative (not modelled).",
    ),
    ("upstox", "2024-10-01", "20", "", OTHER_BROKER_NOTE),
    ("angelone", "2024-10-01", "20", "", OTHER_BROKER_NOTE),
    ("fyers", "2024-10-01", "20", "", OTHER_BROKER_NOTE),
    ("dhan", "2024-10-01", "20", "", OTHER_BROKER_NOTE),
]


def seed(apps, schema_editor):
    ChargeRate = apps.get_model("execution", "ChargeRate")
    BrokerageRate = apps.get_model("execution", "BrokerageRate")
    for exchange, effective_from, stt, txn, ipft, note in EXCHANGE_ROWS:
        ChargeRate.objects.update_or_create(
            exchange=exchange,
            effective_from=D(effective_from),
            defaults={
                "stt_sell_percent": Decimal(stt),
                "exchange_txn_percent": Decimal(txn),
                "ipft_percent": Decimal(ipft),
                "sebi_fee_percent": Decimal("0.0001"),
                "stamp_buy_percent": Decimal("0.003"),
                "gst_percent": Decimal("18"),
                "gst_on_ipft": False,
                "source": f"{STT_SOURCES} ; {EXCHANGE_SOURCE}",
                "note": f"{note} {COMMON_NOTE}".strip(),
            },
        )
    for broker, effective_from, per_order, source, note in BROKERAGE_ROWS:
        BrokerageRate.objects.update_or_create(
            broker=broker,
            effective_from=D(effective_from),
            defaults={"per_order": Decimal(per_order), "source": source, "note": note},
        )


class Migration(migrations.Migration):
    dependencies = [("execution", "0008_charge_rates")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
