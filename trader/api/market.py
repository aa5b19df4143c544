"""/api/v1/marketplace/: your subscriptions (list, subscribe, pause, resume, cancel) and their
deployments on your own broker accounts, through the subscription pages' selectors and
services. A subscription shows its listing's title and terms only: never a black box's legs,
strikes or times (no endpoint sends a listing's snapshot)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from brokers.models import BrokerAccount
from marketplace import selectors as marketplace_selectors
from marketplace import services as marketplace_services
from marketplace.models import Deployment, Listing, Plan
from marketplace.services.billing import ist_today
from trader.api import serializers as s
from trader.api.inputs import DeploymentInput, DeploymentTermsInput, SubscribeInput, service_errors
from trader.api.models import Scope
from trader.api.views import DENIED, FIELD_ERRORS, NOT_FOUND, ApiView, _example, _me, _refusals

CONFLICT = {409: s.ErrorSerializer}
# Deploying puts a listing's orders on the trader's accounts: it needs both scopes.
DEPLOY_SCOPES = (Scope.MARKETPLACE, Scope.TRADE)


class DeploymentSerializer(drf_serializers.Serializer):
    id = drf_serializers.IntegerField()
    broker_account_id = drf_serializers.IntegerField()
    broker_account = drf_serializers.CharField(source="broker_account.label")
    multiplier = drf_serializers.IntegerField()
    max_daily_loss = drf_serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    is_active = drf_serializers.BooleanField()


class SubscriptionSerializer(drf_serializers.Serializer):
    id = drf_serializers.IntegerField()
    listing_id = drf_serializers.IntegerField()
    listing = drf_serializers.CharField(source="listing.title")
    plan_id = drf_serializers.IntegerField()
    plan = drf_serializers.CharField(source="plan.kind")
    monthly_fee = drf_serializers.DecimalField(max_digits=10, decimal_places=2)
    profit_share_percent = drf_serializers.DecimalField(max_digits=5, decimal_places=2)
    status = drf_serializers.CharField()
    paid_until = drf_serializers.SerializerMethodField(
        help_text="Last day covered by a paid fee invoice (fee plans)."
    )
    invoices_due = drf_serializers.SerializerMethodField(
        help_text="Fee invoices issued and not paid."
    )
    started_at = drf_serializers.DateTimeField()
    ended_at = drf_serializers.DateTimeField(allow_null=True)
    deployments = DeploymentSerializer(many=True, source="deployments.all")

    # The subscriptions page's fee status (invoices prefetched by its selector).
    @extend_schema_field(OpenApiTypes.DATE)
    def get_paid_until(self, subscription: Any) -> Any:
        fee = marketplace_selectors.fee_status(subscription=subscription)
        return fee.paid_until if fee else None

    @extend_schema_field(OpenApiTypes.INT)
    def get_invoices_due(self, subscription: Any) -> int:
        fee = marketplace_selectors.fee_status(subscription=subscription)
        return len(fee.due) if fee else 0


class SubscribeTermsSerializer(drf_serializers.Serializer):
    plan_id = drf_serializers.IntegerField(source="plan.pk")
    plan = drf_serializers.CharField(source="plan.kind")
    monthly_fee = drf_serializers.DecimalField(
        max_digits=10, decimal_places=2, source="plan.monthly_fee"
    )
    profit_share_percent = drf_serializers.DecimalField(
        max_digits=5, decimal_places=2, source="plan.profit_share_percent"
    )
    first_period_start = drf_serializers.DateField()
    first_period_end = drf_serializers.DateField()
    next_invoice_on = drf_serializers.DateField()


DEPLOYMENT_EXAMPLE = {
    "id": 5,
    "broker_account_id": 3,
    "broker_account": "Kite main",
    "multiplier": 2,
    "max_daily_loss": "4000.00",
    "is_active": True,
}
SUBSCRIPTION_EXAMPLE = {
    "id": 9,
    "listing_id": 12,
    "listing": "Theta harvester",
    "plan_id": 4,
    "plan": "fee",
    "monthly_fee": "999.00",
    "profit_share_percent": "0.00",
    "status": "active",
    "paid_until": "2027-01-03",
    "invoices_due": 0,
    "started_at": "2026-12-04T10:02:00+05:30",
    "ended_at": None,
    "deployments": [DEPLOYMENT_EXAMPLE],
}


def _refusal(error: DjangoValidationError) -> Response:
    """A marketplace service's refusal: keyed by field, 400; about the state, 409."""
    if hasattr(error, "error_dict"):
        return Response(service_errors(error), status=status.HTTP_400_BAD_REQUEST)
    return Response({"detail": " ".join(error.messages)}, status=status.HTTP_409_CONFLICT)


def _subscription(request: Request, pk: int) -> Any:
    return marketplace_selectors.subscription_get_for_user(user=_me(request), subscription_id=pk)


def _fresh(request: Request, pk: int) -> dict[str, Any]:
    """The subscription as the list shows it (deployments and invoices loaded)."""
    subscription = marketplace_selectors.subscriptions_of_user(user=_me(request)).get(pk=pk)
    return dict(SubscriptionSerializer(subscription).data)


class SubscriptionListView(ApiView):
    scopes = {"GET": Scope.MARKETPLACE}

    @extend_schema(
        tags=["marketplace"],
        summary="Your subscriptions",
        description=(
            "Every subscription of yours (cancelled ones too), newest first, with its terms, "
            "fee status and deployments. Needs the marketplace scope."
        ),
        responses={200: SubscriptionSerializer(many=True), **DENIED},
        examples=_example("subscriptions", [SUBSCRIPTION_EXAMPLE]),
    )
    def get(self, request: Request) -> Response:
        rows = marketplace_selectors.subscriptions_of_user(user=_me(request))
        return Response(SubscriptionSerializer(rows, many=True).data)


class SubscriptionDetailView(ApiView):
    scopes = {"GET": Scope.MARKETPLACE}

    @extend_schema(
        tags=["marketplace"],
        summary="One subscription",
        description="Its terms, fee status and deployments (404 for anyone else's).",
        responses={200: SubscriptionSerializer, **DENIED, **NOT_FOUND},
        examples=_example("subscription", SUBSCRIPTION_EXAMPLE),
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(_fresh(request, _subscription(request, pk).pk))


class SubscribeView(ApiView):
    scopes = {"POST": Scope.MARKETPLACE}

    @extend_schema(
        tags=["marketplace"],
        summary="Subscribe to a listing",
        description=(
            "As on the listing page, in two steps: with `confirm: false` the plan's price and "
            "billing dates (200, nothing saved); with `confirm: true` the subscription (201; a "
            "fee plan's first month is invoiced at once). Then deploy it on your accounts. 400 "
            "for a plan that is not this listing's; 409 for an unpublished or own listing or "
            "an open subscription to it."
        ),
        request=SubscribeInput,
        responses={
            200: SubscribeTermsSerializer,
            201: SubscriptionSerializer,
            **FIELD_ERRORS,
            **CONFLICT,
            **DENIED,
            **NOT_FOUND,
        },
        examples=[
            OpenApiExample("see the terms", value={"plan": 4, "confirm": False}, request_only=True),
            OpenApiExample("subscribe", value={"plan": 4, "confirm": True}, request_only=True),
            *_example(
                "terms",
                {
                    "plan_id": 4,
                    "plan": "fee",
                    "monthly_fee": "999.00",
                    "profit_share_percent": "0.00",
                    "first_period_start": "2026-12-04",
                    "first_period_end": "2027-01-03",
                    "next_invoice_on": "2027-01-04",
                },
            ),
            OpenApiExample(
                "subscribed",
                value={**SUBSCRIPTION_EXAMPLE, "deployments": []},
                response_only=True,
                status_codes=["201"],
            ),
            OpenApiExample(
                "already subscribed",
                value={"detail": "You are already subscribed to this listing."},
                response_only=True,
                status_codes=["409"],
            ),
        ],
    )
    def post(self, request: Request, pk: int) -> Response:
        listing = Listing.objects.filter(pk=pk).first()
        if listing is None:
            raise Http404("No such listing.")
        body = SubscribeInput(data=request.data)
        body.is_valid(raise_exception=True)
        # The listing page's plan choice: one of this listing's active plans.
        plan = Plan.objects.filter(
            pk=body.validated_data["plan"], listing=listing, is_active=True
        ).first()
        if plan is None:
            return Response(
                {"plan": ["Choose one of this listing's plans."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        if not body.validated_data["confirm"]:
            terms = marketplace_selectors.subscribe_terms(plan=plan, today=ist_today())
            return Response(SubscribeTermsSerializer(terms).data)
        try:
            subscription = marketplace_services.subscription_create(
                subscriber=_me(request), listing=listing, plan=plan
            )
        except DjangoValidationError as exc:
            return _refusal(exc)
        return Response(_fresh(request, subscription.pk), status=status.HTTP_201_CREATED)


def _subscription_action(service: Any, summary: str, description: str) -> type[ApiView]:
    class SubscriptionActionView(ApiView):
        scopes = {"POST": Scope.MARKETPLACE}

        @extend_schema(
            tags=["marketplace"],
            summary=summary,
            description=description + " 409 when its status does not allow it.",
            request=None,
            responses={200: SubscriptionSerializer, **CONFLICT, **DENIED, **NOT_FOUND},
            examples=[
                *_example("done", SUBSCRIPTION_EXAMPLE),
                OpenApiExample(
                    "refused",
                    value={"detail": "This subscription is cancelled."},
                    response_only=True,
                    status_codes=["409"],
                ),
            ],
        )
        def post(self, request: Request, pk: int) -> Response:
            subscription = _subscription(request, pk)
            try:
                service(subscription=subscription, user=_me(request))
            except DjangoValidationError as exc:
                return _refusal(exc)
            return Response(_fresh(request, pk))

    return SubscriptionActionView


SubscriptionPauseView = _subscription_action(
    marketplace_services.subscription_pause,
    "Pause a subscription",
    "No new entries until resumed; open positions still exit at their planned times.",
)
SubscriptionResumeView = _subscription_action(
    marketplace_services.subscription_resume,
    "Resume a subscription",
    "Entries again (a fee subscription whose fee is unpaid becomes lapsed until paid).",
)
SubscriptionCancelView = _subscription_action(
    marketplace_services.subscription_cancel,
    "Cancel a subscription",
    "Ends it: its deployments stop entering; open positions still exit; invoices already "
    "issued stay due.",
)


class DeploymentCreateView(ApiView):
    scopes = {"POST": DEPLOY_SCOPES}

    @extend_schema(
        tags=["marketplace"],
        summary="Run a subscription on one of your broker accounts",
        description=(
            "As on the subscription page: every leg's lots times `multiplier`, on one of your "
            "logged-in accounts, within the listing's minimum multiplier, your risk limits and "
            "the admins' ceilings; from the next planned boundary. Needs the marketplace and "
            "trade scopes. 400 with field errors; 409 for a cancelled subscription."
        ),
        request=DeploymentInput,
        responses={201: DeploymentSerializer, **FIELD_ERRORS, **CONFLICT, **DENIED, **NOT_FOUND},
        examples=[
            OpenApiExample(
                "deploy",
                value={"broker_account_id": 3, "multiplier": 2, "max_daily_loss": "4000.00"},
                request_only=True,
            ),
            OpenApiExample(
                "deployed", value=DEPLOYMENT_EXAMPLE, response_only=True, status_codes=["201"]
            ),
            OpenApiExample(
                "cancelled",
                value={"detail": "This subscription is cancelled."},
                response_only=True,
                status_codes=["409"],
            ),
            OpenApiExample(
                "beyond your limits",
                value={"multiplier": ["This listing needs a multiplier of at least 2."]},
                response_only=True,
                status_codes=["400"],
            ),
            *_refusals(),
        ],
    )
    def post(self, request: Request, pk: int) -> Response:
        subscription = _subscription(request, pk)
        body = DeploymentInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        account = BrokerAccount.objects.filter(
            pk=data["broker_account_id"], owner=_me(request)
        ).first()
        if account is None:
            return Response(
                {"broker_account_id": ["Choose one of your own broker accounts."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            deployment = marketplace_services.deployment_create(
                subscription=subscription,
                user=_me(request),
                broker_account=account,
                multiplier=data["multiplier"],
                max_daily_loss=data.get("max_daily_loss"),
            )
        except DjangoValidationError as exc:
            return _refusal(_account_field(exc))
        deployment.broker_account = account
        return Response(DeploymentSerializer(deployment).data, status=status.HTTP_201_CREATED)


def _account_field(error: DjangoValidationError) -> DjangoValidationError:
    """The services name the account field `broker_account`; the API's is the id."""
    if not hasattr(error, "error_dict"):
        return error
    return DjangoValidationError(
        {
            ("broker_account_id" if key == "broker_account" else key): value
            for key, value in error.message_dict.items()
        }
    )


def _deployment(request: Request, pk: int) -> Deployment:
    deployment = (
        Deployment.objects.select_related("subscription__listing", "broker_account")
        .filter(pk=pk, subscription__subscriber=_me(request))
        .first()
    )
    if deployment is None:
        raise Http404("No such deployment of yours.")
    return deployment


class DeploymentStopView(ApiView):
    scopes = {"POST": DEPLOY_SCOPES}

    @extend_schema(
        tags=["marketplace"],
        summary="Stop a deployment",
        description=(
            "No new entries on this account; open positions still exit. Needs the marketplace "
            "and trade scopes."
        ),
        request=None,
        responses={200: DeploymentSerializer, **DENIED, **NOT_FOUND},
        examples=_example("stopped", {**DEPLOYMENT_EXAMPLE, "is_active": False}),
    )
    def post(self, request: Request, pk: int) -> Response:
        deployment = _deployment(request, pk)
        deployment = marketplace_services.deployment_stop(deployment=deployment, user=_me(request))
        return Response(DeploymentSerializer(deployment).data)


class DeploymentView(ApiView):
    scopes = {"PUT": DEPLOY_SCOPES}

    @extend_schema(
        tags=["marketplace"],
        summary="Change a deployment's multiplier and loss limit",
        description=(
            "As on the subscription page: within the same limits as deploying; runs planned "
            "from now on use them (positions already open exit as they were opened). Needs the "
            "marketplace and trade scopes. 400 with field errors; 409 for a cancelled "
            "subscription."
        ),
        request=DeploymentTermsInput,
        responses={200: DeploymentSerializer, **FIELD_ERRORS, **CONFLICT, **DENIED, **NOT_FOUND},
        examples=[
            OpenApiExample(
                "double it", value={"multiplier": 4, "max_daily_loss": "8000.00"}, request_only=True
            ),
            *_example(
                "saved", {**DEPLOYMENT_EXAMPLE, "multiplier": 4, "max_daily_loss": "8000.00"}
            ),
            OpenApiExample(
                "cancelled",
                value={"detail": "This subscription is cancelled."},
                response_only=True,
                status_codes=["409"],
            ),
        ],
    )
    def put(self, request: Request, pk: int) -> Response:
        deployment = _deployment(request, pk)
        body = DeploymentTermsInput(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            deployment = marketplace_services.deployment_update(
                deployment=deployment,
                user=_me(request),
                multiplier=body.validated_data["multiplier"],
                max_daily_loss=body.validated_data.get("max_daily_loss"),
            )
        except DjangoValidationError as exc:
            return _refusal(exc)
        return Response(DeploymentSerializer(_deployment(request, pk)).data)
