"""Signal webhooks through HTTP, as TradingView or a program posts them: authentication,
idempotency, every refusal, and the orders the same hot path writes and hands to the sends."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json

import pytest
import time_machine
from django.urls import reverse

from brokers.models import Broker
from execution.markettime import IST
from execution.models import OrderIntent, Position, ScheduledRun
from execution.protection.killswitch import kill_switch_engage
from tests.execution.engine_factories import strategy_with_accounts
from trader.signals import services
from trader.signals.models import Signal, SignalWebhook

pytestmark = pytest.mark.django_db

# A Thursday session of a loaded year, mid-morning.
SESSION = datetime.datetime(2026, 11, 19, 10, 0, tzinfo=IST)


@pytest.fixture
def at_session():
    with time_machine.travel(SESSION, tick=False) as traveller:
        yield traveller


@pytest.fixture
def sends(monkeypatch):
    sent: list[dict] = []
    monkeypatch.setattr("execution.dispatch._start_group", lambda payloads: sent.extend(payloads))
    monkeypatch.setattr(
        "execution.enqueue.account_sends_enqueue", lambda payloads: sent.extend(payloads)
    )
    return sent


@pytest.fixture
def signal_strategy(owner, at_session):
    strategy, _version, _accounts = strategy_with_accounts(brokers=(Broker.PAPER,), owner=owner)
    issued = services.webhook_enable(user=owner, strategy=strategy)
    return strategy, issued


def post(client, issued, body, *, signature: str | None = None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"HTTP_X_SIGNATURE": signature} if signature is not None else {}
    return client.post(
        reverse("signals:webhook", kwargs={"public_id": issued.webhook.public_id}),
        data=raw,
        content_type="application/json",
        **headers,
    )


def signal(issued, signal_id="sig-1", action="entry", at=None, **extra):
    return {
        "secret": issued.secret,
        "signal_id": signal_id,
        "action": action,
        "timestamp": (at or SESSION).isoformat(),
        **extra,
    }


def test_entry_signal_writes_the_orders_and_hands_them_to_the_account_sends(
    client, owner_client, signal_strategy, sends, django_capture_on_commit_callbacks
):
    strategy, issued = signal_strategy
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, issued, signal(issued))
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "accepted" and response.json()["orders"] == 4
    run = ScheduledRun.objects.get(source="signal")
    assert run.fire_at == SESSION and run.boundary == "entry" and not run.is_test
    assert OrderIntent.objects.filter(run=run).count() == 4
    assert [p["account_id"] for p in sends] == [strategy.allocations.get().broker_account_id]
    stored = Signal.objects.get()
    assert stored.outcome == "accepted" and stored.run_ids == [run.pk] and not stored.signed
    page = owner_client.get(reverse("strategies:detail", args=[strategy.pk]))
    assert "sig-1" in page.text and "Accepted: orders written" in page.text
    assert issued.secret not in page.text


def test_the_same_signal_id_again_answers_the_first_outcome_and_trades_nothing(
    client, signal_strategy, sends
):
    _, issued = signal_strategy
    assert post(client, issued, signal(issued)).status_code == 202
    again = post(client, issued, signal(issued))
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate" and again.json()["first_outcome"] == "accepted"
    assert ScheduledRun.objects.filter(source="signal").count() == 1
    assert Signal.objects.count() == 1


def test_wrong_or_missing_secret_is_401_counted_and_not_recorded(client, signal_strategy, sends):
    _, issued = signal_strategy
    wrong = signal(issued, secret="whs_not-it")
    assert post(client, issued, wrong).status_code == 401
    missing = signal(issued)
    del missing["secret"]
    assert post(client, issued, missing).status_code == 401
    assert not Signal.objects.exists() and not ScheduledRun.objects.exists()
    assert SignalWebhook.objects.get().auth_failures == 2


def test_an_hmac_signature_authenticates_alone_and_a_wrong_one_refuses_even_with_the_secret(
    client, signal_strategy, sends
):
    _, issued = signal_strategy
    body = signal(issued, signal_id="signed-1")
    del body["secret"]
    raw = json.dumps(body).encode()
    good = hmac.new(issued.signing_key.encode(), raw, hashlib.sha256).hexdigest()
    answer = post(client, issued, raw, signature=f"sha256={good}")
    assert answer.status_code == 202 and Signal.objects.get().signed
    with_secret = json.dumps(signal(issued, signal_id="signed-2")).encode()
    assert post(client, issued, with_secret, signature="sha256=" + "0" * 64).status_code == 401


def test_require_signature_refuses_the_secret_alone(client, owner, signal_strategy, sends):
    strategy, issued = signal_strategy
    services.webhook_signature_require(user=owner, strategy=strategy, required=True)
    assert post(client, issued, signal(issued)).status_code == 401
    raw = json.dumps(signal(issued)).encode()
    mac = hmac.new(issued.signing_key.encode(), raw, hashlib.sha256).hexdigest()
    assert post(client, issued, raw, signature=mac).status_code == 202


@pytest.mark.parametrize("offset", [-61, 61])
def test_a_stale_or_future_timestamp_is_refused(client, signal_strategy, sends, offset):
    _, issued = signal_strategy
    at = SESSION + datetime.timedelta(seconds=offset)
    answer = post(client, issued, signal(issued, at=at))
    assert answer.status_code == 409 and "Stale" in answer.json()["error"]
    assert Signal.objects.get().outcome == "refused" and not ScheduledRun.objects.exists()


def test_epoch_timestamps_are_taken_too(client, signal_strategy, sends):
    _, issued = signal_strategy
    body = signal(issued)
    body["timestamp"] = int(SESSION.timestamp() * 1000)  # milliseconds
    assert post(client, issued, body).status_code == 202


def test_outside_the_session_is_refused_with_the_calendar_reason(client, signal_strategy, sends):
    _, issued = signal_strategy
    evening = SESSION.replace(hour=20)
    with time_machine.travel(evening, tick=False):
        answer = post(client, issued, signal(issued, at=evening))
    assert answer.status_code == 409
    assert "Market closed: outside the session window" in answer.json()["error"]
    saturday = datetime.datetime(2026, 11, 21, 10, 0, tzinfo=IST)
    with time_machine.travel(saturday, tick=False):
        answer = post(client, issued, signal(issued, signal_id="sat", at=saturday))
    assert answer.status_code == 409 and "Saturday" in answer.json()["error"]
    assert not ScheduledRun.objects.exists()


def test_kill_switch_refuses_entries_but_lets_an_exit_close(
    client, owner, signal_strategy, sends, django_capture_on_commit_callbacks
):
    _strategy, issued = signal_strategy
    assert post(client, issued, signal(issued, signal_id="in")).status_code == 202
    run = ScheduledRun.objects.get(source="signal")
    intent = OrderIntent.objects.filter(run=run).first()
    Position.objects.create(
        run=run,
        owner=owner,
        account_id=intent.account_id,
        tradingsymbol=intent.tradingsymbol,
        exchange=intent.exchange,
        product=intent.product,
        lot_size=intent.lot_size,
        net_quantity=-intent.quantity,
        sell_quantity=intent.quantity,
    )
    kill_switch_engage(actor=owner, user=owner, send=False)
    Position.objects.filter(run=run).update(net_quantity=-intent.quantity)  # a flatten failed
    refused = post(client, issued, signal(issued, signal_id="in-2"))
    assert refused.status_code == 409 and "Kill switch" in refused.json()["error"]
    OrderIntent.objects.filter(purpose="flatten").update(state="rejected")
    exit_ = post(client, issued, signal(issued, signal_id="out", action="exit"))
    assert exit_.status_code == 202, exit_.json()
    closing = OrderIntent.objects.filter(run=run, purpose="manual")
    assert closing.count() == 1 and closing.get().side == "BUY"
    again = post(client, issued, signal(issued, signal_id="out-2", action="exit"))
    assert again.status_code == 409 and "already working" in again.json()["reason"]


def test_over_the_rate_limit_is_429(client, settings, signal_strategy, sends):
    settings.SIGNAL_RATE_PER_MINUTE = 2
    _, issued = signal_strategy
    codes = [
        post(client, issued, signal(issued, signal_id=f"r{i}", action="exit")).status_code
        for i in range(3)
    ]
    assert codes[:2] == [409, 409]  # nothing to exit, but taken
    assert codes[2] == 429


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b'"text"', b"{}", b'{"secret": 5}', b"\xff\xfe"],
)
def test_malformed_bodies_are_4xx_never_500(client, signal_strategy, raw):
    _, issued = signal_strategy
    assert post(client, issued, raw).status_code in (400, 401)


def test_bad_fields_are_named(client, signal_strategy):
    _, issued = signal_strategy
    body = signal(issued, signal_id="", action="buy", timestamp="yesterday")
    answer = post(client, issued, body)
    assert answer.status_code == 400
    assert set(answer.json()["fields"]) == {"signal_id", "action", "timestamp"}


def test_unknown_or_disabled_webhook_is_404(client, owner, signal_strategy):
    strategy, issued = signal_strategy
    url = reverse("signals:webhook", kwargs={"public_id": "nope"})
    assert client.post(url, data=b"{}", content_type="application/json").status_code == 404
    services.webhook_disable(user=owner, strategy=strategy)
    assert post(client, issued, signal(issued)).status_code == 404


def test_a_signal_strategy_is_not_planned_at_its_times(owner, signal_strategy):
    from execution.planning.plan import day_plan

    strategy, _ = signal_strategy
    day_plan(day=SESSION.date())
    assert not ScheduledRun.objects.filter(strategy_version__strategy=strategy).exists()
    services.webhook_disable(user=owner, strategy=strategy)
    day_plan(day=SESSION.date())
    assert ScheduledRun.objects.filter(strategy_version__strategy=strategy).count() == 2


def test_the_secret_is_shown_once_stored_hashed_and_rotation_ends_the_old_one(
    client, owner_client, stranger_client, owner, at_session, sends
):
    strategy, _, _ = strategy_with_accounts(brokers=(Broker.PAPER,), owner=owner)
    assert stranger_client.post(reverse("signals:enable", args=[strategy.pk])).status_code == 404
    page = owner_client.post(reverse("signals:enable", args=[strategy.pk]))
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    secret = page.context["issued"].secret
    webhook = SignalWebhook.objects.get()
    assert (
        secret in page.text and webhook.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    )
    assert secret not in json.dumps(list(SignalWebhook.objects.values()), default=str)
    old = page.context["issued"]
    owner_client.post(reverse("signals:enable", args=[strategy.pk]))
    assert post(client, old, signal(old)).status_code == 401


def test_the_signal_hot_path_runs_a_fixed_number_of_queries(
    client, signal_strategy, sends, django_assert_max_num_queries
):
    _, issued = signal_strategy
    post(client, issued, signal(issued, signal_id="warm"))  # first-use caches (content types)
    # The whole request, the dispatcher's three loads and its reference data included (48
    # today; the bound leaves room for the dispatcher's own changes, not for a loop).
    with django_assert_max_num_queries(60) as captured:
        assert post(client, issued, signal(issued, signal_id="counted")).status_code == 202
    mine = [q["sql"] for q in captured.captured_queries if '"signals_' in q["sql"]]
    assert len(mine) == 4  # webhook, duplicate lookup, insert, outcome
