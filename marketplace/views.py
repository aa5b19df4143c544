"""Marketplace pages: discovery for traders, publishing pages for creators, subscriptions.

Thin: parse input, call one selector or service, render. Subscribe-only listings never put a
leg, strike or time into any response: templates receive the snapshot only for copy-allowed
listings (see `_disclosed_snapshot`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from marketplace import selectors, services
from marketplace.forms import (
    BrowseForm,
    CommentForm,
    DeploymentForm,
    DeploymentTermsForm,
    ListingCreateForm,
    ListingTermsForm,
    PlanForm,
    PlanPriceForm,
    RatingForm,
    SubscribeForm,
    VersionForm,
    apply_service_error,
)
from marketplace.models import Deployment, Listing, ListingVersion, Plan
from marketplace.performance import listing_track_records
from marketplace.ranking import (
    FULL_MARKS_RETURN_TO_DRAWDOWN,
    MIN_TRACK_RECORD_DAYS,
    RANKING_WEIGHTS,
    WORST_DRAWDOWN_PERCENT,
)
from marketplace.workflow import Actor, actions_available
from trader.http import AuthenticatedHttpRequest


def _service_call(request: HttpRequest, call: Any, *, done: str) -> None:
    """Call a service; its refusal or `done` becomes the message shown after the redirect."""
    try:
        call()
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, done)


def _disclosed_snapshot(listing: Listing) -> dict[str, Any] | None:
    """The strategy's legs and times, only when the creator chose to disclose them."""
    if listing.is_subscribe_only or listing.live_version is None:
        return None
    return listing.live_version.snapshot


def browse(request: HttpRequest) -> HttpResponse:
    form = BrowseForm(request.GET or None)
    filters: dict[str, Any] = {}
    if form.is_valid():
        data = form.cleaned_data
        filters = {
            "query": data["q"],
            "underlying": data["underlying"].symbol if data["underlying"] else "",
            "pricing": data["pricing"],
            "risk": data["risk"],
            "max_capital": data["max_capital"],
            "sort": data["sort"] or "recommended",
        }
    listings = selectors.listing_browse(**filters)
    return render(request, "marketplace/browse.html", {"listings": listings, "form": form})


def ranking_explained(request: HttpRequest) -> HttpResponse:
    weights = {name: int(weight * 100) for name, weight in RANKING_WEIGHTS.items()}
    return render(
        request,
        "marketplace/ranking.html",
        {
            "weights": weights,
            "min_days": MIN_TRACK_RECORD_DAYS,
            "full_marks_ratio": FULL_MARKS_RETURN_TO_DRAWDOWN,
            "worst_drawdown": WORST_DRAWDOWN_PERCENT,
        },
    )


def listing_detail(request: HttpRequest, pk: int) -> HttpResponse:
    listing = selectors.listing_get_public(listing_id=pk)
    subscription = selectors.subscription_open_for(user=request.user, listing=listing)
    context = {
        "listing": listing,
        "track_records": listing_track_records(listing=listing),
        "reviews": selectors.reviews_for_listing(listing=listing),
        "subscription": subscription,
        "snapshot": _disclosed_snapshot(listing),
        "subscribe_form": SubscribeForm(listing=listing),
        "is_creator": request.user.is_authenticated and listing.creator_id == request.user.pk,
    }
    return render(request, "marketplace/listing_detail.html", context)


@login_required
@require_POST
def subscribe(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    listing = get_object_or_404(Listing, pk=pk)
    form = SubscribeForm(request.POST, listing=listing)
    if form.is_valid() and request.POST.get("confirm") != "yes":
        # Nothing is committed before the trader has seen the price, the billing dates and
        # what happens on lapse, and confirmed.
        from marketplace.services.billing import ist_today

        terms = selectors.subscribe_terms(plan=form.cleaned_data["plan"], today=ist_today())
        return render(
            request, "marketplace/subscribe_confirm.html", {"listing": listing, "terms": terms}
        )
    if form.is_valid():
        try:
            subscription = services.subscription_create(
                subscriber=request.user,
                listing=listing,
                plan=form.cleaned_data["plan"],
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Subscribed. Now choose the accounts it runs on.")
            return redirect("marketplace:subscription", pk=subscription.pk)
    else:
        messages.error(request, "Choose one of the listing's plans.")
    return redirect("marketplace:listing", pk=pk)


# --- creators ----------------------------------------------------------------------------------


@login_required
def my_listings(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    return render(
        request,
        "marketplace/my_listings.html",
        {
            "listings": selectors.listings_of_creator(user=user),
            "notifications": selectors.notifications_for_user(user=user),
            "earnings": selectors.creator_earnings(user=user),
        },
    )


@login_required
def listing_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ListingCreateForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            listing = services.listing_create(creator=request.user, **form.cleaned_data)
        except ValidationError as error:
            apply_service_error(form, error)
        else:
            messages.success(request, "Draft saved. Submit it for review when it is ready.")
            return redirect("marketplace:manage", pk=listing.pk)
    return render(request, "marketplace/listing_form.html", {"form": form, "listing": None})


@login_required
def listing_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    listing = selectors.listing_get_for_user(user=request.user, listing_id=pk)
    initial = {name: getattr(listing, name) for name in ListingTermsForm.base_fields}
    form = ListingTermsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.listing_update(listing=listing, user=request.user, **form.cleaned_data)
        except ValidationError as error:
            apply_service_error(form, error)
        else:
            messages.success(request, "Listing saved.")
            return redirect("marketplace:manage", pk=listing.pk)
    return render(request, "marketplace/listing_form.html", {"form": form, "listing": listing})


@login_required
def listing_manage(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    listing = selectors.listing_get_for_user(user=request.user, listing_id=pk)
    context = {
        "listing": listing,
        "actions": actions_available(state=listing.state, actor=Actor.CREATOR),
        "thread": selectors.review_thread(listing=listing),
        "versions": selectors.listing_versions(listing=listing),
        "plans": listing.plans.all(),
        "plan_form": PlanForm(),
        "subscribers": _subscribers_this_month(listing),
        "comment_form": CommentForm(),
        "version_form": VersionForm(),
    }
    return render(request, "marketplace/manage.html", context)


def _subscribers_this_month(listing: Listing) -> dict[str, Any]:
    from marketplace.performance import listing_subscribers_aggregate
    from marketplace.services.billing import ist_today

    today = ist_today()
    return listing_subscribers_aggregate(listing=listing, first=today.replace(day=1), last=today)


@login_required
@require_POST
def listing_action(request: AuthenticatedHttpRequest, pk: int, action: str) -> HttpResponse:
    listing = selectors.listing_get_for_user(user=request.user, listing_id=pk)
    try:
        services.listing_transition(
            listing=listing,
            user=request.user,
            action=action,
            reason=request.POST.get("reason", ""),
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        listing.refresh_from_db()
        messages.success(request, f"The listing is now {listing.get_state_display().lower()}.")
    return redirect("marketplace:manage", pk=pk)


@login_required
@require_POST
def listing_comment(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    listing = selectors.listing_get_for_user(user=request.user, listing_id=pk)
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            services.comment_add(
                listing=listing, author=request.user, body=form.cleaned_data["body"]
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    else:
        messages.error(request, "Write a comment first.")
    return redirect("marketplace:manage", pk=pk)


@login_required
@require_POST
def version_new(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    listing = selectors.listing_get_for_user(user=request.user, listing_id=pk)
    form = VersionForm(request.POST)
    form.is_valid()
    try:
        services.version_create(
            listing=listing,
            user=request.user,
            notes=form.cleaned_data.get("notes", ""),
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "New draft version saved; submit it for review.")
    return redirect("marketplace:manage", pk=pk)


@login_required
@require_POST
def version_submit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ListingVersion, pk=pk, listing__creator=request.user)
    try:
        services.version_submit(version=version, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Version {version.number} is submitted for review.")
    return redirect("marketplace:manage", pk=version.listing_id)


@login_required
@require_POST
def plan_add(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    listing = selectors.listing_get_for_user(user=request.user, listing_id=pk)
    _form_submit(
        request,
        PlanForm(request.POST),
        lambda data: services.plan_add(listing=listing, user=request.user, **data),
        done="Plan added: new subscribers can choose it.",
    )
    return redirect("marketplace:manage", pk=pk)


def _own_plan(request: AuthenticatedHttpRequest, pk: int) -> Plan:
    return get_object_or_404(Plan, pk=pk, listing__creator=request.user)


@login_required
@require_POST
def plan_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    plan = _own_plan(request, pk)
    _form_submit(
        request,
        PlanPriceForm(request.POST),
        lambda data: services.plan_update(plan=plan, user=request.user, **data),
        done="Plan saved. Existing subscribers keep their terms until their next renewal.",
    )
    return redirect("marketplace:manage", pk=plan.listing_id)


@login_required
@require_POST
def plan_retire(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    plan = _own_plan(request, pk)
    _service_call(
        request,
        lambda: services.plan_retire(plan=plan, user=request.user),
        done="Plan no longer offered; its subscribers keep it.",
    )
    return redirect("marketplace:manage", pk=plan.listing_id)


def _form_submit(request: HttpRequest, form: Any, call: Any, *, done: str) -> None:
    """A posted form's errors, or the service call on its cleaned data, as a message."""
    if form.is_valid():
        _service_call(request, lambda: call(form.cleaned_data), done=done)
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))


# --- subscribers -------------------------------------------------------------------------------


@login_required
def my_subscriptions(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    return render(
        request,
        "marketplace/my_subscriptions.html",
        {
            "subscriptions": [
                (subscription, selectors.fee_status(subscription=subscription))
                for subscription in selectors.subscriptions_of_user(user=user)
            ],
            "invoices": selectors.invoices_of_user(user=user)[:24],
            "notifications": selectors.notifications_for_user(user=user),
        },
    )


@login_required
def subscription_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    subscription = selectors.subscription_get_for_user(user=request.user, subscription_id=pk)
    deploy_form = DeploymentForm(
        request.POST or None,
        user=request.user,
        initial={"multiplier": subscription.listing.min_multiplier},
    )
    if request.method == "POST" and deploy_form.is_valid():
        try:
            services.deployment_create(
                subscription=subscription,
                user=request.user,
                **deploy_form.cleaned_data,
            )
        except ValidationError as error:
            apply_service_error(deploy_form, error)
        else:
            messages.success(request, "Deployed. It runs from the next planned boundary.")
            return redirect("marketplace:subscription", pk=pk)
    rating = getattr(subscription, "rating", None)
    context = {
        "subscription": subscription,
        "listing": subscription.listing,
        "deployments": subscription.deployments.select_related("broker_account"),
        "deploy_form": deploy_form,
        "fee": selectors.fee_status(subscription=subscription),
        "may_review": services.subscription_has_executed(subscription=subscription),
        "rating_form": RatingForm(
            initial={"stars": rating.stars, "review": rating.review} if rating else None
        ),
        "invoices": subscription.invoices.select_related("subscription__listing"),
    }
    return render(request, "marketplace/subscription.html", context)


_SUBSCRIPTION_ACTIONS = {
    "pause": (services.subscription_pause, "Paused: no new entries; open positions still exit."),
    "resume": (services.subscription_resume, "Resumed."),
    "cancel": (services.subscription_cancel, "Cancelled; open positions still exit."),
}


@login_required
@require_POST
def subscription_action(request: AuthenticatedHttpRequest, pk: int, action: str) -> HttpResponse:
    subscription = selectors.subscription_get_for_user(user=request.user, subscription_id=pk)
    if action not in _SUBSCRIPTION_ACTIONS:
        raise Http404("Unknown action.")
    service, done = _SUBSCRIPTION_ACTIONS[action]
    try:
        service(subscription=subscription, user=request.user)  # type: ignore[operator]
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, done)
    return redirect("marketplace:subscription", pk=pk)


@login_required
@require_POST
def subscription_rate(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    subscription = selectors.subscription_get_for_user(user=request.user, subscription_id=pk)
    form = RatingForm(request.POST)
    if form.is_valid():
        _service_call(
            request,
            lambda: services.rating_submit(
                subscription=subscription, user=request.user, **form.cleaned_data
            ),
            done="Thank you for your review.",
        )
    else:
        messages.error(request, "Give 1 to 5 stars.")
    return redirect("marketplace:subscription", pk=pk)


@login_required
@require_POST
def subscription_copy(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    subscription = selectors.subscription_get_for_user(user=request.user, subscription_id=pk)
    try:
        copy = services.listing_copy(subscription=subscription, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("marketplace:subscription", pk=pk)
    messages.success(request, f"“{copy.name}” is now one of your strategies, as a draft.")
    return redirect("strategies:list")


@login_required
@require_POST
def deployment_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    deployment = get_object_or_404(
        Deployment.objects.select_related("subscription"),
        pk=pk,
        subscription__subscriber=request.user,
    )
    _form_submit(
        request,
        DeploymentTermsForm(request.POST),
        lambda data: services.deployment_update(deployment=deployment, user=request.user, **data),
        done="Saved: runs planned from now on use the new multiplier.",
    )
    return redirect("marketplace:subscription", pk=deployment.subscription_id)


@login_required
@require_POST
def deployment_stop(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    deployment = get_object_or_404(
        Deployment.objects.select_related("subscription"),
        pk=pk,
        subscription__subscriber=request.user,
    )
    services.deployment_stop(deployment=deployment, user=request.user)
    messages.success(request, "Stopped on that account; open positions still exit.")
    return redirect("marketplace:subscription", pk=deployment.subscription_id)
