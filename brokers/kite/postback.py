"""Kite Connect order postbacks: what Kite posts to the app's postback URL, and how to trust it.

Kite posts the order's JSON (the fields of an order-book row) whenever the order changes, and
signs it with `checksum` = hex SHA-256 of order_id + order_timestamp + the app's api_secret
(shared/reference/broker-apis.md, Kite postbacks). A postback that is not a JSON object, names
no order, or whose checksum does not verify for the account that placed the order is refused
before anything reads it. Applying a verified one to our orders is the engine's job
(`execution.orders.lifecycle.kite_postback_apply`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from brokers.base import BrokerOrder
from brokers.kite.parsing import to_broker_order


class PostbackRefusedError(ValueError):
    """A postback that is not for one of our orders or whose checksum does not verify."""


class PostbackMalformedError(ValueError):
    """A postback body that is not a JSON object."""


def postback_read(body: bytes) -> dict[str, Any]:
    """The postback's JSON object; raises PostbackMalformedError for anything else."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise PostbackMalformedError("The postback is not JSON.") from exc
    if not isinstance(payload, dict):
        raise PostbackMalformedError("The postback is not a JSON object.")
    return payload


def postback_order_id(payload: dict[str, Any]) -> str:
    """The broker order id the postback is about ("" when it names none)."""
    return str(payload.get("order_id") or "")


def postback_checksum_ok(payload: dict[str, Any], *, api_secret: str) -> bool:
    """Whether the postback was signed with `api_secret` (constant-time comparison)."""
    expected = hashlib.sha256(
        (
            postback_order_id(payload) + str(payload.get("order_timestamp") or "") + api_secret
        ).encode()
    ).hexdigest()
    return hmac.compare_digest(expected, str(payload.get("checksum") or ""))


def postback_order(payload: dict[str, Any]) -> BrokerOrder:
    """The order as the postback describes it (raises KeyError/ValueError on fields that do not
    parse, like an order-book row would)."""
    return to_broker_order(payload)
