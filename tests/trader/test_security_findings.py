"""The probe's findings, through HTTP: CSV formulas, malformed postbacks, oversized numbers,
audit tables in admin."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from execution.models import OrderIntent
from marketplace.models import MonthlyLedger
from tests.conftest import staff_client_for
from tests.execution.engine_factories import IntentFactory
from tests.execution.factories import SuperuserFactory
from tests.marketplace.factories import ListingFactory, StrategyFactory
from tests.marketplace.security_helpers import fee_subscription
from trader.csvexport import csv_cell

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("text", ["=HYPERLINK(1)", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_formula_leading_cells_are_escaped(text):
    assert csv_cell(text) == "'" + text


def test_numbers_and_plain_text_are_left_alone():
    assert csv_cell(Decimal("-5.00")) == Decimal("-5.00")
    assert csv_cell("Theta harvester") == "Theta harvester"


def test_payout_csv_escapes_a_formula_title():
    subscription = fee_subscription(title='=HYPERLINK("http://x.example","pay")')
    ledger = MonthlyLedger.objects.create(
        subscription=subscription,
        listing=subscription.listing,
        month=datetime.date(2026, 11, 1),
        fee=Decimal("499"),
        pnl=Decimal("0"),
        cumulative_pnl=Decimal("0"),
        high_water_mark=Decimal("0"),
        profit_share=Decimal("0"),
        commission_percent=Decimal("20"),
        commission=Decimal("99.80"),
        creator_payout=Decimal("399.20"),
    )
    client = staff_client_for(SuperuserFactory())
    response = client.post(
        reverse("admin:marketplace_monthlyledger_changelist"),
        {"action": "payout_csv", "_selected_action": [ledger.pk]},
    )
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[1][2] == "'" + subscription.listing.title


def test_payout_csv_reads_in_lakhs_with_headings_in_words():
    subscription = fee_subscription(title="Theta harvester")
    ledger = MonthlyLedger.objects.create(
        subscription=subscription,
        listing=subscription.listing,
        month=datetime.date(2026, 11, 1),
        fee=Decimal("1234567.5"),
        pnl=Decimal("0"),
        cumulative_pnl=Decimal("0"),
        high_water_mark=Decimal("0"),
        profit_share=Decimal("0"),
        commission_percent=Decimal("20"),
        commission=Decimal("246913.50"),
        creator_payout=Decimal("987654.00"),
    )
    client = staff_client_for(SuperuserFactory())
    response = client.post(
        reverse("admin:marketplace_monthlyledger_changelist"),
        {"action": "payout_csv", "_selected_action": [ledger.pk]},
    )
    [row] = csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))
    assert row["Month"] == "Nov 2026"
    assert (row["Fees"], row["Platform commission"], row["Creator payout"]) == (
        "₹12,34,567.50",
        "₹2,46,913.50",
        "₹9,87,654.00",
    )


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"1", b"null", b"{", b"", b"\xff"])
def test_malformed_kite_postbacks_get_400(client, body):
    response = client.post(
        reverse("execution:kite-postback"), body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.content == b"Postback refused."


def test_every_refused_postback_reads_the_same(client):
    intent = IntentFactory(intended_at=datetime.datetime(2026, 11, 19, 3, 50, tzinfo=datetime.UTC))
    OrderIntent.objects.filter(pk=intent.pk).update(broker_order_id="ORD1")
    intent.account.broker = "kite"
    intent.account.save()
    url = reverse("execution:kite-postback")
    unknown = client.post(url, {"order_id": "NOPE", "checksum": "x"}, "application/json")
    ours = client.post(url, {"order_id": "ORD1", "checksum": "x"}, "application/json")
    assert unknown.status_code == ours.status_code == 403
    assert unknown.content == ours.content == b"Postback refused."


HUGE = "99999999999999999999"


def test_oversized_minimum_multiplier_is_a_form_error():
    strategy = StrategyFactory()
    client = Client()
    client.force_login(strategy.owner)
    response = client.post(
        reverse("marketplace:listing-new"),
        {
            "strategy": strategy.pk,
            "title": "Big",
            "description": "x",
            "risk_level": "low",
            "capital_required": "100000",
            "min_multiplier": HUGE,
            "visibility": "copy_allowed",
            "plan_kind": "free",
            "monthly_fee": "0",
            "profit_share_percent": "0",
        },
    )
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to" in response.text


def test_oversized_deployment_multiplier_is_a_form_error():
    subscription = fee_subscription()
    client = Client()
    client.force_login(subscription.subscriber)
    from tests.brokers.factories import BrokerAccountFactory

    account = BrokerAccountFactory(owner=subscription.subscriber)
    response = client.post(
        reverse("marketplace:subscription", args=[subscription.pk]),
        {"broker_account": account.pk, "multiplier": HUGE},
    )
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to" in response.text


def test_browse_with_an_oversized_capital_filter_does_not_fail(client):
    ListingFactory()
    assert client.get(reverse("marketplace:browse"), {"max_capital": HUGE * 2}).status_code == 200


@pytest.mark.parametrize(
    "model",
    [
        "execution_orderintent",
        "execution_executionevent",
        "trader_strategyevent",
        "marketplace_listingevent",
    ],
)
def test_audit_tables_are_read_only_in_admin(model):
    client = staff_client_for(SuperuserFactory())
    page = client.get(reverse(f"admin:{model}_changelist"))
    assert page.status_code == 200
    assert reverse(f"admin:{model}_add") not in page.text
    assert client.get(reverse(f"admin:{model}_add")).status_code == 403


def test_an_order_intent_cannot_be_changed_or_deleted_in_admin():
    intent = IntentFactory(intended_at=datetime.datetime(2026, 11, 19, 3, 50, tzinfo=datetime.UTC))
    client = staff_client_for(SuperuserFactory())
    change = reverse("admin:execution_orderintent_change", args=[intent.pk])
    assert 'name="_save"' not in client.get(change).text
    client.post(reverse("admin:execution_orderintent_delete", args=[intent.pk]), {"post": "yes"})
    client.post(
        reverse("admin:execution_orderintent_changelist"),
        {"action": "delete_selected", "_selected_action": [intent.pk], "post": "yes"},
    )
    assert OrderIntent.objects.filter(pk=intent.pk).exists()


@pytest.mark.parametrize("field", ["priority", "broker_account", "fixed_lots"])
def test_oversized_allocation_numbers_are_form_errors_in_the_wizard(
    owner, owner_client, calendar_loaded_today, field
):
    from tests.brokers.factories import BrokerAccountFactory
    from tests.trader.test_strategy_http import allocation_post, url, walk_to

    account = BrokerAccountFactory(owner=owner)
    walk_to(owner_client, "allocation")
    row = {"broker_account": str(account.pk), field: HUGE}
    if field == "fixed_lots":
        row["sizing"] = "fixed"
    response = owner_client.post(url("allocation"), allocation_post([row]))
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to" in response.text
    review = owner_client.get(url("review"))
    assert review.status_code in (200, 302)
