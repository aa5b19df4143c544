"""Reference data from section 0 of shared/reference/india-market.md (December 2026 changes).

- Holiday lists loaded for 2024-2026 on NSE and BSE (the years seeded in 0003). 2027 is NOT
  loaded: its fixed-date holidays are pre-entered, but no day of 2027 is a session until an
  admin loads the exchange's published list (`manage.py import_holidays` or admin).
- F&O normal market 09:15-15:40 from Monday 3-Aug-2026 on NSE and BSE.
- NSE quantity freeze limits month by month through 3-Aug-2026, each with its circular.
- NSE transaction charge re-split from 1-Mar-2026 (NSE/FA/73061), with GST on IPFT.
"""

from datetime import date, time
from decimal import Decimal

from django.db import migrations

D = date.fromisoformat
LOADED_YEARS = {
    2024: "NSE 2024 holiday list (cross-checked with pandas_market_calendars 5.5.0)",
    2025: "NSE 2025 holiday list, india-market.md §2.3",
    2026: "NSE/FAOP/71777 (12-Dec-2025) and the 15-Jan-2026 addition, india-market.md §2.3",
}
FIXED_2027 = "[DERIVED] fixed-date holiday, india-market.md §0.3; the 2027 list is not published"
HOLIDAYS_2027 = [
    ("2027-01-26", "Republic Day"),
    ("2027-03-26", "Good Friday"),
    ("2027-04-14", "Ambedkar Jayanti"),
]
CLOSE_1540 = (
    "india-market.md §0.1: NSE/FAOP/74467 (29-May-2026), go-live NSE/FAOP/75472 (effective "
    "Monday 3-Aug-2026); BSE notice 20260612-9"
)
FAOP = "https://nsearchives.nseindia.com/content/circulars/FAOP{}.pdf (india-market.md §0.2)"
# effective_from, circular, {underlying: units}
FREEZE_2026 = [
    ("2026-02-01", "72534", {"NIFTY": 1800, "BANKNIFTY": 600, "FINNIFTY": 1800, "MIDCPNIFTY": 2800}),
    ("2026-03-02", "73039", {"NIFTY": 1800, "BANKNIFTY": 600, "FINNIFTY": 1200, "MIDCPNIFTY": 2800}),
    ("2026-04-01", "73531", {"NIFTY": 1800, "BANKNIFTY": 900, "FINNIFTY": 1800, "MIDCPNIFTY": 2800}),
    ("2026-05-04", "73991", {"NIFTY": 1800, "BANKNIFTY": 900, "FINNIFTY": 1800, "MIDCPNIFTY": 2800}),
    ("2026-06-01", "74469", {"NIFTY": 1800, "BANKNIFTY": 900, "FINNIFTY": 1800, "MIDCPNIFTY": 2800}),
    ("2026-07-01", "74942", {"NIFTY": 1800, "BANKNIFTY": 600, "FINNIFTY": 1800, "MIDCPNIFTY": 2800}),
    ("2026-08-03", "75521", {"NIFTY": 1800, "BANKNIFTY": 600, "FINNIFTY": 1800, "MIDCPNIFTY": 2800}),
]
RESPLIT = (
    "NSE/FA/73061 (india-market.md §0.4): index options 0.03552% transaction charge + 0.00001% "
    "IPFT from 1-Mar-2026 (was 0.03503% + 0.0005%); GST applies to both"
)


def seed(apps, schema_editor):
    HolidayCalendarYear = apps.get_model("execution", "HolidayCalendarYear")
    TradingHoliday = apps.get_model("execution", "TradingHoliday")
    SessionTiming = apps.get_model("execution", "SessionTiming")
    Underlying = apps.get_model("execution", "Underlying")
    FreezeQuantity = apps.get_model("execution", "FreezeQuantity")
    ChargeRate = apps.get_model("execution", "ChargeRate")

    for exchange in ("NSE", "BSE"):
        for year, source in LOADED_YEARS.items():
            HolidayCalendarYear.objects.get_or_create(
                exchange=exchange,
                year=year,
                defaults={"source": source, "note": "Seeded by migration 0015."},
            )
        for day, reason in HOLIDAYS_2027:
            TradingHoliday.objects.get_or_create(
                exchange=exchange, date=D(day), defaults={"reason": reason, "source": FIXED_2027}
            )
        SessionTiming.objects.update_or_create(
            exchange=exchange,
            effective_from=D("2026-08-03"),
            defaults={"opens_at": time(9, 15), "closes_at": time(15, 40), "source": CLOSE_1540},
        )

    underlyings = {u.symbol: u for u in Underlying.objects.all()}
    for effective_from, circular, limits in FREEZE_2026:
        for symbol, quantity in limits.items():
            if symbol in underlyings:
                FreezeQuantity.objects.update_or_create(
                    underlying=underlyings[symbol],
                    effective_from=D(effective_from),
                    defaults={"quantity": quantity, "source": FAOP.format(circular)},
                )

    nse_before = ChargeRate.objects.filter(exchange="NSE", effective_from=D("2024-10-01")).first()
    if nse_before is not None:
        ChargeRate.objects.update_or_create(
            exchange="NSE",
            effective_from=D("2026-03-01"),
            defaults={
                "stt_sell_percent": nse_before.stt_sell_percent,
                "exchange_txn_percent": Decimal("0.03552"),
                "ipft_percent": Decimal("0.00001"),
                "sebi_fee_percent": nse_before.sebi_fee_percent,
                "stamp_buy_percent": nse_before.stamp_buy_percent,
                "gst_percent": nse_before.gst_percent,
                "gst_on_ipft": True,
                "source": f"{RESPLIT} ; {nse_before.source}",
                "note": "STT as before 1-Apr-2026. " + nse_before.note,
            },
        )
    ChargeRate.objects.filter(exchange="NSE", effective_from__gte=D("2026-04-01")).update(
        exchange_txn_percent=Decimal("0.03552"), ipft_percent=Decimal("0.00001"), gst_on_ipft=True
    )
    for row in ChargeRate.objects.filter(exchange="NSE", effective_from__gte=D("2026-04-01")):
        if RESPLIT not in row.source:
            row.source = f"{RESPLIT} ; {row.source}"
            row.save(update_fields=["source"])


class Migration(migrations.Migration):
    dependencies = [
        ("execution", "0014_holiday_calendar_year"),
        ("execution", "0009_seed_charge_rates"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
