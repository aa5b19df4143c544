"""Admins review listings here: single (buttons on a listing) and bulk (list actions) workflow
steps through an intermediate form that asks for the reason where one is required and for the
SEBI RA check before a subscribe-only listing is approved. Every step goes through the same
service as the creator's pages, so a creator can never approve their own listing here either.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from marketplace import selectors, services
from marketplace.models import (
    Deployment,
    Invoice,
    InvoiceStatus,
    Listing,
    ListingEvent,
    ListingVersion,
    MonthlyLedger,
    Plan,
    Rating,
    ReviewComment,
    Subscription,
    VersionState,
)
from marketplace.workflow import TRANSITIONS, Actor, actions_available
from trader.audit_admin import AuditAdmin
from trader.csvexport import SafeCsvWriter, csv_response
from trader.india import number_in, rupees
from trader.models import User
from trader.permissions import RECORD_PAYMENTS, REVIEW_LISTINGS, staff_may

ADMIN_WORKFLOW_ACTIONS = [
    name for name, transition in TRANSITIONS.items() if Actor.ADMIN in transition.actors
]


class WorkflowForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        required=False,
        help_text="Shown to the creator in the review thread and in the email.",
    )
    ra_number_verified = forms.BooleanField(
        required=False,
        label="I checked each subscribe-only listing's SEBI RA number on SEBI's register",
    )


class PaymentForm(forms.Form):
    reference = forms.CharField(max_length=80, help_text="UTR, cheque or receipt number.")


def _intermediate_page(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    *,
    title: str,
    items: QuerySet,
    form: forms.Form,
    action_name: str,
    **extra: Any,
) -> TemplateResponse:
    """The confirmation page between choosing an action and applying it."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": modeladmin.model._meta,
        "listings": items,
        "form": form,
        "needs_ra_check": False,
        "action_name": action_name,
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME)
        or [str(pk) for pk in items.values_list("pk", flat=True)],
        **extra,
    }
    return TemplateResponse(request, "admin/marketplace/listing_workflow.html", context)


class PlanInline(admin.TabularInline):
    model = Plan
    extra = 0
    fields = ["kind", "monthly_fee", "profit_share_percent", "is_active"]
    readonly_fields = ["kind", "monthly_fee", "profit_share_percent"]
    can_delete = False


# Shown and read-only alike (a tuple fits both admin options' types).
_VERSION_FIELDS = ("number", "state", "strategy_version", "notes", "snapshot", "approved_at")
_EVENT_FIELDS = ("created_at", "actor", "action", "from_state", "to_state", "reason")


class VersionInline(admin.TabularInline):
    model = ListingVersion
    extra = 0
    fields = _VERSION_FIELDS
    readonly_fields = _VERSION_FIELDS
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CommentInline(admin.StackedInline):
    """Reviewers add comments here; they are saved through comment_add (thread + notice)."""

    model = ReviewComment
    extra = 1
    fields = ["author", "by_reviewer", "created_at", "body"]
    readonly_fields = ["author", "by_reviewer", "created_at"]
    can_delete = False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class EventInline(admin.TabularInline):
    model = ListingEvent
    extra = 0
    fields = _EVENT_FIELDS
    readonly_fields = _EVENT_FIELDS
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _workflow_action(name: str) -> Any:
    transition = TRANSITIONS[name]

    def action(modeladmin: ListingAdmin, request: HttpRequest, queryset: QuerySet[Listing]):
        return modeladmin.workflow_step(request, queryset, name)

    action.__name__ = f"workflow_{name}"
    action.allowed_permissions = ("review_listings",)  # type: ignore[attr-defined]
    action.short_description = f"{transition.label} selected listings"  # type: ignore[attr-defined]
    return action


@admin.register(Listing)
class ListingAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "creator",
        "state",
        "visibility",
        "sebi_ra_number",
        "parrva_reference",
        "featured",
        "recommended_score",
        "updated_at",
    ]
    list_filter = ["state", "visibility", "featured", "risk_level", "underlying"]
    search_fields = ["title", "creator__email", "sebi_ra_number", "tags"]
    list_select_related = ["creator"]
    readonly_fields = [
        "creator",
        "strategy",
        "state",
        "live_version",
        "featured",
        "verified_return_percent",
        "max_drawdown_percent",
        "executions_count",
        "track_record_is_live",
        "recommended_score",
        "stats_updated_at",
        "published_at",
        "created_at",
        "updated_at",
    ]
    inlines = [PlanInline, VersionInline, CommentInline, EventInline]
    actions = [
        *[_workflow_action(name) for name in ADMIN_WORKFLOW_ACTIONS],
        "feature",
        "unfeature",
    ]
    change_form_template = "admin/marketplace/listing/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # creators list strategies from their publishing pages

    def has_review_listings_permission(self, request: HttpRequest) -> bool:
        return staff_may(user=request.user, permission=REVIEW_LISTINGS)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the audit trail points at listings; retire instead

    def get_urls(self) -> list[Any]:
        own = [
            path(
                "<int:object_id>/workflow/<slug:action>/",
                self.admin_site.admin_view(self.workflow_single),
                name="marketplace_listing_workflow",
            )
        ]
        return own + super().get_urls()

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        listing = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if listing is not None:
            extra["workflow_actions"] = actions_available(state=listing.state, actor=Actor.ADMIN)
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not ReviewComment:
            return super().save_formset(request, form, formset, change)
        author = request.user
        assert isinstance(author, User)  # the admin site only lets signed-in staff in
        for comment in formset.save(commit=False):
            try:
                services.comment_add(listing=form.instance, author=author, body=comment.body)
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
        return None

    def workflow_single(self, request: HttpRequest, object_id: int, action: str) -> HttpResponse:
        listing = get_object_or_404(Listing, pk=object_id)
        if not self.has_review_listings_permission(request):
            raise PermissionDenied("You need the permission to review listings.")
        response = self.workflow_step(request, Listing.objects.filter(pk=listing.pk), action)
        if response is None:
            return HttpResponseRedirect(
                reverse("admin:marketplace_listing_change", args=[listing.pk])
            )
        return response

    def workflow_step(
        self, request: HttpRequest, queryset: QuerySet[Listing], action: str
    ) -> HttpResponse | None:
        """Show the reason form, then apply `action` to every selected listing; each listing
        succeeds or fails on its own, with a message saying why."""
        transition = TRANSITIONS.get(action)
        if transition is None or Actor.ADMIN not in transition.actors:
            self.message_user(request, "Unknown action.", messages.ERROR)
            return None
        form = WorkflowForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            if transition.reason_required and not reason.strip():
                form.add_error("reason", "A reason is required: the creator is told why.")
            else:
                for listing in queryset:
                    try:
                        services.listing_transition(
                            listing=listing,
                            user=request.user,  # type: ignore[arg-type]
                            action=action,
                            reason=reason,
                            ra_number_verified=form.cleaned_data["ra_number_verified"],
                        )
                    except ValidationError as error:
                        self.message_user(
                            request, f"{listing}: {' '.join(error.messages)}", messages.ERROR
                        )
                    else:
                        self.message_user(request, f"{listing}: {transition.label} done.")
                return None
        return _intermediate_page(
            self,
            request,
            title=f"{transition.label}: {queryset.count()} listing(s)",
            items=queryset,
            form=form,
            action_name=f"workflow_{action}",
            transition=transition,
            needs_ra_check=action == "approve"
            and any(listing.is_subscribe_only for listing in queryset),
        )

    @admin.action(description="Feature selected listings")
    def feature(self, request: HttpRequest, queryset: QuerySet[Listing]) -> None:
        self._feature(request, queryset, featured=True)

    @admin.action(description="Stop featuring selected listings")
    def unfeature(self, request: HttpRequest, queryset: QuerySet[Listing]) -> None:
        self._feature(request, queryset, featured=False)

    def _feature(self, request: HttpRequest, queryset: QuerySet[Listing], *, featured: bool):
        for listing in queryset:
            try:
                services.listing_feature(listing=listing, admin=request.user, featured=featured)  # type: ignore[arg-type]
            except ValidationError as error:
                self.message_user(request, f"{listing}: {' '.join(error.messages)}", messages.ERROR)


def _version_action(decision: str, label: str) -> Any:
    def action(modeladmin: ListingVersionAdmin, request: HttpRequest, queryset: QuerySet):
        return modeladmin.review(request, queryset, decision, label)

    action.__name__ = f"version_{decision}"
    action.allowed_permissions = ("review_listings",)  # type: ignore[attr-defined]
    action.short_description = f"{label} selected versions"  # type: ignore[attr-defined]
    return action


@admin.register(ListingVersion)
class ListingVersionAdmin(admin.ModelAdmin):
    """Review of new versions of live listings; subscribers move on approval."""

    list_display = ["listing", "number", "state", "created_at", "approved_at"]
    list_filter = ["state"]
    readonly_fields = [
        "listing",
        "number",
        "strategy_version",
        "snapshot",
        "notes",
        "state",
        "approved_at",
        "created_at",
    ]

    def has_review_listings_permission(self, request: HttpRequest) -> bool:
        return staff_may(user=request.user, permission=REVIEW_LISTINGS)

    actions = [
        _version_action("approve", "Approve"),
        _version_action("request_changes", "Request changes on"),
        _version_action("reject", "Reject"),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def review(
        self, request: HttpRequest, queryset: QuerySet[ListingVersion], decision: str, label: str
    ) -> HttpResponse | None:
        form = WorkflowForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            if decision != "approve" and not reason.strip():
                form.add_error("reason", "A reason is required: the creator is told why.")
            else:
                for version in queryset.filter(state=VersionState.SUBMITTED):
                    try:
                        services.version_review(
                            version=version,
                            reviewer=request.user,  # type: ignore[arg-type]
                            decision=decision,
                            reason=reason,
                        )
                    except ValidationError as error:
                        self.message_user(
                            request, f"{version}: {' '.join(error.messages)}", messages.ERROR
                        )
                    else:
                        self.message_user(request, f"{version}: {label.lower()} done.")
                return None
        return _intermediate_page(
            self,
            request,
            title=f"{label} {queryset.count()} version(s)",
            items=queryset,
            form=form,
            action_name=f"version_{decision}",
        )


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "listing",
        "subscriber",
        "status",
        "monthly_fee",
        "profit_share_percent",
        "paid_until",
        "high_water_mark",
    ]
    list_filter = ["status"]
    search_fields = ["listing__title", "subscriber__email"]
    list_select_related = ["listing", "subscriber"]
    readonly_fields = [f.name for f in Subscription._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["subscription", "broker_account", "multiplier", "is_active"]
    list_select_related = ["subscription__listing", "subscription__subscriber", "broker_account"]
    readonly_fields = [f.name for f in Deployment._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = [
        "subscription",
        "kind",
        "period_start",
        "period_end",
        "amount",
        "status",
        "paid_at",
        "payment_reference",
    ]
    list_filter = ["status", "kind"]
    search_fields = [
        "subscription__subscriber__email",
        "subscription__listing__title",
        "payment_reference",
    ]
    list_select_related = ["subscription__listing", "subscription__subscriber"]
    readonly_fields = [f.name for f in Invoice._meta.fields]
    actions = ["mark_paid"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_record_payments_permission(self, request: HttpRequest) -> bool:
        return staff_may(user=request.user, permission=RECORD_PAYMENTS)

    @admin.action(
        description="Record payment received for selected invoices",
        permissions=["record_payments"],
    )
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> HttpResponse | None:
        form = PaymentForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            for invoice in queryset.filter(status=InvoiceStatus.ISSUED):
                try:
                    services.invoice_mark_paid(
                        invoice=invoice,
                        admin=request.user,  # type: ignore[arg-type]
                        reference=form.cleaned_data["reference"],
                    )
                except ValidationError as error:
                    self.message_user(
                        request, f"{invoice}: {' '.join(error.messages)}", messages.ERROR
                    )
            return None
        return _intermediate_page(
            self,
            request,
            title="Record payment",
            items=queryset,
            form=form,
            action_name="mark_paid",
        )


PAYOUT_CSV_HEADER = [
    "Month",
    "Listing ID",
    "Listing",
    "Creator's email",
    "SEBI RA number",
    "Subscriptions",
    "Fees",
    "Profit share",
    "Platform commission",
    "Creator payout",
]


@admin.register(MonthlyLedger)
class MonthlyLedgerAdmin(admin.ModelAdmin):
    list_display = [
        "month",
        "listing",
        "subscription",
        "fee",
        "profit_share",
        "commission",
        "creator_payout",
        "high_water_mark",
    ]
    list_filter = ["month"]
    list_select_related = ["listing", "subscription__subscriber"]
    readonly_fields = [f.name for f in MonthlyLedger._meta.fields]
    actions = ["payout_csv"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Payout report (CSV) for the months of the selected rows")
    def payout_csv(self, request: HttpRequest, queryset: QuerySet[MonthlyLedger]) -> HttpResponse:
        months = set(queryset.values_list("month", flat=True))
        response = csv_response("marketplace-payouts.csv")
        writer = SafeCsvWriter(response)
        writer.writerow(PAYOUT_CSV_HEADER)
        for row in selectors.payout_rows(months=months):
            writer.writerow(
                [
                    row["month"].strftime("%b %Y"),
                    row["listing_id"],
                    row["listing__title"],
                    row["listing__creator__email"],
                    row["listing__sebi_ra_number"],
                    number_in(row["subscriptions"]),
                    rupees(row["fee"]),
                    rupees(row["profit_share"]),
                    rupees(row["commission"]),
                    rupees(row["payout"]),
                ]
            )
        return response


@admin.register(ListingEvent)
class ListingEventAdmin(AuditAdmin):
    """The audit trail: read-only, never changed or deleted."""

    list_display = ["created_at", "listing", "actor", "action", "from_state", "to_state"]
    list_filter = ["action"]
    list_select_related = ["listing", "actor"]
    readonly_fields = [f.name for f in ListingEvent._meta.fields]


admin.site.register(Rating)
