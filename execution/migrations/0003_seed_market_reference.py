"""Seed the market reference data from shared/reference/india-market.md (as of Nov 2026).

Coverage starts 2024-01-01: calendar rows, session timings and expiry rules before that are not
seeded. 2024 holidays are not in the reference; they are the NSE list that the calendar
cross-check test compares with pandas_market_calendars. Rows marked [UNVERIFIED] or [DERIVED]
follow the reference's own marks. Everything is editable in admin afterwards.
"""

from datetime import date, time

from django.db import migrations

D = date.fromisoformat
COVERAGE_START = D("2024-01-01")

SRC_HOLIDAYS_2025 = "india-market.md §2.3; https://www.ibtimes.co.in/markets-closed-today-due-eid-ul-fitr-full-calendar-market-holidays-2025-881579"
SRC_HOLIDAYS_2026 = "india-market.md §2.3; https://www.livemint.com/market/stock-market-news/stock-market-holiday-bse-nse-to-remain-closed-for-trading-today-for-holi-2026/amp-11772498486929.html"
SRC_HOLIDAYS_2024 = "NSE 2024 list, cross-checked with pandas_market_calendars 5.5.0 (not in india-market.md)"

HOLIDAYS = [
    ("2024-01-22", "Special holiday (Ram Lalla Pran Pratishtha)", SRC_HOLIDAYS_2024),
    ("2024-01-26", "Republic Day", SRC_HOLIDAYS_2024),
    ("2024-03-08", "Mahashivratri", SRC_HOLIDAYS_2024),
    ("2024-03-25", "Holi", SRC_HOLIDAYS_2024),
    ("2024-03-29", "Good Friday", SRC_HOLIDAYS_2024),
    ("2024-04-11", "Id-ul-Fitr", SRC_HOLIDAYS_2024),
    ("2024-04-17", "Ram Navami", SRC_HOLIDAYS_2024),
    ("2024-05-01", "Maharashtra Day", SRC_HOLIDAYS_2024),
    ("2024-05-20", "General elections (Mumbai)", SRC_HOLIDAYS_2024),
    ("2024-06-17", "Bakri Id", SRC_HOLIDAYS_2024),
    ("2024-07-17", "Muharram", SRC_HOLIDAYS_2024),
    ("2024-08-15", "Independence Day", SRC_HOLIDAYS_2024),
    ("2024-10-02", "Gandhi Jayanti", SRC_HOLIDAYS_2024),
    ("2024-11-01", "Diwali Laxmi Pujan (Muhurat)", SRC_HOLIDAYS_2024),
    ("2024-11-15", "Guru Nanak Jayanti", SRC_HOLIDAYS_2024),
    ("2024-11-20", "Maharashtra assembly elections", SRC_HOLIDAYS_2024),
    ("2024-12-25", "Christmas", SRC_HOLIDAYS_2024),
    ("2025-02-26", "Mahashivratri", SRC_HOLIDAYS_2025),
    ("2025-03-14", "Holi", SRC_HOLIDAYS_2025),
    ("2025-03-31", "Id-ul-Fitr", SRC_HOLIDAYS_2025),
    ("2025-04-10", "Mahavir Jayanti", SRC_HOLIDAYS_2025),
    ("2025-04-14", "Ambedkar Jayanti", SRC_HOLIDAYS_2025),
    ("2025-04-18", "Good Friday", SRC_HOLIDAYS_2025),
    ("2025-05-01", "Maharashtra Day", SRC_HOLIDAYS_2025),
    ("2025-08-15", "Independence Day", SRC_HOLIDAYS_2025),
    ("2025-08-27", "Ganesh Chaturthi", SRC_HOLIDAYS_2025),
    ("2025-10-02", "Gandhi Jayanti/Dussehra", SRC_HOLIDAYS_2025),
    ("2025-10-21", "Diwali Laxmi Pujan (Muhurat)", SRC_HOLIDAYS_2025),
    ("2025-10-22", "Diwali Balipratipada", SRC_HOLIDAYS_2025),
    ("2025-11-05", "Guru Nanak Jayanti", SRC_HOLIDAYS_2025),
    ("2025-12-25", "Christmas", SRC_HOLIDAYS_2025),
    ("2026-01-15", "Municipal elections (added 12-Jan-2026)", SRC_HOLIDAYS_2026),
    ("2026-01-26", "Republic Day", SRC_HOLIDAYS_2026),
    ("2026-03-03", "Holi", SRC_HOLIDAYS_2026),
    ("2026-03-26", "Ram Navami", SRC_HOLIDAYS_2026),
    ("2026-03-31", "Mahavir Jayanti", SRC_HOLIDAYS_2026),
    ("2026-04-03", "Good Friday", SRC_HOLIDAYS_2026),
    ("2026-04-14", "Ambedkar Jayanti", SRC_HOLIDAYS_2026),
    ("2026-05-01", "Maharashtra Day", SRC_HOLIDAYS_2026),
    ("2026-05-28", "Bakri Id", SRC_HOLIDAYS_2026),
    ("2026-06-26", "Muharram", SRC_HOLIDAYS_2026),
    ("2026-09-14", "Ganesh Chaturthi", SRC_HOLIDAYS_2026),
    ("2026-10-02", "Gandhi Jayanti", SRC_HOLIDAYS_2026),
    ("2026-10-20", "Dussehra", SRC_HOLIDAYS_2026),
    ("2026-11-10", "Diwali Balipratipada", SRC_HOLIDAYS_2026),
    ("2026-11-24", "Guru Nanak Jayanti", SRC_HOLIDAYS_2026),
    ("2026-12-25", "Christmas", SRC_HOLIDAYS_2026),
]

# (date, opens, closes, reason, source); none of these may carry an expiry.
SPECIAL_SESSIONS = [
    ("2024-11-01", "18:00", "19:00", "Muhurat trading (Samvat 2081)", "india-market.md §2.2"),
    ("2025-02-01", "09:15", "15:30", "Union Budget (Saturday)", "india-market.md §2.2 (exchange_calendars, citing Angel One)"),
    ("2025-10-21", "13:45", "14:45", "Muhurat trading (Samvat 2082)", "india-market.md §2.2"),
    ("2026-02-01", "09:15", "15:30", "Union Budget 2026-27 (Sunday; settlement holiday)", "india-market.md §2.2"),
]

UNDERLYINGS = [
    ("NIFTY", "Nifty 50", "NSE", "NFO"),
    ("BANKNIFTY", "Nifty Bank", "NSE", "NFO"),
    ("FINNIFTY", "Nifty Financial Services", "NSE", "NFO"),
    ("MIDCPNIFTY", "Nifty Midcap Select", "NSE", "NFO"),
    ("SENSEX", "BSE Sensex", "BSE", "BFO"),
]

N24 = "Nov-2024 revision (SEBI circular 2024/132; new lots for contracts listed from 20-Nov-2024)"
A25 = "Apr-2025 revision (effective 25-Apr-2025; Apr-Jun monthlies kept old lots)"
O25 = "Oct-2025 revision (NSE/FAOP/70616; first new weekly 6-Jan-2026, monthly 27-Jan-2026)"
# (expiry_from, expiry_to, lot, valid_until, note)
LOT_SIZES = {
    "NIFTY": [
        (None, "2024-12-26", 25, None, "Old lot: every expiry up to 26-Dec-2024 (reference table)"),
        ("2025-01-02", "2025-01-23", 75, None, N24 + ": first weeklies at 75"),
        ("2025-01-30", "2025-01-30", 25, None, "Jan-2025 monthly listed before 20-Nov-2024 kept 25"),
        ("2025-01-31", "2025-12-30", 75, None, N24),
        ("2025-01-31", None, 25, "2024-12-26", "Quarterlies/half-yearlies listed before 20-Nov-2024, re-lotted EOD 26-Dec-2024"),
        ("2026-01-01", None, 65, None, O25),
        ("2026-03-01", None, 75, "2025-12-30", "Quarterlies/half-yearlies at 75, re-lotted EOD 30-Dec-2025"),
    ],
    "BANKNIFTY": [
        (None, "2025-01-30", 15, None, "Old lot; Dec-2024 and Jan-2025 monthlies were listed before 20-Nov-2024 [DERIVED]"),
        ("2025-01-31", "2025-06-30", 30, None, N24 + "; " + A25),
        ("2025-01-31", None, 15, "2024-12-24", "Quarterlies listed before 20-Nov-2024, re-lotted EOD 24-Dec-2024"),
        ("2025-07-01", "2025-12-30", 35, None, A25 + ": first new monthly 31-Jul-2025"),
        ("2026-01-01", None, 30, None, O25),
        ("2026-03-01", None, 35, "2025-12-30", "Quarterlies at 35, re-lotted EOD 30-Dec-2025"),
    ],
    "FINNIFTY": [
        (None, "2025-01-30", 25, None, "Old lot; Dec-2024 and Jan-2025 monthlies were listed before 20-Nov-2024 [DERIVED]"),
        ("2025-01-31", "2025-12-30", 65, None, N24 + " (2025 revision unchanged)"),
        ("2026-01-01", None, 60, None, O25),
    ],
    "MIDCPNIFTY": [
        (None, "2025-01-30", 50, None, "Old lot; Dec-2024 and Jan-2025 monthlies were listed before 20-Nov-2024 [DERIVED]"),
        ("2025-01-31", "2025-06-30", 120, None, N24 + "; " + A25),
        ("2025-07-01", "2025-12-30", 140, None, A25 + ": first new monthly 31-Jul-2025"),
        ("2026-01-01", None, 120, None, O25),
    ],
    "SENSEX": [
        (None, "2024-12-31", 10, None, "Old lot (BSE)"),
        ("2025-01-01", None, 20, None, "Nov-2024 revision (BSE); which Jan-2025 contracts kept 10 is [UNVERIFIED]"),
        ("2025-02-01", None, 10, "2024-12-27", "Quarterlies/half-yearlies re-lotted EOD 27-Dec-2024"),
    ],
}

FREEZE_SRC = "india-market.md §1.5 (NSE quantity freeze circulars)"
FREEZE = {
    "NIFTY": [("2025-03-03", 1800), ("2025-07-01", 1800), ("2025-09-01", 1800), ("2025-11-03", 1800), ("2026-02-01", 1800)],
    "BANKNIFTY": [("2025-03-03", 900), ("2025-07-01", 600), ("2025-09-01", 900), ("2025-11-03", 600), ("2026-02-01", 600)],
    "FINNIFTY": [("2025-03-03", 1800), ("2025-07-01", 1800), ("2025-09-01", 1800), ("2025-11-03", 1800), ("2026-02-01", 1800)],
    "MIDCPNIFTY": [("2025-03-03", 4200), ("2025-07-01", 2800), ("2025-09-01", 2800), ("2025-11-03", 2800), ("2026-02-01", 2800)],
}
SENSEX_FREEZE = ("2025-06-01", 500, "[UNVERIFIED] FYERS KB listing, Jun-2025 (india-market.md §1.5)")

STRIKE_STEPS = [
    ("NIFTY", "2013-08-30", "50", "india-market.md §1.4 (near-term strikes since 30-Aug-2013)"),
    ("BANKNIFTY", "2023-03-24", "100", "india-market.md §1.4 (100 near the money from 24-Mar-2023)"),
    ("SENSEX", "2024-01-01", "100", "india-market.md §1.4 (public code); seeded from the start of coverage"),
    ("FINNIFTY", "2024-01-01", "50", "[UNVERIFIED] not in india-market.md; the commonly listed interval"),
    ("MIDCPNIFTY", "2024-01-01", "25", "[UNVERIFIED] not in india-market.md; the commonly listed interval"),
]

MON, TUE, WED, THU, FRI = 0, 1, 2, 3, 4
EXP_SRC = "india-market.md §1.2"
# (kind, weekday, from, to, listed_count, source)
EXPIRY_RULES = {
    "NIFTY": [
        ("weekly", THU, "2024-01-01", "2025-08-31", 4, EXP_SRC),
        ("weekly", TUE, "2025-09-01", None, 4, EXP_SRC + " (NSE/FAOP/68747; first Tuesday 2-Sep-2025)"),
        ("monthly", THU, "2024-01-01", "2025-08-31", 3, EXP_SRC + " (last Thursday monthly 28-Aug-2025)"),
        ("monthly", TUE, "2025-09-01", None, 3, EXP_SRC + " (NSE/FAOP/68747)"),
    ],
    "BANKNIFTY": [
        ("weekly", WED, "2024-01-01", "2024-11-19", 4, EXP_SRC + " (last weekly 13-Nov-2024)"),
        ("monthly", THU, "2024-01-01", "2024-02-29", 3, "[UNVERIFIED] not in india-market.md"),
        ("monthly", WED, "2024-03-01", "2024-12-31", 3, "[UNVERIFIED] not in india-market.md; Dec-2024 expiry 24-Dec per §1.1"),
        ("monthly", THU, "2025-01-01", "2025-08-31", 3, EXP_SRC),
        ("monthly", TUE, "2025-09-01", None, 3, EXP_SRC),
    ],
    "FINNIFTY": [
        ("weekly", TUE, "2024-01-01", "2024-11-19", 4, EXP_SRC + " (last weekly 19-Nov-2024)"),
        ("monthly", TUE, "2024-01-01", "2024-12-31", 3, "[DERIVED] same weekday as the weekly"),
        ("monthly", THU, "2025-01-01", "2025-08-31", 3, EXP_SRC),
        ("monthly", TUE, "2025-09-01", None, 3, EXP_SRC),
    ],
    "MIDCPNIFTY": [
        ("weekly", MON, "2024-01-01", "2024-11-19", 4, EXP_SRC + " (last weekly 18-Nov-2024)"),
        ("monthly", MON, "2024-01-01", "2024-12-31", 3, "[DERIVED] same weekday as the weekly"),
        ("monthly", THU, "2025-01-01", "2025-08-31", 3, EXP_SRC),
        ("monthly", TUE, "2025-09-01", None, 3, EXP_SRC),
    ],
    "SENSEX": [
        ("weekly", FRI, "2024-01-01", "2024-12-31", 4, EXP_SRC),
        ("weekly", TUE, "2025-01-01", "2025-08-31", 4, EXP_SRC),
        ("weekly", THU, "2025-09-01", None, 4, EXP_SRC + " (first Thursday 4-Sep-2025)"),
        ("monthly", FRI, "2024-01-01", "2024-12-31", 3, "[DERIVED] Dec-2024 quarterly switched 27-Dec (§1.1)"),
        ("monthly", TUE, "2025-01-01", "2025-08-31", 3, EXP_SRC),
        ("monthly", THU, "2025-09-01", None, 3, EXP_SRC),
    ],
}


def _d(value):
    return D(value) if value else None


def _t(value):
    return time.fromisoformat(value)


def seed(apps, schema_editor):
    Underlying = apps.get_model("execution", "Underlying")
    SessionTiming = apps.get_model("execution", "SessionTiming")
    TradingHoliday = apps.get_model("execution", "TradingHoliday")
    SpecialSession = apps.get_model("execution", "SpecialSession")
    LotSize = apps.get_model("execution", "LotSize")
    FreezeQuantity = apps.get_model("execution", "FreezeQuantity")
    StrikeStep = apps.get_model("execution", "StrikeStep")
    ExpiryRule = apps.get_model("execution", "ExpiryRule")

    for exchange in ("NSE", "BSE"):
        SessionTiming.objects.update_or_create(
            exchange=exchange,
            effective_from=COVERAGE_START,
            defaults={
                "opens_at": _t("09:15"),
                "closes_at": _t("15:30"),
                "source": "india-market.md §2.1 (normal market 09:15-15:30); seeded from the start of coverage",
            },
        )
        for day, reason, source in HOLIDAYS:
            TradingHoliday.objects.update_or_create(
                exchange=exchange, date=D(day), defaults={"reason": reason, "source": source}
            )
        for day, opens, closes, reason, source in SPECIAL_SESSIONS:
            SpecialSession.objects.update_or_create(
                exchange=exchange,
                date=D(day),
                defaults={
                    "opens_at": _t(opens),
                    "closes_at": _t(closes),
                    "reason": reason,
                    "source": source,
                    "expiries_allowed": False,
                },
            )

    by_symbol = {}
    for symbol, name, exchange, segment in UNDERLYINGS:
        by_symbol[symbol], _ = Underlying.objects.update_or_create(
            symbol=symbol, defaults={"name": name, "exchange": exchange, "segment": segment}
        )
    for symbol, rows in LOT_SIZES.items():
        for expiry_from, expiry_to, lot, valid_until, note in rows:
            LotSize.objects.get_or_create(
                underlying=by_symbol[symbol],
                expiry_from=_d(expiry_from),
                expiry_to=_d(expiry_to),
                valid_until=_d(valid_until),
                defaults={"lot_size": lot, "note": note},
            )
    for symbol, rows in FREEZE.items():
        for effective_from, quantity in rows:
            FreezeQuantity.objects.update_or_create(
                underlying=by_symbol[symbol],
                effective_from=D(effective_from),
                defaults={"quantity": quantity, "source": FREEZE_SRC},
            )
    FreezeQuantity.objects.update_or_create(
        underlying=by_symbol["SENSEX"],
        effective_from=D(SENSEX_FREEZE[0]),
        defaults={"quantity": SENSEX_FREEZE[1], "source": SENSEX_FREEZE[2]},
    )
    for symbol, effective_from, step, source in STRIKE_STEPS:
        StrikeStep.objects.update_or_create(
            underlying=by_symbol[symbol],
            effective_from=D(effective_from),
            defaults={"step": step, "source": source},
        )
    for symbol, rows in EXPIRY_RULES.items():
        for kind, weekday, effective_from, effective_to, count, source in rows:
            ExpiryRule.objects.update_or_create(
                underlying=by_symbol[symbol],
                kind=kind,
                effective_from=D(effective_from),
                defaults={
                    "weekday": weekday,
                    "effective_to": _d(effective_to),
                    "listed_count": count,
                    "source": source,
                },
            )


class Migration(migrations.Migration):
    dependencies = [("execution", "0002_market_reference")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
