"""Kite postbacks are read and verified by the Kite package (brokers.kite.postback)."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest

from brokers.base import OrderStatus
from brokers.kite.postback import (
    PostbackMalformedError,
    postback_checksum_ok,
    postback_order,
    postback_order_id,
    postback_read,
)

SECRET = "app-secret-for-tests"


def _payload(**changes):
    payload = {
        "order_id": "260101000000001",
        "order_timestamp": "2026-12-04 09:20:00",
        "exchange_timestamp": "2026-12-04 09:20:00",
        "status": "COMPLETE",
        "tradingsymbol": "NIFTY26D0826000CE",
        "exchange": "NFO",
        "transaction_type": "BUY",
        "quantity": 65,
        "filled_quantity": 65,
        "average_price": 101.5,
        "tag": "EABCDEFGHIJKLMNO",
    }
    payload.update(changes)
    text = payload["order_id"] + payload["order_timestamp"] + SECRET
    payload.setdefault("checksum", hashlib.sha256(text.encode()).hexdigest())
    return payload


def test_a_postback_signed_with_the_apps_secret_verifies():
    payload = _payload()
    assert postback_checksum_ok(payload, api_secret=SECRET)
    assert postback_order_id(payload) == "260101000000001"


@pytest.mark.parametrize(
    "payload",
    [
        _payload(checksum="0" * 64),
        {**_payload(), "order_timestamp": "2026-12-04 09:20:01"},  # signed for another time
        {**_payload(), "order_id": "260101000000002"},  # signed for another order
        {k: v for k, v in _payload().items() if k != "checksum"},
    ],
)
def test_a_postback_with_a_wrong_or_missing_checksum_does_not_verify(payload):
    assert not postback_checksum_ok(payload, api_secret=SECRET)


def test_another_apps_secret_does_not_verify():
    assert not postback_checksum_ok(_payload(), api_secret="another-secret")


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"', b""])
def test_a_body_that_is_not_a_json_object_is_refused(body):
    with pytest.raises(PostbackMalformedError):
        postback_read(body)


def test_a_postback_reads_as_the_order_it_describes():
    order = postback_order(postback_read(json.dumps(_payload()).encode()))
    assert order.broker_order_id == "260101000000001"
    assert order.tag == "EABCDEFGHIJKLMNO"
    assert order.filled_quantity == 65
    assert order.average_price == Decimal("101.5")
    assert order.status == OrderStatus.FILLED
