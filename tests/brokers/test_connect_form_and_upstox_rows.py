"""The connect form's own refusals (a secondary IP without a primary; a broker that needs the
app's key and secret) and Upstox rows the platform must not misread (an unknown status, an
open order with fills, a product outside F&O)."""

from __future__ import annotations

import pytest

from brokers.forms import ConnectForm
from brokers.upstox import parsing as upstox
from tests.trader.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def _form(**data):
    values = {"label": "Main", "orders_per_second": "10", **data}
    return ConnectForm(values, owner=ProfileFactory().user)


def test_a_secondary_ip_needs_a_primary_first():
    form = _form(broker="paper", static_ip_secondary="203.0.113.7")
    assert not form.is_valid()
    assert "Enter the primary static IP first." in form.errors["static_ip_secondary"]


def test_a_broker_that_needs_the_apps_credentials_says_which_is_missing():
    kite = _form(broker="kite", api_key="abc")
    assert not kite.is_valid()
    assert "api_secret" in kite.errors and "api_key" not in kite.errors
    paper = _form(broker="paper")
    paper.is_valid()
    assert not {"api_key", "api_secret"} & set(paper.errors)  # the paper broker needs none


def test_upstox_rows_are_read_as_what_they_are(caplog):
    assert upstox.order_status({"status": "after market order req received"}).value == "pending"
    assert upstox.order_status({"status": "something new"}).value == "pending"
    assert "Unknown Upstox order status" in caplog.text
    assert (
        upstox.order_status({"status": "open", "filled_quantity": "25"}).value == "partially_filled"
    )
    assert upstox.to_position({"product": "MTF", "quantity": 10}) is None
