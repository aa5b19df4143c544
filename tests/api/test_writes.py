"""/api/v1 writes of a trader's own things: strategies with legs and allocations (the wizard's
rules and words), versions, test on paper, exit a run, a broker account's funds and test."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from brokers.base import AuthError
from brokers.models import AccountEvent, AccountStatus, Broker
from brokers.services import paper_account_log_in
from execution.models import ExecutionEvent, OrderIntent, ScheduledRun
from execution.models.engine import Position, Purpose, RunState
from tests.api.conftest import token_client
from tests.brokers.factories import BrokerAccountFactory, PaperBookFactory
from tests.execution.engine_factories import RunFactory, strategy_with_accounts
from trader.models import RiskLimit, Strategy, StrategyEvent, StrategyStatus

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("calendar_loaded_today")]

STRATEGIES = "/api/v1/strategies/"


def _body(account_id: int, **changes) -> dict:
    body = {
        "name": "API strangle",
        "underlying": "NIFTY",
        "legs": [
            {"side": "SELL", "option_type": "CE", "lots": 1, "strike_offset": 4},
            {"side": "SELL", "option_type": "PE", "lots": 1, "strike_offset": -4},
        ],
        "entry_time": "09:20:00",
        "exit_time": "15:10:00",
        "trading_days": [0, 2, 4],
        "stop_loss_mtm": "4000.00",
        "allocations": [{"broker_account_id": account_id, "multiplier": "2"}],
    }
    return body | changes


def test_create_a_draft_with_legs_and_allocation_audited_with_the_token(owner):
    account = BrokerAccountFactory(owner=owner)
    client = token_client(owner, "read", "trade", name="Sheet bot")
    answer = client.post(STRATEGIES, _body(account.pk), format="json")
    assert answer.status_code == 201, answer.json()
    data = answer.json()
    assert data["status"] == "draft" and data["underlying"] == "NIFTY"
    version = data["versions"][0]
    assert version["number"] == 1 and version["trading_days"] == [0, 2, 4]
    assert [(leg["side"], leg["strike_offset"]) for leg in version["legs"]] == [
        ("SELL", 4),
        ("SELL", -4),
    ]
    assert data["allocations"][0]["broker_account_id"] == account.pk
    assert data["allocations"][0]["multiplier"] == "2.00"
    strategy = Strategy.objects.get(pk=data["id"], owner=owner)
    event = StrategyEvent.objects.get(strategy=strategy)
    assert event.action == "created" and event.detail["api_token"] == "Sheet bot"


def test_create_refusals_are_the_wizards_words_under_field_paths(owner, owner_api):
    RiskLimit.objects.create(
        user=owner,
        max_lots_per_order=5,
        max_lots_per_strategy=10,
        max_open_strategies=3,
        max_daily_loss=Decimal(1000),
    )
    foreign = BrokerAccountFactory()  # someone else's
    body = _body(
        foreign.pk,
        underlying="NOSUCH",
        exit_time="09:00:00",
        legs=[
            {"side": "SELL", "option_type": "CE", "lots": 1},
            {"side": "SELL", "option_type": "PE", "lots": 7},
        ],
    )
    answer = owner_api.post(STRATEGIES, body, format="json")
    assert answer.status_code == 400
    errors = answer.json()
    assert errors["underlying"] == ["Choose an underlying from the list."]
    assert errors["legs.1.lots"] == ["7 lots is above your limit of 5 lots per order."]
    assert "Exit must be after entry." in errors["exit_time"]
    assert errors["allocations.0.broker_account_id"] == ["Choose one of your own broker accounts."]
    assert not Strategy.objects.filter(owner=owner).exists()


def test_create_type_errors_are_field_errors_too(owner_api, owner):
    body = _body(1, legs=[{"side": "SIDEWAYS", "option_type": "CE", "lots": "x"}])
    body["trading_days"] = [9]
    answer = owner_api.post(STRATEGIES, body, format="json")
    assert answer.status_code == 400
    assert set(answer.json()) == {"legs.0.side", "legs.0.lots", "trading_days.0"}
    too_many = owner_api.post(STRATEGIES, _body(1, legs=[body["legs"][0]] * 51), format="json")
    assert too_many.status_code == 400 and list(too_many.json()) == ["legs"]
    assert not Strategy.objects.filter(owner=owner).exists()


def test_edit_saves_a_new_version_and_versions_lists_them(owner, owner_api, stranger_api):
    account = BrokerAccountFactory(owner=owner)
    created = owner_api.post(STRATEGIES, _body(account.pk), format="json").json()
    url = f"{STRATEGIES}{created['id']}/"
    edited = owner_api.put(url, _body(account.pk, name="Renamed", exit_time="15:00:00"), "json")
    assert edited.status_code == 200, edited.json()
    assert edited.json()["name"] == "Renamed" and edited.json()["current_version"] == 2
    versions = owner_api.get(f"{url}versions/").json()
    assert [(v["number"], v["exit_time"]) for v in versions] == [(2, "15:00:00"), (1, "15:10:00")]
    assert stranger_api.put(url, _body(account.pk), format="json").status_code == 404
    assert stranger_api.get(f"{url}versions/").status_code == 404
    assert owner_api.post(f"{url}archive/").status_code == 200
    archived = owner_api.put(url, _body(account.pk), format="json")
    assert archived.status_code == 409 and "archived" in archived.json()["detail"]


def test_writes_need_the_trade_scope(owner):
    account = BrokerAccountFactory(owner=owner)
    reader = token_client(owner, "read", name="reader")
    refused = reader.post(STRATEGIES, _body(account.pk), format="json")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "This token lacks the “trade” scope."}
    strategy, _, _ = strategy_with_accounts(owner=owner)
    assert reader.put(f"{STRATEGIES}{strategy.pk}/", _body(account.pk), "json").status_code == 403
    assert reader.post(f"{STRATEGIES}{strategy.pk}/paper-test/").status_code == 403
    assert not Strategy.objects.filter(name="API strangle").exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_paper_test_is_the_pages_service(owner, monkeypatch):
    sent = []
    monkeypatch.setattr("execution.dispatch._start_group", lambda payloads: sent.extend(payloads))
    client = token_client(owner, "read", "trade", name="Phone")
    strategy, _, _ = strategy_with_accounts(brokers=(), owner=owner)
    url = f"{STRATEGIES}{strategy.pk}/paper-test/"
    foreign = BrokerAccountFactory(broker=Broker.KITE)  # someone else's live account
    wrong = client.post(url, {"price_account_id": foreign.pk}, format="json")
    assert wrong.status_code == 400 and wrong.json() == {
        "price_account_id": ["Choose one of your own live accounts that is connected now."]
    }
    refused = client.post(url)
    assert refused.status_code == 409
    assert refused.json() == {"detail": "Connect the paper broker first (Brokers → Paper)."}
    book = PaperBookFactory(account__owner=owner)
    paper_account_log_in(account=book.account, actor=owner)
    answer = client.post(url)
    assert answer.status_code == 201, answer.json()
    run = ScheduledRun.objects.get(is_test=True)
    assert answer.json()["id"] == run.pk and answer.json()["is_test"] is True
    assert [p["account_id"] for p in sent] == [book.account.pk]
    assert OrderIntent.objects.filter(run=run).count() == 4
    event = ExecutionEvent.objects.get(kind="run.test_requested", run_id=run.pk)
    assert event.data["api_token"] == "Phone"
    # The kill switch refuses it, through the same service as the page.
    client.post("/api/v1/kill-switch/engage/", {"reason": "stop"}, format="json")
    engaged = client.post(url)
    assert engaged.status_code == 409 and "re-arm it" in engaged.json()["detail"]
    assert ScheduledRun.objects.filter(is_test=True).count() == 1


def test_paper_test_of_a_strangers_strategy_is_404(owner, stranger_api):
    strategy, _, _ = strategy_with_accounts(brokers=(), owner=owner)
    assert stranger_api.post(f"{STRATEGIES}{strategy.pk}/paper-test/").status_code == 404
    assert not ScheduledRun.objects.exists()


def _open_run(owner):
    run = RunFactory(
        strategy_version__strategy__owner=owner,
        owner=owner,
        state=RunState.DISPATCHED,
        fire_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=30),
    )
    account = BrokerAccountFactory(owner=owner, broker=Broker.PAPER, label="Paper one")
    Position.objects.create(
        run=run,
        account=account,
        owner=owner,
        exchange="NFO",
        tradingsymbol="NIFTY26D1724200CE",
        lot_size=75,
        net_quantity=-75,
        sell_quantity=75,
        sell_value=Decimal("7500"),
        last_price=Decimal("90"),
    )
    return run


def test_exit_a_run_through_the_closing_path_audited(owner, stranger_api, monkeypatch):
    sent = []
    monkeypatch.setattr(
        "execution.enqueue.account_sends_enqueue", lambda payloads: sent.extend(payloads)
    )
    run = _open_run(owner)
    client = token_client(owner, "read", "trade", name="Phone")
    assert stranger_api.post(f"/api/v1/runs/{run.pk}/exit/", {}, format="json").status_code == 404
    with TestCase.captureOnCommitCallbacks(execute=True):
        answer = client.post(f"/api/v1/runs/{run.pk}/exit/", {"reason": "target"}, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["closing_orders"] == 1 and answer.json()["run"]["id"] == run.pk
    closing = OrderIntent.objects.get(run=run, purpose=Purpose.MANUAL)
    assert closing.side == "BUY" and closing.quantity == 75
    assert [p["account_id"] for p in sent] == [closing.account_id]
    event = ExecutionEvent.objects.get(run_id=run.pk, kind="run.exit_manual")
    assert event.data["api_token"] == "Phone" and "Reason: target" in event.message
    again = client.post(f"/api/v1/runs/{run.pk}/exit/", {}, format="json")
    assert again.status_code == 409 and again.json()["detail"].startswith("Nothing to exit")
    assert OrderIntent.objects.filter(run=run, purpose=Purpose.MANUAL).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_funds_and_test_connection_of_a_paper_account(owner, stranger_api):
    book = PaperBookFactory(account__owner=owner, cash=Decimal("1000000"))
    paper_account_log_in(account=book.account, actor=owner)
    client = token_client(owner, "read", name="Monitor")
    funds = client.get(f"/api/v1/broker-accounts/{book.account.pk}/funds/").json()
    assert funds["total"] == "1000000.00" and funds["problem"] == ""
    tested = client.post(f"/api/v1/broker-accounts/{book.account.pk}/test/")
    assert tested.status_code == 200 and tested.json()["ok"] is True
    assert tested.json()["message"].startswith("Connection works: ₹10,00,000.00 available")
    assert AccountEvent.objects.filter(account=book.account, kind="tested").count() == 1
    assert stranger_api.get(f"/api/v1/broker-accounts/{book.account.pk}/funds/").status_code == 404
    assert stranger_api.post(f"/api/v1/broker-accounts/{book.account.pk}/test/").status_code == 404


def test_funds_of_an_account_not_logged_in_say_so(owner, owner_api):
    account = BrokerAccountFactory(owner=owner, status=AccountStatus.EXPIRED)
    funds = owner_api.get(f"/api/v1/broker-accounts/{account.pk}/funds/").json()
    assert funds == {
        "available": None,
        "used": None,
        "total": None,
        "problem": "Login expired: connect it again to read funds.",
    }


def test_test_connection_tells_a_brokers_refusal_in_words_never_a_500(owner, monkeypatch):
    account = BrokerAccountFactory(
        owner=owner, broker=Broker.KITE, label="Kite main", status=AccountStatus.CONNECTED
    )
    account.access_token = "stale"
    account.save()

    class Refusing:
        def funds(self):
            raise AuthError("Incorrect `api_key` or `access_token`.")

    monkeypatch.setattr("brokers.services.get_adapter", lambda account: Refusing())
    answer = token_client(owner, "read").post(f"/api/v1/broker-accounts/{account.pk}/test/")
    assert answer.status_code == 200
    body = answer.json()
    assert body["ok"] is False and "Incorrect `api_key` or `access_token`." in body["message"]
    assert body["account"]["status"] == "expired"


def test_an_unreachable_adapter_is_words_not_a_500(owner, monkeypatch):
    from brokers.registry import AdapterUnavailableError

    account = BrokerAccountFactory(owner=owner, broker=Broker.KITE)
    account.access_token = "t"
    account.save()

    def unavailable(account):
        raise AdapterUnavailableError("no adapter installed for kite")

    monkeypatch.setattr("brokers.services.get_adapter", unavailable)
    answer = token_client(owner, "read").post(f"/api/v1/broker-accounts/{account.pk}/test/")
    assert answer.status_code == 200 and answer.json()["ok"] is False
    assert "no adapter installed" in answer.json()["message"]


def test_strategy_status_still_changes_through_activate(owner, owner_api):
    """Created through the API, activated through the API: the page's service decides."""
    account = BrokerAccountFactory(owner=owner)
    created = owner_api.post(STRATEGIES, _body(account.pk), format="json").json()
    activated = owner_api.post(f"{STRATEGIES}{created['id']}/activate/")
    assert activated.status_code == 200 and activated.json()["status"] == "active"
    assert Strategy.objects.get(pk=created["id"]).status == StrategyStatus.ACTIVE


def test_session_client_may_write_too(owner):
    account = BrokerAccountFactory(owner=owner)
    client = APIClient()
    client.force_login(owner)
    assert client.post(STRATEGIES, _body(account.pk), format="json").status_code == 201


def test_versions_queries_do_not_grow_with_versions(owner):
    account = BrokerAccountFactory(owner=owner)
    client = APIClient()
    client.force_login(owner)
    created = client.post(STRATEGIES, _body(account.pk), format="json").json()
    url = f"{STRATEGIES}{created['id']}/versions/"
    with CaptureQueriesContext(connection) as one:
        assert len(client.get(url).json()) == 1
    for minute in range(3):
        body = _body(account.pk, exit_time=f"15:0{minute}:00")
        assert client.put(f"{STRATEGIES}{created['id']}/", body, format="json").status_code == 200
    with CaptureQueriesContext(connection) as four:
        assert len(client.get(url).json()) == 4
    assert len(four) == len(one)


def test_an_expired_token_writes_nothing():
    from tests.trader.factories import ProfileFactory

    start = datetime.datetime(2026, 6, 1, 10, 0, tzinfo=datetime.UTC)
    with time_machine.travel(start, tick=False):
        user = ProfileFactory().user
        account = BrokerAccountFactory(owner=user)
        client = token_client(user, "read", "trade", days=1)
    with time_machine.travel(start + datetime.timedelta(days=1, seconds=1), tick=False):
        answer = client.post(STRATEGIES, _body(account.pk), format="json")
        assert answer.status_code == 401
        assert answer.json() == {"detail": "Invalid, expired or revoked token."}
    assert not Strategy.objects.filter(owner=user).exists()
