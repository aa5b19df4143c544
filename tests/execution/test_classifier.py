"""One classifier for every order write, per broker: the answer as the wire gives it, read by
the broker's adapter (`order_answer`: the synchronous path and the lane both use it), classed
once.
retryable = not accepted (429, the broker's documented refusals before acceptance, refused
connection); ambiguous = may exist (timeout, dropped, 5xx on a write unless documented not
accepted); permanent = refused for good."""

from __future__ import annotations

import json

import pytest

from brokers.base import BrokerError, Credentials, WireAnswer
from brokers.registry import adapter_class
from execution.send import sender

BROKERS = ["kite", "upstox", "angelone", "fyers", "dhan"]

# (status, body, failure) -> class, the same for every broker.
COMMON = [
    ((429, b"", ""), "retryable"),
    ((500, b"", ""), "ambiguous"),
    ((503, b"", ""), "ambiguous"),
    ((504, b"", ""), "ambiguous"),
    ((0, b"", "connect"), "retryable"),
    ((0, b"", "timeout"), "ambiguous"),
    ((0, b"", "dropped"), "ambiguous"),
    ((200, b"<html>gateway</html>", ""), "ambiguous"),  # a 2xx we cannot read may be an ack
]
# What each broker documents (shared/reference/broker-apis.md).
SPECIFIC = {
    "kite": [
        ((502, b"", ""), "retryable"),  # §1.3 "502 (OMS down)": not accepted
        (
            (400, {"status": "error", "message": "bad qty", "error_type": "InputException"}, ""),
            "permanent",
        ),
    ],
    "upstox": [
        ((502, b"", ""), "ambiguous"),
        (
            (429, {"status": "error", "errors": [{"errorCode": "UDAPI10005", "message": "x"}]}, ""),
            "retryable",
        ),
        (
            (
                400,
                {"status": "error", "errors": [{"errorCode": "UDAPI100036", "message": "x"}]},
                "",
            ),
            "permanent",
        ),
    ],
    "angelone": [
        ((502, b"", ""), "ambiguous"),
        ((403, b"Access denied because of exceeding access rate", ""), "retryable"),  # §3.3
        (
            (
                200,
                {
                    "status": False,
                    "message": "Ordertag length",
                    "errorcode": "AB4008",
                    "data": None,
                },
                "",
            ),
            "permanent",
        ),
    ],
    "fyers": [
        ((502, b"", ""), "ambiguous"),
        ((429, {"s": "error", "code": -429, "message": "limit"}, ""), "retryable"),  # §4.3
        ((200, {"s": "ok", "code": 201, "message": "sent"}, ""), "ambiguous"),  # §4.2
        ((400, {"s": "error", "code": -50, "message": "invalid"}, ""), "permanent"),
    ],
    "dhan": [
        ((502, b"", ""), "ambiguous"),
        ((429, {"errorType": "Rate", "errorCode": "DH-904", "errorMessage": "x"}, ""), "retryable"),
        ((500, {"errorType": "x", "errorCode": "DH-908", "errorMessage": "x"}, ""), "ambiguous"),
        ((400, {"errorType": "x", "errorCode": "DH-905", "errorMessage": "x"}, ""), "permanent"),
    ],
}
TABLE = [(b, answer, expected) for b in BROKERS for answer, expected in COMMON + SPECIFIC[b]]


def _order(broker: str) -> sender.OutgoingOrder:
    return sender.OutgoingOrder(
        intent_id=1,
        run_id=1,
        tag="CLS1",
        phase=0,
        exchange="NFO",
        tradingsymbol="NIFTY26D2425000CE",
        instrument_token="NSE_FO|43919" if broker == "upstox" else "43919",
        side="BUY",
        quantity=75,
        product="NRML",
        order_type="LIMIT",
        price="100",
        algo_id="",
    )


def _adapter(broker: str):
    credentials = Credentials(
        api_key="key", api_secret="secret", access_token="token", client_id="C1"
    )
    return adapter_class(broker)(credentials, base_url="http://127.0.0.1:9")


@pytest.mark.parametrize(("broker", "answer", "expected"), TABLE)
def test_classifier_table(broker, answer, expected):
    status, body, failure = answer
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = {"Content-Type": "application/json"} if isinstance(body, dict) else {}
    wire = WireAnswer.of(status, headers, raw) if not failure else WireAnswer(failure=failure)
    adapter = _adapter(broker)
    adapter.order_request(_order(broker).request())  # the request it answers is buildable
    try:
        adapter.order_answer(wire)
    except BrokerError as exc:
        assert sender.error_class(exc) == expected, exc.message
    else:
        pytest.fail(f"{broker} {answer} was read as an acknowledgement")


def test_the_retry_policy_is_bounded_and_respects_retry_after():
    from brokers.base import AmbiguousError, PermanentError, RateLimitedError

    def apply(error, attempts):
        outcome = sender.Outcome(intent_id=1, run_id=1, account_id=1, tag="T", state="intent")
        outcome.attempts = attempts
        return sender.attempt_apply(outcome, error, answered=0.0), outcome

    assert apply(RateLimitedError("x", retry_after=0.2), 1)[0] == "retry"
    step, outcome = apply(RateLimitedError("x", retry_after=0.2), sender.MAX_ATTEMPTS)
    assert step == "done" and outcome.state == "rejected"
    # Never sooner than the broker asks: a long retry-after is not waited for.
    step, outcome = apply(RateLimitedError("x", retry_after=sender.MAX_RETRY_WAIT + 1), 1)
    assert step == "done" and outcome.state == "rejected"
    assert apply(AmbiguousError("x"), 1)[0] == "lookup"
    assert apply(BrokerError("unclassified"), 1)[0] == "lookup"
    step, outcome = apply(PermanentError("x"), 1)
    assert step == "done" and outcome.state == "rejected"
