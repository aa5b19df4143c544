"""Charges from dated rate rows: the reference's worked example, date picking, admin edits."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from execution.models import BrokerageRate, ChargeRate
from execution.reference.charges import ChargeFill, ChargeRateMissing, charges_compute
from tests.conftest import staff_client_for

D = Decimal


def straddle(exchange: str = "NSE") -> list[ChargeFill]:
    """India-market §4.2: NIFTY short straddle, 65 units, sold at ₹100, bought back at ₹80."""
    return [
        ChargeFill(order_ref=1, side="SELL", quantity=65, price=D("100"), exchange=exchange),
        ChargeFill(order_ref=2, side="SELL", quantity=65, price=D("100"), exchange=exchange),
        ChargeFill(order_ref=3, side="BUY", quantity=65, price=D("80"), exchange=exchange),
        ChargeFill(order_ref=4, side="BUY", quantity=65, price=D("80"), exchange=exchange),
    ]


def rates(*, stt: str) -> list[ChargeRate]:
    return [
        ChargeRate(
            exchange="NSE",
            effective_from=datetime.date(2024, 10, 1),
            stt_sell_percent=D(stt),
            exchange_txn_percent=D("0.03503"),
            ipft_percent=D("0.0005"),
            sebi_fee_percent=D("0.0001"),
            stamp_buy_percent=D("0.003"),
            gst_percent=D("18"),
        )
    ]


KITE = [BrokerageRate(broker="kite", effective_from=datetime.date(2024, 10, 1), per_order=D(20))]


@pytest.mark.parametrize(
    ("stt_percent", "stt", "total"),
    [("0.1", D("13.00"), D("117.53")), ("0.15", D("19.50"), D("124.03"))],
)
def test_worked_example_matches_reference(stt_percent, stt, total):
    result = charges_compute(
        fills=straddle(),
        trade_date=datetime.date(2026, 3, 2),
        broker="kite",
        charge_rates=rates(stt=stt_percent),
        brokerage_rates=KITE,
    )
    assert (result.sell_value, result.buy_value, result.orders) == (D(13000), D(10400), 4)
    assert result.brokerage == D("80.00")
    assert result.exchange_txn == D("8.20")
    assert result.ipft == D("0.12")
    assert result.sebi_fee == D("0.02")
    assert result.stamp == D("0.31")
    assert result.gst == D("15.88")
    assert result.stt == stt
    assert result.total == total
    assert result.brokerage_simulated is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("trade_date", "total"),
    [
        (datetime.date(2026, 2, 27), D("117.53")),  # last day before the NSE re-split
        (datetime.date(2026, 3, 2), D("117.54")),  # first session under NSE/FA/73061
        (datetime.date(2026, 3, 31), D("117.54")),  # last day at 0.1% STT
        (datetime.date(2026, 4, 1), D("124.04")),  # first day at 0.15%
    ],
)
def test_seeded_rows_pick_the_rate_in_force_on_the_trade_date(trade_date, total):
    result = charges_compute(
        fills=straddle(),
        trade_date=trade_date,
        broker="kite",
        charge_rates=list(ChargeRate.objects.all()),
        brokerage_rates=list(BrokerageRate.objects.all()),
    )
    assert result.total == total


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("trade_date", "items"),
    [
        # Worked by hand for the straddle: turnover 23,400 (sold 13,000, bought 10,400).
        # Up to 28-Feb-2026: transaction 0.03503% = 8.19702 → 8.20; IPFT 0.0005% = 0.117 →
        # 0.12; GST 18% of (brokerage 80 + 8.20 + SEBI 0.02) = 15.8796 → 15.88 (none on IPFT).
        (
            datetime.date(2026, 2, 27),
            {"exchange_txn": "8.20", "ipft": "0.12", "gst": "15.88", "total": "117.53"},
        ),
        # From 1-Mar-2026 (NSE/FA/73061): transaction 0.03552% = 8.31168 → 8.31; IPFT
        # 0.00001% = 0.00234 → 0.00; GST 18% of (80 + 8.31 + 0.02 + IPFT 0.00) = 15.8994 →
        # 15.90. STT 13.00, SEBI 0.02 and stamp 0.31 are unchanged.
        (
            datetime.date(2026, 3, 2),
            {"exchange_txn": "8.31", "ipft": "0.00", "gst": "15.90", "total": "117.54"},
        ),
    ],
)
def test_nse_charge_resplit_on_1_mar_2026_matches_the_hand_computation(trade_date, items):
    result = charges_compute(
        fills=straddle(),
        trade_date=trade_date,
        broker="kite",
        charge_rates=list(ChargeRate.objects.all()),
        brokerage_rates=list(BrokerageRate.objects.all()),
    )
    assert (result.brokerage, result.stt, result.sebi_fee, result.stamp) == (
        D("80.00"),
        D("13.00"),
        D("0.02"),
        D("0.31"),
    )
    assert {name: str(getattr(result, name)) for name in items} == items
    resplit = ChargeRate.objects.get(exchange="NSE", effective_from=datetime.date(2026, 3, 1))
    assert "NSE/FA/73061" in resplit.source and resplit.gst_on_ipft


@pytest.mark.django_db
def test_seeded_unverified_items_are_marked():
    assert (
        "[UNVERIFIED]"
        in ChargeRate.objects.get(exchange="NSE", effective_from=datetime.date(2024, 10, 1)).note
    )
    assert "[UNVERIFIED]" in BrokerageRate.objects.get(broker="upstox").note
    assert "Simulated" in BrokerageRate.objects.get(broker="paper").note


@pytest.mark.django_db
def test_bse_uses_its_own_exchange_rate_and_no_ipft():
    result = charges_compute(
        fills=straddle("BSE"),
        trade_date=datetime.date(2026, 3, 2),
        broker="kite",
        charge_rates=list(ChargeRate.objects.all()),
        brokerage_rates=list(BrokerageRate.objects.all()),
    )
    # 0.0325% of 23,400 = 7.605 → 7.61; GST 18% of (80 + 7.61 + 0.02) = 15.7734 → 15.77
    assert (result.exchange_txn, result.ipft, result.gst) == (D("7.61"), D("0.00"), D("15.77"))
    assert result.total == D("80") + D("13.00") + D("7.61") + D("0.02") + D("0.31") + D("15.77")


@pytest.mark.django_db
def test_paper_brokerage_is_zero_and_labelled_simulated_unless_an_admin_sets_a_rate():
    kwargs = dict(
        fills=straddle(),
        trade_date=datetime.date(2026, 3, 2),
        broker="paper",
        charge_rates=list(ChargeRate.objects.all()),
    )
    free = charges_compute(**kwargs, brokerage_rates=list(BrokerageRate.objects.all()))
    assert free.brokerage == 0 and free.brokerage_simulated is True
    assert free.total == D("117.54") - D("80") - D("14.40")  # no brokerage, no GST on it
    BrokerageRate.objects.create(
        broker="paper", effective_from=datetime.date(2026, 1, 1), per_order=D("10")
    )
    simulated = charges_compute(**kwargs, brokerage_rates=list(BrokerageRate.objects.all()))
    assert simulated.brokerage == D("40.00")


def test_partial_fills_of_one_order_pay_brokerage_once():
    fills = [
        ChargeFill(order_ref="A", side="SELL", quantity=30, price=D("100"), exchange="NSE"),
        ChargeFill(order_ref="A", side="SELL", quantity=35, price=D("100"), exchange="NSE"),
    ]
    result = charges_compute(
        fills=fills,
        trade_date=datetime.date(2026, 3, 2),
        broker="kite",
        charge_rates=rates(stt="0.1"),
        brokerage_rates=KITE,
    )
    assert (result.orders, result.brokerage, result.stt) == (1, D("20.00"), D("6.50"))


def test_a_trade_date_before_any_rate_is_refused_not_guessed():
    with pytest.raises(ChargeRateMissing):
        charges_compute(
            fills=straddle(),
            trade_date=datetime.date(2024, 9, 30),
            broker="kite",
            charge_rates=rates(stt="0.1"),
            brokerage_rates=KITE,
        )
    with pytest.raises(ChargeRateMissing):
        charges_compute(
            fills=straddle(),
            trade_date=datetime.date(2026, 3, 2),
            broker="dhan",
            charge_rates=rates(stt="0.1"),
            brokerage_rates=KITE,
        )


@pytest.mark.django_db
def test_admin_lists_and_adds_charge_rates(client):
    from tests.execution.factories import SuperuserFactory

    client = staff_client_for(SuperuserFactory())
    page = client.get("/admin/execution/chargerate/")
    assert page.status_code == 200 and b"0.150000" in page.content
    response = client.post(
        "/admin/execution/brokeragerate/add/",
        {"broker": "kite", "effective_from": "2027-01-01", "per_order": "25", "note": "new"},
    )
    assert response.status_code == 302
    assert BrokerageRate.objects.get(broker="kite", effective_from="2027-01-01").per_order == 25
