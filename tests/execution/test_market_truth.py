"""Market truth: years tradable only once loaded, the dated close, current reference rows.

The CSV under tests/execution/data is a TEST file in the documented format; it is not NSE's
2027 list (unpublished when this was written)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from brokers.models import Broker
from execution.dispatch import boundary_dispatch
from execution.markettime import IST
from execution.models import (
    ExecutionEvent,
    HolidayCalendarYear,
    OrderIntent,
    ScheduledRun,
    SpecialSession,
    TradingHoliday,
)
from execution.planning.plan import day_plan
from execution.reference import calendar, contracts
from execution.reference.holidays import HolidayFileError, holiday_file_parse
from tests.execution.engine_factories import strategy_with_accounts

pytestmark = pytest.mark.django_db

TEST_2027 = Path(__file__).parent / "data" / "nse_2027_for_tests.csv"
D = datetime.date


def at(day: datetime.date, hour: int, minute: int = 0) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=IST)


def load_2027(**extra):
    call_command(
        "import_holidays", str(TEST_2027), exchange="NSE", year=2027, source="TEST-2027", **extra
    )


class FlatMarket:
    def spot(self, symbol, at=None):
        from decimal import Decimal

        return Decimal("24000")

    def chain(self, *args, **kwargs):
        return []


def test_2027_is_not_tradable_until_loaded_and_every_layer_says_why():
    day = D(2027, 1, 27)  # a Wednesday
    reason = "NSE holiday calendar for 2027 not loaded"
    assert not HolidayCalendarYear.objects.filter(year=2027).exists()
    # The fixed-date holidays are pre-entered, but that does not make the year tradable.
    assert TradingHoliday.objects.filter(exchange="NSE", date=D(2027, 1, 26)).exists()
    assert calendar.day_status(day).closed_reason == reason
    with pytest.raises(calendar.TradingClosedError, match=reason):
        calendar.assert_can_trade(at(day, 10))
    # Planning skips with the reason.
    strategy, version, accounts = strategy_with_accounts(brokers=(Broker.KITE,))
    version.effective_from = D(2026, 1, 1)
    version.save(update_fields=["effective_from"])
    result = day_plan(day=day)
    assert not result.created and reason in result.not_planned[0]
    # Dispatch refuses a run that got there anyway (a run row made by hand).
    when = at(day, 9, 20)
    ScheduledRun.objects.create(
        session_date=day,
        boundary="entry",
        fire_at=when,
        strategy_version=version,
        owner=strategy.owner,
        source="allocation",
        allocations=[{"account_id": accounts[0].pk, "broker": "kite", "priority": 1}],
    )
    outcome = boundary_dispatch(fire_at=when, market=FlatMarket(), wait=False, start_sends=False)
    assert reason in next(iter(outcome.skipped.values()))
    assert OrderIntent.objects.count() == 0
    # The January expiry cannot be named while its day may still move.
    with pytest.raises(calendar.CalendarNotLoadedError, match=reason):
        contracts.pick_expiry("NIFTY", D(2027, 1, 20), "current_month")
    # ...yet December 2026's expiries stay known (the listing reaches into 2027 harmlessly).
    assert contracts.pick_expiry("NIFTY", D(2026, 12, 7), "current_week") == D(2026, 12, 8)
    assert D(2026, 12, 29) in contracts.expiries("NIFTY", D(2026, 12, 7))


def test_loading_2027_by_command_makes_it_tradable_with_26_jan_a_holiday():
    load_2027()
    loaded = HolidayCalendarYear.objects.get(exchange="NSE", year=2027)
    assert loaded.source == "TEST-2027" and loaded.loaded_at is not None
    assert calendar.is_session(D(2027, 1, 27))
    assert calendar.day_status(D(2027, 1, 26)).closed_reason == "holiday: Republic Day"
    assert calendar.day_status(D(2027, 12, 24)).closed_reason == (
        "holiday: Test-only weekday holiday"
    )
    # The special session in the file is declared with its window.
    special = SpecialSession.objects.get(exchange="NSE", date=D(2027, 2, 1))
    assert (special.opens_at, special.closes_at) == (datetime.time(9, 15), datetime.time(15, 40))
    # January's monthly (last Tuesday, 26-Jan) moves to Monday 25-Jan, and so does that
    # week's weekly: they are one contract.
    assert contracts.monthly_expiry("NIFTY", 2027, 1) == D(2027, 1, 25)
    assert contracts.pick_expiry("NIFTY", D(2027, 1, 20), "current_week") == D(2027, 1, 25)
    assert contracts.kite_symbol("NIFTY", D(2027, 1, 25), 24000, "CE") == "NIFTY27JAN24000CE"
    # BSE has its own list: still not loaded.
    assert not calendar.is_session(D(2027, 1, 27), "BSE")
    assert ExecutionEvent.objects.filter(kind="calendar.loaded").count() == 1


def test_loading_again_needs_replace_and_drops_pre_entered_days_the_file_lacks():
    load_2027()
    with pytest.raises(CommandError, match="already loaded"):
        load_2027()
    TradingHoliday.objects.create(exchange="NSE", date=D(2027, 6, 1), reason="Typo day")
    load_2027(replace=True)
    assert not TradingHoliday.objects.filter(exchange="NSE", date=D(2027, 6, 1)).exists()
    assert calendar.is_session(D(2027, 6, 1))


@pytest.mark.parametrize(
    ("text", "line_error"),
    [
        ("day,name\n2027-01-26,Republic Day\n", "Line 1: the header must name"),
        ("date,description\n2027-01-26,Republic Day\n2027-13-01,Bad\n", "Line 3: date"),
        ("date,description\n2027-01-26,Republic Day\n2026-12-25,Christmas\n", "Line 3: 2026-12-25"),
        ("date,description\n2027-01-26,Republic Day\n2027-01-30,Saturday\n", "Line 3: 2027-01-30"),
        (
            "date,description\n2027-01-26,A\n2027-03-26,B\n2027-01-26,A again\n",
            "Line 4: 2027-01-26",
        ),
        ("date,description\n2027-01-26,\n", "Line 2: the description is empty"),
        ("date,description,opens,closes\n2027-01-30,Budget,09:15,\n", "Line 2: a special"),
        ("date,description\n", "lists no holiday"),
    ],
)
def test_a_bad_holiday_file_changes_nothing_and_names_the_line(tmp_path, text, line_error):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    before = set(TradingHoliday.objects.values_list("exchange", "date"))
    with pytest.raises(CommandError, match=line_error) as caught:
        call_command("import_holidays", str(path), exchange="NSE", year=2027, source="X")
    assert "Nothing was changed" in str(caught.value)
    assert set(TradingHoliday.objects.values_list("exchange", "date")) == before
    assert not HolidayCalendarYear.objects.filter(year=2027).exists()
    with pytest.raises(HolidayFileError):
        holiday_file_parse(text=text, year=2027)


def test_admin_loads_a_year_from_a_file_and_sees_the_banner_until_then(admin_client):
    import time_machine

    with time_machine.travel(at(D(2026, 12, 5), 11), tick=True):
        index = admin_client.get(reverse("admin:index")).content.decode()
        assert "data-calendar-banner" in index
        assert "NSE holiday calendar for 2027 not loaded; 2026 ends in 26 days" in index
        with TEST_2027.open("rb") as upload:
            response = admin_client.post(
                reverse("admin:execution_holidaycalendaryear_add"),
                {
                    "exchange": "NSE",
                    "year": "2027",
                    "source": "NSE/CMTR/TEST",
                    "holiday_file": upload,
                },
            )
        assert response.status_code == 302, response.content.decode()[:2000]
        loaded = HolidayCalendarYear.objects.get(exchange="NSE", year=2027)
        assert loaded.loaded_by is not None and loaded.source == "NSE/CMTR/TEST"
        index = admin_client.get(reverse("admin:index")).content.decode()
        assert "NSE holiday calendar for 2027" not in index
        assert "BSE holiday calendar for 2027 not loaded" in index  # BSE still to do


def test_admin_upload_with_a_bad_line_is_a_form_error(admin_client, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("date,description\n2027-01-30,Saturday\n")
    with path.open("rb") as upload:
        response = admin_client.post(
            reverse("admin:execution_holidaycalendaryear_add"),
            {"exchange": "NSE", "year": "2027", "source": "X", "holiday_file": upload},
        )
    assert response.status_code == 200
    assert "Line 2: 2027-01-30 is a Saturday" in response.content.decode()
    assert not HolidayCalendarYear.objects.filter(year=2027).exists()


def test_ready_check_tells_admins_once_a_day_when_the_calendar_runs_out(mailoutbox, settings):
    from execution.services import calendar_ready_check

    settings.ADMINS = [("Ops", "ops@example.com")]
    warnings = calendar_ready_check(day=D(2026, 12, 5))
    assert any("NSE holiday calendar for 2027 not loaded" in w for w in warnings)
    calendar_ready_check(day=D(2026, 12, 5))
    assert len(mailoutbox) == 1 and "2027" in mailoutbox[0].body
    assert calendar_ready_check(day=D(2026, 11, 2)) == []  # 59 days left: quiet


@pytest.mark.parametrize(
    ("symbol", "day", "units"),
    [
        ("FINNIFTY", D(2026, 3, 16), 1200),  # FAOP73039 from 2-Mar-2026
        ("BANKNIFTY", D(2026, 3, 16), 600),
        ("BANKNIFTY", D(2026, 5, 12), 900),  # FAOP73991 from 4-May-2026
        ("FINNIFTY", D(2026, 5, 12), 1800),
        ("BANKNIFTY", D(2026, 8, 10), 600),  # FAOP75521 from 3-Aug-2026
        ("NIFTY", D(2026, 8, 10), 1800),
        ("MIDCPNIFTY", D(2026, 8, 10), 2800),
    ],
)
def test_freeze_limits_follow_the_2026_circulars(symbol, day, units):
    assert contracts.freeze_quantity(symbol, day) == units


def test_every_2026_freeze_row_cites_its_circular():
    from execution.models import FreezeQuantity

    rows = FreezeQuantity.objects.filter(effective_from__year=2026)
    assert rows.count() == 7 * 4
    assert all("FAOP" in row.source for row in rows)


def test_lot_sizes_as_they_stand():
    # Unchanged through Aug-2026 (india-market.md §0.3).
    expiry = D(2026, 12, 29)
    assert [contracts.lot_size(s, expiry, D(2026, 12, 7)) for s in ("NIFTY", "BANKNIFTY")] == [
        65,
        30,
    ]
    assert contracts.lot_size("FINNIFTY", expiry, D(2026, 12, 7)) == 60
    assert contracts.lot_size("MIDCPNIFTY", expiry, D(2026, 12, 7)) == 120


def test_session_hours_file_agrees_with_the_seeded_rows():
    from execution.market.sessions import reference_hours
    from execution.models import SessionTiming

    for exchange in ("NSE", "BSE"):
        rows = {
            (t.effective_from, t.opens_at, t.closes_at)
            for t in SessionTiming.objects.filter(exchange=exchange)
        }
        assert rows == set(reference_hours().rows), exchange
