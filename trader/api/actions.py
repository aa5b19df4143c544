"""/api/v1/ writes of a trader's own things: strategies (create and edit with legs and
allocations, versions), test on paper, exit a run, and a broker account's funds and
connection test.

Each view parses its body, reaches the object through the pages' selector (another user's is a
404) and calls the service the page calls; refusals are the service's words: field errors as
400 ({path: [messages]}), a state that does not allow the action as 409.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from brokers import selectors as broker_selectors
from brokers import services as broker_services
from execution import selectors as execution_selectors
from execution import services as execution_services
from execution.forms import PaperPriceSourceForm
from execution.orders.runs import ExitError, run_exit
from marketplace import disclosure
from trader.api import serializers as s
from trader.api.inputs import (
    PaperTestInput,
    RunExitInput,
    StrategyInput,
    flat_errors,
    service_errors,
)
from trader.api.models import Scope
from trader.api.views import (
    DENIED,
    FIELD_ERRORS,
    NOT_FOUND,
    RUN_EXAMPLE,
    STRATEGY_DETAIL_EXAMPLE,
    ApiView,
    StrategyDetailView,
    StrategyListView,
    _example,
    _me,
    _refusals,
    _strategy,
)
from trader.strategies import services as strategy_services

CONFLICT = {409: s.ErrorSerializer}


def _conflict(message: str) -> Response:
    return Response({"detail": message}, status=status.HTTP_409_CONFLICT)


def _field_errors(errors: dict[str, list[str]]) -> Response:
    return Response(errors, status=status.HTTP_400_BAD_REQUEST)


def _refused(name: str, detail: str) -> OpenApiExample:
    return OpenApiExample(name, value={"detail": detail}, response_only=True, status_codes=["409"])


LEG_INPUT_EXAMPLE = {
    "side": "SELL",
    "option_type": "CE",
    "lots": 1,
    "expiry_choice": "current_week",
    "strike_mode": "atm",
    "strike_offset": 2,
    "stop_loss": "30.00",
    "stop_loss_unit": "percent",
}
STRATEGY_INPUT_EXAMPLE = {
    "name": "NIFTY short strangle",
    "underlying": "NIFTY",
    "kind": "intraday",
    "legs": [
        {**LEG_INPUT_EXAMPLE, "side": "BUY", "strike_offset": 6, "stop_loss": None},
        LEG_INPUT_EXAMPLE,
        {**LEG_INPUT_EXAMPLE, "option_type": "PE", "strike_offset": -2},
        {**LEG_INPUT_EXAMPLE, "side": "BUY", "option_type": "PE", "strike_offset": -6},
    ],
    "entry_time": "09:20:00",
    "exit_time": "15:10:00",
    "trading_days": [0, 1, 2, 3, 4],
    "leg_failure_policy": "unwind",
    "hedge_confirmation": "ack",
    "stop_loss_mtm": "5000.00",
    "allocations": [{"broker_account_id": 3, "sizing": "multiplier", "multiplier": "1.00"}],
}
STRATEGY_ERRORS_EXAMPLE = {
    "legs.1.lots": ["12 lots is above your limit of 10 lots per order."],
    "exit_time": ["Exit must be after entry."],
    "allocations.0.broker_account_id": ["Choose one of your own broker accounts."],
}


def _strategy_examples(done: str) -> list[OpenApiExample]:
    return [
        OpenApiExample("a short strangle", value=STRATEGY_INPUT_EXAMPLE, request_only=True),
        *_example(done, STRATEGY_DETAIL_EXAMPLE),
        OpenApiExample(
            "broken rules",
            value=STRATEGY_ERRORS_EXAMPLE,
            response_only=True,
            status_codes=["400"],
        ),
    ]


def _parsed(request: Request) -> StrategyInput | Response:
    body = StrategyInput(data=request.data)
    if not body.is_valid():
        return _field_errors(flat_errors(body.errors))
    return body


class StrategiesView(StrategyListView):
    """/strategies/: the list (GET, views.StrategyListView) and create (POST)."""

    scopes = {"POST": Scope.TRADE}

    @extend_schema(
        tags=["strategies"],
        summary="Create a draft strategy",
        description=(
            "The wizard in one request: basics, legs, times and days, risk and allocations. "
            "Saved as a draft with version 1 when every rule holds (the wizard's rules and "
            "words: strike grid, lots within your risk limits, entry and exit inside the "
            "session, your own accounts); otherwise 400 with each error under its field's path "
            "(`legs.1.lots`, `allocations.0.multiplier`, `legs` for the legs as a whole) and "
            "nothing saved."
        ),
        request=StrategyInput,
        responses={201: s.StrategyDetailSerializer, **FIELD_ERRORS, **DENIED},
        examples=[
            OpenApiExample("a short strangle", value=STRATEGY_INPUT_EXAMPLE, request_only=True),
            OpenApiExample(
                "created", value=STRATEGY_DETAIL_EXAMPLE, response_only=True, status_codes=["201"]
            ),
            *_refusals(),
            OpenApiExample(
                "broken rules",
                value=STRATEGY_ERRORS_EXAMPLE,
                response_only=True,
                status_codes=["400"],
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        body = _parsed(request)
        if isinstance(body, Response):
            return body
        try:
            strategy = strategy_services.strategy_create(user=_me(request), spec=body.spec())
        except DjangoValidationError as exc:
            return _field_errors(service_errors(exc))
        return Response(
            s.StrategyDetailSerializer(_strategy(request, strategy.pk)).data,
            status=status.HTTP_201_CREATED,
        )


class StrategyView(StrategyDetailView):
    """/strategies/{id}/: read (GET, views.StrategyDetailView) and edit (PUT)."""

    scopes = {"PUT": Scope.TRADE}

    @extend_schema(
        tags=["strategies"],
        summary="Edit a strategy (a new version)",
        description=(
            "The whole strategy as on create; saved as a new version (versions already written "
            "never change). A draft's or paused strategy's new version applies today, an "
            "active one's from the next session (today's runs keep theirs); the underlying "
            "changes only while a draft. 400 with field errors as on create; 409 for an "
            "archived strategy."
        ),
        request=StrategyInput,
        responses={
            200: s.StrategyDetailSerializer,
            **FIELD_ERRORS,
            **CONFLICT,
            **DENIED,
            **NOT_FOUND,
        },
        examples=[
            *_strategy_examples("saved"),
            _refused("archived", "An archived strategy cannot be edited; duplicate it instead."),
        ],
    )
    def put(self, request: Request, pk: int) -> Response:
        strategy = _strategy(request, pk)
        body = _parsed(request)
        if isinstance(body, Response):
            return body
        try:
            strategy_services.strategy_update(
                user=_me(request), strategy=strategy, spec=body.spec()
            )
        except strategy_services.StrategyStateError as exc:
            return _conflict(str(exc))
        except DjangoValidationError as exc:
            return _field_errors(service_errors(exc))
        return Response(s.StrategyDetailSerializer(_strategy(request, pk)).data)


class StrategyVersionsView(ApiView):
    @extend_schema(
        tags=["strategies"],
        summary="A strategy's versions",
        description=(
            "Every saved version, newest first, with its legs, times, days and combined exits, "
            "and the day from which it trades."
        ),
        responses={200: s.VersionWithLegsSerializer(many=True), **DENIED, **NOT_FOUND},
        examples=_example("versions", STRATEGY_DETAIL_EXAMPLE["versions"]),
    )
    def get(self, request: Request, pk: int) -> Response:
        strategy = _strategy(request, pk)
        return Response(s.VersionWithLegsSerializer(strategy.versions.all(), many=True).data)


class PaperTestView(ApiView):
    scopes = {"POST": Scope.TRADE}

    @extend_schema(
        tags=["strategies"],
        summary="Test now on paper",
        description=(
            "The page's “Test now on paper”: runs the strategy's latest version at the next "
            "whole second on your paper account(s), marked as a test; real brokers are never "
            "sent an order. With `price_account_id`, one of your connected live accounts "
            "prices it instead of the simulated market, as the page's “Prices from”. 400 for an "
            "account that is not one of those; 409 while a kill switch is engaged, without a "
            "paper account or a version."
        ),
        request=PaperTestInput,
        responses={201: s.RunSerializer, **FIELD_ERRORS, **CONFLICT, **DENIED, **NOT_FOUND},
        examples=[
            OpenApiExample(
                "started",
                value={**RUN_EXAMPLE, "is_test": True, "source": "paper_test", "state": "Planned"},
                response_only=True,
                status_codes=["201"],
            ),
            *_refusals(),
            OpenApiExample("on the simulator", value={}, request_only=True),
            OpenApiExample("on live prices", value={"price_account_id": 3}, request_only=True),
            OpenApiExample(
                "not a live account of yours",
                value={
                    "price_account_id": [
                        "Choose one of your own live accounts that is connected now."
                    ]
                },
                response_only=True,
                status_codes=["400"],
            ),
            _refused("no paper account", "Connect the paper broker first (Brokers → Paper)."),
        ],
    )
    def post(self, request: Request, pk: int) -> Response:
        strategy = _strategy(request, pk)
        body = PaperTestInput(data=request.data)
        body.is_valid(raise_exception=True)
        # The page's own choice of price source: the user's connected live accounts.
        chosen = body.validated_data.get("price_account_id")
        form = PaperPriceSourceForm({"price_account": chosen or ""}, user=_me(request))
        if not form.is_valid():
            return _field_errors(
                {"price_account_id": [str(e) for e in form.errors["price_account"]]}
            )
        try:
            run = execution_services.paper_test_run(
                user=_me(request),
                strategy=strategy,
                price_account=form.cleaned_data["price_account"],
            )
        except execution_services.PaperTestError as exc:
            return _conflict(str(exc))
        fresh = execution_selectors.run_get_for_user(user=_me(request), pk=run.pk)
        row = disclosure.runs_disclosed(user=_me(request), runs=[fresh])[0]
        return Response(s.RunSerializer(row).data, status=status.HTTP_201_CREATED)


class RunExitResultSerializer(drf_serializers.Serializer):
    closing_orders = drf_serializers.IntegerField(help_text="Closing orders written and sent.")
    run = s.RunSerializer()


class RunExitView(ApiView):
    scopes = {"POST": Scope.TRADE}

    @extend_schema(
        tags=["runs"],
        summary="Exit a run",
        description=(
            "The run page's Exit: closes the run's open positions on every broker of the run "
            "(shorts bought back first, then longs sold, sliced by the freeze quantity), the "
            "same closing path as the engine's exits; positions whose closing orders are "
            "already working are left to them. 409 when nothing is left to close."
        ),
        request=RunExitInput,
        responses={200: RunExitResultSerializer, **FIELD_ERRORS, **CONFLICT, **DENIED, **NOT_FOUND},
        examples=[
            OpenApiExample("exit", value={"reason": "Phone: target reached"}, request_only=True),
            *_example("exit sent", {"closing_orders": 4, "run": RUN_EXAMPLE}),
            _refused(
                "nothing open",
                "Nothing to exit: no open position, or its closing orders are already working.",
            ),
        ],
    )
    def post(self, request: Request, pk: int) -> Response:
        run = execution_selectors.run_get_for_user(user=_me(request), pk=pk)
        body = RunExitInput(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            intents = run_exit(actor=request.user, run=run, reason=body.validated_data["reason"])
        except ExitError as exc:
            return _conflict(str(exc))
        row = disclosure.runs_disclosed(user=_me(request), runs=[run])[0]
        return Response({"closing_orders": len(intents), "run": s.RunSerializer(row).data})


class FundsSerializer(drf_serializers.Serializer):
    available = drf_serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
    used = drf_serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
    total = drf_serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
    problem = drf_serializers.CharField(
        allow_blank=True, help_text="Why there is no figure yet, in words (empty when there is)."
    )


class BrokerAccountFundsView(ApiView):
    @extend_schema(
        tags=["broker accounts"],
        summary="Funds at the broker",
        description=(
            "Available, used and total funds as the dashboard shows them: from a 15-second "
            "cache, never waiting on the broker (a figure not yet read is asked for in the "
            "background and `problem` says so; ask again in a few seconds). A broker's error "
            "is `problem`, in words."
        ),
        responses={200: FundsSerializer, **DENIED, **NOT_FOUND},
        examples=[
            *_example(
                "funds",
                {"available": "182500.00", "used": "67500.00", "total": "250000.00", "problem": ""},
            ),
            OpenApiExample(
                "not logged in",
                value={
                    "available": None,
                    "used": None,
                    "total": None,
                    "problem": "Login expired: connect it again to read funds.",
                },
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    def get(self, request: Request, pk: int) -> Response:
        account = broker_selectors.broker_account_get_for_user(user=_me(request), account_id=pk)
        funds, problem = execution_selectors.account_funds_shown(account)
        data: dict[str, Any] = {"available": None, "used": None, "total": None, "problem": problem}
        if funds is not None:
            data.update(available=funds.available, used=funds.used, total=funds.total)
        return Response(FundsSerializer(data).data)


class ConnectionCheckSerializer(drf_serializers.Serializer):
    ok = drf_serializers.BooleanField()
    message = drf_serializers.CharField()
    account = s.BrokerAccountSerializer()


class BrokerAccountTestView(ApiView):
    # It asks the broker for funds and records the check: nothing is traded.
    scopes = {"POST": Scope.READ}

    @extend_schema(
        tags=["broker accounts"],
        summary="Test the connection",
        description=(
            "The accounts page's Test: asks the broker for funds now and says in words whether "
            "the account works. A broker's refusal is `ok: false` with its words (an expired "
            "login also marks the account expired), never a server error. Needs only the read "
            "scope: nothing is traded."
        ),
        request=None,
        responses={200: ConnectionCheckSerializer, **DENIED, **NOT_FOUND},
        examples=[
            *_example(
                "works",
                {
                    "ok": True,
                    "message": "Connection works: ₹1,82,500.00 available, ₹67,500.00 in use.",
                    "account": {
                        "id": 3,
                        "broker": "zerodha",
                        "label": "Kite main",
                        "status": "connected",
                        "last_error": "",
                        "token_expires_at": "2026-12-07T06:00:00+05:30",
                        "last_checked_at": "2026-12-06T08:55:02+05:30",
                    },
                },
            ),
            OpenApiExample(
                "refused",
                value={
                    "ok": False,
                    "message": "Kite answered with an error: Incorrect `access_token`.",
                    "account": {
                        "id": 3,
                        "broker": "zerodha",
                        "label": "Kite main",
                        "status": "expired",
                        "last_error": "Your Kite login has expired or was revoked. Log in again.",
                        "token_expires_at": None,
                        "last_checked_at": None,
                    },
                },
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    def post(self, request: Request, pk: int) -> Response:
        account = broker_selectors.broker_account_get_for_user(user=_me(request), account_id=pk)
        check = broker_services.broker_account_test(account=account, actor=_me(request))
        account.refresh_from_db()
        return Response(
            {
                "ok": check.ok,
                "message": check.message,
                "account": s.BrokerAccountSerializer(account).data,
            }
        )
