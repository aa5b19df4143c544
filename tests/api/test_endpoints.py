"""/api/v1: the pages' data and actions, the same ownership and black-box rules, field errors,
and a fixed number of queries whatever the number of rows."""

from __future__ import annotations

import datetime
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from execution.models import ExecutionEvent, KillSwitch
from marketplace.models import Visibility
from tests.api.conftest import token_client
from tests.brokers.factories import BrokerAccountFactory
from tests.execution.engine_factories import IntentFactory, RunFactory, strategy_with_accounts
from tests.marketplace.factories import ListingFactory
from tests.marketplace.test_black_box import SYMBOL, _subscribed_run
from trader.models import StrategyEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("calendar_loaded_today")]


def _session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _queries(client: APIClient, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_strategies_list_and_detail_to_their_owner_only(owner, owner_api, stranger_api):
    strategy, version, accounts = strategy_with_accounts(owner=owner)
    listed = owner_api.get("/api/v1/strategies/").json()
    assert [row["id"] for row in listed] == [strategy.pk]
    assert listed[0]["allocations"][0]["broker_account_id"] == accounts[0].pk
    detail = owner_api.get(f"/api/v1/strategies/{strategy.pk}/").json()
    assert detail["versions"][0]["number"] == version.number
    assert [leg["position"] for leg in detail["versions"][0]["legs"]] == [1, 2, 3, 4]
    assert stranger_api.get("/api/v1/strategies/").json() == []
    assert stranger_api.get(f"/api/v1/strategies/{strategy.pk}/").status_code == 404
    assert stranger_api.post(f"/api/v1/strategies/{strategy.pk}/pause/").status_code == 404


def test_strategy_actions_are_audited_with_the_tokens_name(owner):
    strategy, _, _ = strategy_with_accounts(owner=owner)
    client = token_client(owner, "read", "trade", name="Sheet bot")
    paused = client.post(f"/api/v1/strategies/{strategy.pk}/pause/")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    again = client.post(f"/api/v1/strategies/{strategy.pk}/pause/")
    assert again.status_code == 409
    assert again.json() == {"detail": "Cannot pause a strategy that is paused."}
    assert client.post(f"/api/v1/strategies/{strategy.pk}/activate/").json()["status"] == "active"
    assert client.post(f"/api/v1/strategies/{strategy.pk}/archive/").json()["status"] == "archived"
    events = StrategyEvent.objects.filter(strategy=strategy).order_by("id")
    assert [(e.action, e.detail) for e in events] == [
        (action, {"via": "api", "api_token": "Sheet bot"})
        for action in ("paused", "activated", "archived")
    ]
    # The same service from the page writes no token.
    strategy2, _, _ = strategy_with_accounts(owner=owner)
    _session(owner).post(f"/api/v1/strategies/{strategy2.pk}/pause/")
    assert StrategyEvent.objects.get(strategy=strategy2).detail == {}


def test_strategy_list_query_count_does_not_grow_with_strategies(owner):
    client = _session(owner)
    strategy_with_accounts(owner=owner)
    one = _queries(client, "/api/v1/strategies/")
    for _ in range(3):
        strategy_with_accounts(owner=owner, brokers=("paper", "kite"))
    assert _queries(client, "/api/v1/strategies/") == one


def test_broker_accounts_of_their_owner_only(owner, owner_api, stranger_api):
    account = BrokerAccountFactory(owner=owner)
    assert [a["id"] for a in owner_api.get("/api/v1/broker-accounts/").json()] == [account.pk]
    status = owner_api.get(f"/api/v1/broker-accounts/{account.pk}/").json()["status"]
    assert status == account.status
    assert "api_key" not in json.dumps(owner_api.get("/api/v1/broker-accounts/").json())
    assert stranger_api.get(f"/api/v1/broker-accounts/{account.pk}/").status_code == 404


def test_runs_owner_stranger(owner, owner_api, stranger_api):
    _, version, _ = strategy_with_accounts(owner=owner)
    run = RunFactory(strategy_version=version)
    IntentFactory(run=run, intended_at=run.fire_at, tradingsymbol=SYMBOL)
    runs = owner_api.get("/api/v1/runs/").json()
    assert [r["id"] for r in runs] == [run.pk] and runs[0]["hidden"] is False
    detail = owner_api.get(f"/api/v1/runs/{run.pk}/").json()
    assert detail["orders"][0]["contract"] == SYMBOL and detail["orders"][0]["quantity"] == 75
    assert stranger_api.get("/api/v1/runs/").json() == []
    assert stranger_api.get(f"/api/v1/runs/{run.pk}/").status_code == 404


def test_run_list_query_count_does_not_grow_with_runs(owner):
    client = _session(owner)
    _, version, _ = strategy_with_accounts(owner=owner)
    RunFactory(strategy_version=version)
    one = _queries(client, "/api/v1/runs/")
    _, other, _ = strategy_with_accounts(owner=owner)
    for day in (16, 17, 18):
        RunFactory(strategy_version=other, session_date=datetime.date(2026, 11, day))
    assert _queries(client, "/api/v1/runs/") == one


def test_black_box_subscriber_sees_the_pages_masked_rows():
    listing, subscriber, run = _subscribed_run(Visibility.SUBSCRIBE_ONLY)
    client = token_client(subscriber, "read")
    answers = {
        "runs": client.get("/api/v1/runs/").json(),
        "run": client.get(f"/api/v1/runs/{run.pk}/").json(),
        "positions": client.get("/api/v1/positions/").json(),
    }
    text = json.dumps(answers)
    assert SYMBOL not in text and "24000" not in text and "09:20" not in text
    assert listing.strategy.name not in text
    assert answers["runs"][0]["title"] == "Theta harvester (logic hidden)"
    assert answers["runs"][0]["fire_at"] is None
    order = answers["run"]["orders"][0]
    assert order["contract"] == "leg 1 SELL" and order["quantity"] is None
    assert order["filled"] == "100 %" and order["average_price"] is None
    assert answers["positions"]["positions"][0]["net_quantity"] is None
    assert answers["positions"]["consolidated"][0]["contract"] == "Theta harvester (logic hidden)"
    # The creator sees nothing of the subscriber's run.
    creator = token_client(listing.creator, "read", name="creator")
    assert creator.get(f"/api/v1/runs/{run.pk}/").status_code == 404


def test_copy_allowed_subscriber_sees_the_contract():
    _, subscriber, run = _subscribed_run(Visibility.COPY_ALLOWED)
    answer = token_client(subscriber, "read").get(f"/api/v1/runs/{run.pk}/").json()
    assert answer["orders"][0]["contract"] == SYMBOL


def test_kill_switch_engage_and_rearm_through_the_api(owner):
    client = token_client(owner, "read", "trade", name="Phone")
    assert client.get("/api/v1/kill-switch/").json() == {"user": False, "platform": False}
    engaged = client.post("/api/v1/kill-switch/engage/", {"reason": "gap up"}, format="json")
    assert engaged.status_code == 200 and engaged.json() == {"user": True, "platform": False}
    switch = KillSwitch.objects.get(user=owner)
    assert switch.engaged and switch.reason == "gap up"
    assert client.get("/api/v1/kill-switch/").json()["user"] is True
    rearmed = client.post("/api/v1/kill-switch/rearm/")
    assert rearmed.json() == {"user": False, "platform": False}
    kinds = ExecutionEvent.objects.filter(user_id=owner.pk).order_by("id")
    assert [(e.kind, e.data["api_token"], e.data["via"]) for e in kinds] == [
        ("killswitch.engaged", "Phone", "api"),
        ("killswitch.rearmed", "Phone", "api"),
    ]


def test_kill_switch_reason_too_long_is_a_field_error(owner_api, owner):
    answer = owner_api.post("/api/v1/kill-switch/engage/", {"reason": "x" * 201}, format="json")
    assert answer.status_code == 400 and list(answer.json()) == ["reason"]
    assert not KillSwitch.objects.filter(user=owner, engaged=True).exists()


def test_listings_browse_filters_and_field_errors(owner):
    ListingFactory(title="Theta wheel")
    ListingFactory(title="Gamma scalper")
    client = token_client(owner, "marketplace")
    titles = [row["title"] for row in client.get("/api/v1/marketplace/listings/").json()]
    assert sorted(titles) == ["Gamma scalper", "Theta wheel"]
    found = client.get("/api/v1/marketplace/listings/", {"q": "theta"}).json()
    assert [row["title"] for row in found] == ["Theta wheel"]
    bad = client.get("/api/v1/marketplace/listings/", {"sort": "loudest", "max_capital": "x"})
    assert bad.status_code == 400 and set(bad.json()) == {"sort", "max_capital"}


def test_listings_query_count_does_not_grow_with_listings(owner):
    client = _session(owner)
    ListingFactory()
    one = _queries(client, "/api/v1/marketplace/listings/")
    for _ in range(3):
        ListingFactory()
    assert _queries(client, "/api/v1/marketplace/listings/") == one


def test_profile_never_sends_pan_or_mobile(owner, owner_api):
    answer = owner_api.get("/api/v1/profile/").json()
    assert answer["email"] == owner.email
    assert "pan" not in answer and "mobile" not in answer


def test_strategy_list_bad_flag_is_a_field_error(owner_api):
    answer = owner_api.get("/api/v1/strategies/", {"include_archived": "perhaps"})
    assert answer.status_code == 400 and list(answer.json()) == ["include_archived"]


def test_kill_switch_body_must_be_a_json_object(owner_api, owner):
    form = owner_api.post("/api/v1/kill-switch/engage/", {"reason": "x"})  # multipart
    assert form.status_code == 415
    not_object = owner_api.post(
        "/api/v1/kill-switch/engage/", "false", content_type="application/json"
    )
    assert not_object.status_code == 400
    assert not KillSwitch.objects.filter(user=owner, engaged=True).exists()
