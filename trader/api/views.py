"""/api/v1/: what a trader does on the pages, for their programs.

Every view reads through the pages' selectors, writes through their services and shows runs,
orders and positions through marketplace.disclosure; none checks ownership or masks anything
itself. Another user's object is a 404, as on the pages.
"""

from __future__ import annotations

from typing import Any, cast

from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from brokers import selectors as broker_selectors
from execution import selectors as execution_selectors
from execution.protection.killswitch import (
    kill_switch_engage,
    kill_switch_rearm,
    kill_switches_engaged,
)
from marketplace import disclosure
from marketplace import selectors as marketplace_selectors
from marketplace.forms import BrowseForm
from marketplace.models import PlanKind, RiskLevel
from trader.api import serializers as s
from trader.api.models import ApiToken, Scope
from trader.audit_context import audit_via_set
from trader.models import Strategy, User
from trader.selectors import profile_get_for_user
from trader.strategies import selectors as strategy_selectors
from trader.strategies import services as strategy_services

NOT_FOUND = {404: s.ErrorSerializer}
DENIED = {401: s.ErrorSerializer, 403: s.ErrorSerializer, 429: s.ErrorSerializer}
FIELD_ERRORS = {
    400: OpenApiResponse(
        response=OpenApiTypes.OBJECT, description="Field errors: {field: [messages]}."
    )
}
LISTINGS_LIMIT = 100


class ApiView(APIView):
    """Base of every endpoint: the scope each method needs, and audit rows written during a
    token's request name the token."""

    # One scope per method, or a tuple of scopes all needed.
    scopes: dict[str, str | tuple[str, ...]] = {}

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        with audit_via_set() as via:
            self._audit_via = via
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if isinstance(request.auth, ApiToken):
            self._audit_via.update(via="api", api_token=request.auth.name)


ERROR_EXAMPLES = {
    "400": {"reason": ["Ensure this field has no more than 200 characters."]},
    "401": {"detail": "Invalid, expired or revoked token."},
    "403": {"detail": "This token lacks the “trade” scope."},
    "404": {"detail": "No such object of yours."},
    "429": {"detail": "Request was throttled. Expected available in 21 seconds."},
}


def _me(request: Request) -> User:
    """The authenticated user (every view requires one: IsAuthenticated)."""
    return cast(User, request.user)


def _refusals() -> list[OpenApiExample]:
    """One example of each refusal (only those the operation lists are used)."""
    return [
        OpenApiExample(f"refused {code}", value=body, response_only=True, status_codes=[code])
        for code, body in ERROR_EXAMPLES.items()
    ]


def _example(name: str, value: Any) -> list[OpenApiExample]:
    """The success example, and one of each refusal."""
    return [
        OpenApiExample(name, value=value, response_only=True, status_codes=["200"]),
        *_refusals(),
    ]


PROFILE_EXAMPLE = {
    "email": "asha@example.in",
    "full_name": "Asha Rao",
    "state": "KA",
    "city": "Bengaluru",
}
ACCOUNT_EXAMPLE = {
    "id": 3,
    "broker": "zerodha",
    "label": "Kite main",
    "status": "connected",
    "last_error": "",
    "token_expires_at": "2026-12-07T06:00:00+05:30",
    "last_checked_at": "2026-12-06T08:55:02+05:30",
}
STRATEGY_EXAMPLE = {
    "id": 7,
    "name": "NIFTY short strangle",
    "description": "",
    "underlying": "NIFTY",
    "kind": "intraday",
    "status": "active",
    "current_version": 2,
    "activated_at": "2026-12-01T15:10:00+05:30",
    "allocations": [
        {
            "broker_account_id": 3,
            "broker_account": "Kite main",
            "priority": 1,
            "enabled": True,
            "multiplier": "1.00",
            "sizing": "multiplier",
            "fixed_lots": None,
        }
    ],
    "updated_at": "2026-12-01T15:10:00+05:30",
}
LEG_EXAMPLE = {
    "position": 1,
    "side": "SELL",
    "option_type": "CE",
    "lots": 1,
    "expiry_choice": "weekly",
    "strike_mode": "atm_offset",
    "strike_offset": 2,
    "strike_price": None,
    "target_premium": None,
    "target_delta": None,
    "stop_loss": "30.00",
    "stop_loss_unit": "percent",
    "target": None,
    "target_unit": "points",
}
STRATEGY_DETAIL_EXAMPLE = {
    **STRATEGY_EXAMPLE,
    "leg_failure_policy": "unwind",
    "hedge_confirmation": "ack",
    "versions": [
        {
            "number": 2,
            "effective_from": "2026-12-02",
            "entry_time": "09:20:00",
            "exit_time": "15:10:00",
            "stop_loss_mtm": "5000.00",
            "target_mtm": None,
            "trailing_stop_mtm": None,
            "created_at": "2026-12-01T15:09:00+05:30",
            "legs": [LEG_EXAMPLE],
        }
    ],
}
RUN_EXAMPLE = {
    "id": 41,
    "hidden": False,
    "title": "NIFTY short strangle v2",
    "session_date": "2026-12-04",
    "fire_at": "2026-12-04T09:20:00+05:30",
    "boundary": "Entry",
    "is_test": False,
    "source": "allocation",
    "state": "Dispatched",
    "note": "",
    "exit_reason": "",
    "mtm": "1250.00",
}
HIDDEN_RUN_EXAMPLE = {
    **RUN_EXAMPLE,
    "hidden": True,
    "title": "Theta harvester (logic hidden)",
    "fire_at": None,
    "source": "deployment",
}
ORDER_EXAMPLE = {
    "account": "Kite main",
    "leg": "leg 1",
    "side": "SELL",
    "contract": "NIFTY26D0826200CE",
    "quantity": 75,
    "tag": "e41a1b2c",
    "intended_at": "2026-12-04T09:20:00+05:30",
    "sent_at": "2026-12-04T09:20:00.006+05:30",
    "lag_ms": 6.1,
    "ack_ms": 38.4,
    "acked": True,
    "state": "Filled",
    "error": "",
    "filled": "75",
    "average_price": "101.50",
}
POSITION_EXAMPLE = {
    "run_id": 41,
    "title": "NIFTY short strangle",
    "account": "Kite main",
    "contract": "NIFTY26D0826200CE",
    "net_quantity": -75,
    "last_price": "88.10",
    "pnl": "1005.00",
    "hidden": False,
}
HIDDEN_POSITION_EXAMPLE = {
    **POSITION_EXAMPLE,
    "title": "Theta harvester (logic hidden)",
    "contract": "leg 1",
    "net_quantity": None,
    "last_price": None,
    "hidden": True,
}
LISTING_EXAMPLE = {
    "id": 12,
    "title": "Theta harvester",
    "description": "Sells weekly NIFTY premium with hedges.",
    "tags": "theta,hedged",
    "underlying": "NIFTY",
    "risk_level": "medium",
    "capital_required": "250000.00",
    "visibility": "subscribe_only",
    "verified_return_percent": "4.20",
    "max_drawdown_percent": "2.10",
    "subscriber_count": 31,
    "average_rating": 4.5,
    "rating_count": 8,
    "plans": [{"kind": "fee", "monthly_fee": "999.00", "profit_share_percent": "0.00"}],
    "published_at": "2026-10-02T10:00:00+05:30",
}


class ProfileView(ApiView):
    @extend_schema(
        tags=["profile"],
        summary="Your profile",
        description="Who the token (or session) acts for. PAN and mobile are never sent.",
        responses={200: s.ProfileSerializer, **DENIED},
        examples=_example("profile", PROFILE_EXAMPLE),
    )
    def get(self, request: Request) -> Response:
        profile = profile_get_for_user(user=_me(request))
        data = {
            "email": _me(request).email,
            "full_name": getattr(profile, "full_name", ""),
            "state": getattr(profile, "state", ""),
            "city": getattr(profile, "city", ""),
        }
        return Response(s.ProfileSerializer(data).data)


class BrokerAccountListView(ApiView):
    @extend_schema(
        tags=["broker accounts"],
        summary="Your broker accounts",
        description="Every broker account you connected, with its session status.",
        responses={200: s.BrokerAccountSerializer(many=True), **DENIED},
        examples=_example("accounts", [ACCOUNT_EXAMPLE]),
    )
    def get(self, request: Request) -> Response:
        accounts = broker_selectors.broker_account_list_for_user(user=_me(request))
        return Response(s.BrokerAccountSerializer(accounts, many=True).data)


class BrokerAccountDetailView(ApiView):
    @extend_schema(
        tags=["broker accounts"],
        summary="One broker account's status",
        description="Status, last error and session expiry of one of your accounts.",
        responses={200: s.BrokerAccountSerializer, **DENIED, **NOT_FOUND},
        examples=_example("account", ACCOUNT_EXAMPLE),
    )
    def get(self, request: Request, pk: int) -> Response:
        account = broker_selectors.broker_account_get_for_user(user=_me(request), account_id=pk)
        return Response(s.BrokerAccountSerializer(account).data)


class StrategyListQuery(drf_serializers.Serializer):
    include_archived = drf_serializers.BooleanField(required=False, default=False)


class StrategyListView(ApiView):
    @extend_schema(
        tags=["strategies"],
        summary="Your strategies",
        description="Your strategies with their accounts (archived ones on request).",
        parameters=[StrategyListQuery],
        responses={200: s.StrategySerializer(many=True), **FIELD_ERRORS, **DENIED},
        examples=_example("strategies", [STRATEGY_EXAMPLE]),
    )
    def get(self, request: Request) -> Response:
        query = StrategyListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        strategies = strategy_selectors.strategy_list_for_user(
            user=_me(request), include_archived=query.validated_data["include_archived"]
        )
        return Response(s.StrategySerializer(strategies, many=True).data)


def _strategy(request: Request, pk: int) -> Strategy:
    try:
        return strategy_selectors.strategy_get_for_user(user=_me(request), pk=pk)
    except Strategy.DoesNotExist:
        raise Http404("No such strategy of yours.") from None


class StrategyDetailView(ApiView):
    @extend_schema(
        tags=["strategies"],
        summary="One strategy with its versions and legs",
        description="Every version (newest first) with its legs and exits.",
        responses={200: s.StrategyDetailSerializer, **DENIED, **NOT_FOUND},
        examples=_example("strategy", STRATEGY_DETAIL_EXAMPLE),
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.StrategyDetailSerializer(_strategy(request, pk)).data)


def _strategy_action(service: Any, summary: str, description: str) -> type[ApiView]:
    class StrategyActionView(ApiView):
        scopes = {"POST": Scope.TRADE}

        @extend_schema(
            tags=["strategies"],
            summary=summary,
            description=description
            + " Refused with 409 when the strategy's state does not allow it.",
            request=None,
            responses={
                200: s.StrategyDetailSerializer,
                409: s.ErrorSerializer,
                **DENIED,
                **NOT_FOUND,
            },
            examples=[
                *_example("done", STRATEGY_DETAIL_EXAMPLE),
                OpenApiExample(
                    "refused",
                    value={"detail": "Cannot pause a strategy that is draft."},
                    response_only=True,
                    status_codes=["409"],
                ),
            ],
        )
        def post(self, request: Request, pk: int) -> Response:
            strategy = _strategy(request, pk)
            try:
                service(user=_me(request), strategy=strategy)
            except strategy_services.StrategyStateError as exc:
                return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
            return Response(s.StrategyDetailSerializer(_strategy(request, pk)).data)

    return StrategyActionView


StrategyActivateView = _strategy_action(
    strategy_services.strategy_activate,
    "Activate a strategy",
    "Start trading from the next planned session (needs an enabled broker account).",
)
StrategyPauseView = _strategy_action(
    strategy_services.strategy_pause,
    "Pause a strategy",
    "Stop planning new runs; open positions still exit at their exit time.",
)
StrategyArchiveView = _strategy_action(
    strategy_services.strategy_archive,
    "Archive a strategy",
    "Retire the strategy for good; it stays readable.",
)


class RunListView(ApiView):
    @extend_schema(
        tags=["runs"],
        summary="Your latest runs",
        description=(
            "Your 50 latest runs. A black-box strategy you subscribe to shows its listing's "
            "title, `hidden: true` and no exact time, as on the runs page."
        ),
        responses={200: s.RunSerializer(many=True), **DENIED},
        examples=_example("runs", [RUN_EXAMPLE, HIDDEN_RUN_EXAMPLE]),
    )
    def get(self, request: Request) -> Response:
        rows = disclosure.runs_disclosed(
            user=_me(request), runs=execution_selectors.runs_for_user(user=_me(request))
        )
        return Response(s.RunSerializer(rows, many=True).data)


class RunDetailView(ApiView):
    @extend_schema(
        tags=["runs"],
        summary="One run with its orders and positions",
        description=(
            "Orders with their timings and fills, and positions. For a black box: no contract, "
            "quantity, price or clock time; the filled share in percent."
        ),
        responses={200: s.RunDetailSerializer, **DENIED, **NOT_FOUND},
        examples=_example(
            "run", {"run": RUN_EXAMPLE, "orders": [ORDER_EXAMPLE], "positions": [POSITION_EXAMPLE]}
        ),
    )
    def get(self, request: Request, pk: int) -> Response:
        run = execution_selectors.run_get_for_user(user=_me(request), pk=pk)
        return Response(
            s.RunDetailSerializer(disclosure.run_disclosed(user=_me(request), run=run)).data
        )


class PositionsView(ApiView):
    @extend_schema(
        tags=["positions"],
        summary="Open positions, per run and consolidated",
        description=(
            "Open positions of every run on every broker, and the same summed per contract "
            "(a black box's summed per listing)."
        ),
        responses={200: s.PositionsSerializer, **DENIED},
        examples=_example(
            "positions",
            {
                "positions": [POSITION_EXAMPLE, HIDDEN_POSITION_EXAMPLE],
                "consolidated": [
                    {
                        "contract": "NIFTY26D0826200CE",
                        "net_quantity": -75,
                        "pnl": "1005.00",
                        "accounts": ["Kite main"],
                    }
                ],
            },
        ),
    )
    def get(self, request: Request) -> Response:
        rows, consolidated = disclosure.positions_disclosed(
            user=_me(request),
            positions=execution_selectors.open_positions_for_user(user=_me(request)),
        )
        return Response(
            s.PositionsSerializer({"positions": rows, "consolidated": consolidated}).data
        )


def _kill_state(user: Any) -> dict[str, bool]:
    engaged = kill_switches_engaged(user=user)
    return {"user": "user" in engaged, "platform": "global" in engaged}


KILL_EXAMPLE = _example("state", {"user": False, "platform": False})


class KillSwitchView(ApiView):
    @extend_schema(
        tags=["kill switch"],
        summary="Kill switch state",
        description="Whether your own switch or the platform-wide one is engaged.",
        responses={200: s.KillSwitchStateSerializer, **DENIED},
        examples=KILL_EXAMPLE,
    )
    def get(self, request: Request) -> Response:
        return Response(_kill_state(request.user))


class KillSwitchEngageView(ApiView):
    scopes = {"POST": Scope.TRADE}

    @extend_schema(
        tags=["kill switch"],
        summary="Engage your kill switch",
        description=(
            "Cancels your open orders, closes every open position and skips planned entries; "
            "no new entries until you re-arm it. Only your own switch: the platform-wide one "
            "is operated by staff in the web UI."
        ),
        request=s.KillSwitchEngageSerializer,
        responses={200: s.KillSwitchStateSerializer, **FIELD_ERRORS, **DENIED},
        examples=[
            OpenApiExample("engage", value={"reason": "Phone: market gapped"}, request_only=True),
            *_example("engaged", {"user": True, "platform": False}),
        ],
    )
    def post(self, request: Request) -> Response:
        body = s.KillSwitchEngageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        reason = body.validated_data["reason"] or "Engaged through the API."
        kill_switch_engage(actor=request.user, user=_me(request), reason=reason)
        return Response(_kill_state(request.user))


class KillSwitchRearmView(ApiView):
    scopes = {"POST": Scope.TRADE}

    @extend_schema(
        tags=["kill switch"],
        summary="Re-arm your kill switch",
        description="Allow new entries again (your own switch only).",
        request=None,
        responses={200: s.KillSwitchStateSerializer, **DENIED},
        examples=KILL_EXAMPLE,
    )
    def post(self, request: Request) -> Response:
        kill_switch_rearm(actor=request.user, user=_me(request))
        return Response(_kill_state(request.user))


class ListingListView(ApiView):
    scopes = {"GET": Scope.MARKETPLACE}

    @extend_schema(
        tags=["marketplace"],
        summary="Browse marketplace listings",
        description=(
            f"Published listings, filtered and sorted as on the browse page (at most "
            f"{LISTINGS_LIMIT}). Needs the marketplace scope. Bad filters are 400 with the "
            "field's error."
        ),
        parameters=[
            # Raw schemas that say what BrowseForm accepts (no NUL in text, capital >= 0 with
            # at most 12 + 2 digits).
            OpenApiParameter(
                "q",
                {"type": "string", "pattern": "^[^\\x00]*$"},
                description="Words in the title, description or tags.",
            ),
            OpenApiParameter(
                "underlying",
                {"type": "string", "pattern": "^[^\\x00]*$"},
                description="An underlying's symbol, e.g. NIFTY; an unknown one is a 400.",
            ),
            OpenApiParameter("pricing", str, enum=PlanKind.values),
            OpenApiParameter("risk", str, enum=RiskLevel.values),
            OpenApiParameter(
                "max_capital",
                {"type": "string", "pattern": "^([0-9]{1,12}(\\.[0-9]{1,2})?)?$"},
                description="Capital needed, up to (₹), e.g. 250000.",
            ),
            OpenApiParameter("sort", str, enum=["recommended", "newest", "subscribers", "return"]),
        ],
        responses={200: s.ListingSerializer(many=True), **FIELD_ERRORS, **DENIED},
        examples=_example("listings", [LISTING_EXAMPLE]),
    )
    def get(self, request: Request) -> Response:
        form = BrowseForm(request.query_params)
        if not form.is_valid():
            raise ValidationError(
                {
                    field: [e["message"] for e in errs]
                    for field, errs in form.errors.get_json_data().items()
                }
            )
        data = form.cleaned_data
        listings = marketplace_selectors.listing_browse(
            query=data["q"],
            underlying=data["underlying"].symbol if data["underlying"] else "",
            pricing=data["pricing"],
            risk=data["risk"],
            max_capital=data["max_capital"],
            sort=data["sort"] or "recommended",
        )[:LISTINGS_LIMIT]
        return Response(s.ListingSerializer(listings, many=True).data)


@csrf_exempt
def not_found(request: Any, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any other address under /api/ (whatever the method): a JSON 404 like the endpoints'."""
    return JsonResponse({"detail": "Not found."}, status=404)
