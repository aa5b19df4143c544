"""An admin adds an ad-hoc holiday and the expiry list follows at once (no restart, no cache)."""

from __future__ import annotations

from datetime import date

import pytest

from execution.models import TradingHoliday
from execution.reference import calendar, contracts
from tests.conftest import staff_client_for
from tests.execution.factories import SuperuserFactory

pytestmark = pytest.mark.django_db


def test_holiday_added_in_admin_moves_that_weeks_expiry():
    admin_client = staff_client_for(SuperuserFactory())
    on = date(2026, 12, 3)
    assert contracts.pick_expiry("NIFTY", on, "current_week") == date(2026, 12, 8)
    assert contracts.kite_symbol("NIFTY", date(2026, 12, 8), 26000, "CE") == "NIFTY26D0826000CE"

    response = admin_client.post(
        "/admin/execution/tradingholiday/add/",
        {"exchange": "NSE", "date": "2026-12-08", "reason": "Ad-hoc closure", "source": ""},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert TradingHoliday.objects.filter(exchange="NSE", date=date(2026, 12, 8)).exists()
    assert not calendar.is_session(date(2026, 12, 8))
    assert contracts.pick_expiry("NIFTY", on, "current_week") == date(2026, 12, 7)
    listed = contracts.expiries("NIFTY", on)
    assert date(2026, 12, 7) in listed and date(2026, 12, 8) not in listed
    assert contracts.kite_symbol("NIFTY", date(2026, 12, 7), 26000, "CE") == "NIFTY26D0726000CE"


def test_duplicate_holiday_is_a_form_error_not_a_crash():
    admin_client = staff_client_for(SuperuserFactory())
    response = admin_client.post(
        "/admin/execution/tradingholiday/add/",
        {"exchange": "NSE", "date": "2026-11-10", "reason": "Again", "source": ""},
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert TradingHoliday.objects.get(exchange="NSE", date=date(2026, 11, 10)).reason == (
        "Diwali Balipratipada"
    )


def test_admin_lists_render_for_every_reference_table():
    admin_client = staff_client_for(SuperuserFactory())
    for model in [
        "tradingholiday",
        "specialsession",
        "sessiontiming",
        "underlying",
        "lotsize",
        "freezequantity",
        "expiryrule",
        "instrument",
    ]:
        assert admin_client.get(f"/admin/execution/{model}/").status_code == 200, model
    assert admin_client.get("/admin/execution/underlying/1/change/").status_code == 200


def _load(admin_client, *, year: int, content: bytes, replace: bool = False):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {
        "exchange": "NSE",
        "year": str(year),
        "source": "NSE circular (test)",
        "holiday_file": SimpleUploadedFile("holidays.csv", content, content_type="text/csv"),
    }
    if replace:
        data["replace"] = "on"
    return admin_client.post("/admin/execution/holidaycalendaryear/add/", data)


def test_loading_a_years_holiday_list_in_admin_makes_that_year_tradable():
    from execution.models import HolidayCalendarYear

    admin_client = staff_client_for(SuperuserFactory())
    HolidayCalendarYear.objects.filter(exchange="NSE", year=2031).delete()
    assert not calendar.is_session(date(2031, 1, 27))  # an unloaded year never trades
    response = _load(
        admin_client, year=2031, content=b"date,description\n2031-01-24,Test closure\n"
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert HolidayCalendarYear.objects.filter(exchange="NSE", year=2031).exists()
    assert calendar.is_session(date(2031, 1, 27)) and not calendar.is_session(date(2031, 1, 24))
    # Loading it again needs the replace box; without it nothing changes.
    again = _load(admin_client, year=2031, content=b"date,description\n2031-01-27,Other\n")
    assert again.status_code == 200
    assert "already loaded: tick to replace it." in again.content.decode()
    assert calendar.is_session(date(2031, 1, 27))


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"date,description\n2031-01-24,Caf\xe9 closure\n", "The file is not UTF-8 text."),
        (b"date,description\n2030-01-24,Wrong year\n", "Line 2: 2030-01-24 is not in 2031."),
    ],
)
def test_a_bad_holiday_file_changes_nothing_and_says_why(content, words):
    from execution.models import HolidayCalendarYear

    admin_client = staff_client_for(SuperuserFactory())
    HolidayCalendarYear.objects.filter(exchange="NSE", year=2031).delete()
    response = _load(admin_client, year=2031, content=content)
    assert response.status_code == 200
    assert words in response.content.decode()
    assert not HolidayCalendarYear.objects.filter(exchange="NSE", year=2031).exists()
