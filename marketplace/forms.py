"""Forms parse input; the services decide. Service errors are put back on fields."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError

from brokers.models import AccountStatus, BrokerAccount
from execution.models import Underlying
from marketplace.models import Listing, Plan, PlanKind, RiskLevel, Visibility
from marketplace.models.listings import PARRVA_REGEX, SEBI_RA_REGEX
from trader.bounds import INT_MAX, SMALLINT_MAX
from trader.models import Strategy, User


def apply_service_error(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ValidationError on the form's fields (or above them)."""
    if hasattr(error, "error_dict"):
        for field, messages in error.message_dict.items():
            form.add_error(field if field in form.fields else None, messages)
    else:
        form.add_error(None, error.messages)


class ListingTermsForm(forms.Form):
    title = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}))
    tags = forms.CharField(max_length=200, required=False, help_text="Comma-separated.")
    risk_level = forms.ChoiceField(choices=RiskLevel.choices)
    capital_required = forms.DecimalField(
        min_value=Decimal("1"), max_digits=14, decimal_places=2, label="Capital needed (₹)"
    )
    min_multiplier = forms.IntegerField(
        min_value=1, max_value=SMALLINT_MAX, initial=1, label="Minimum multiplier"
    )
    visibility = forms.ChoiceField(choices=Visibility.choices, widget=forms.RadioSelect)
    sebi_ra_number = forms.RegexField(
        regex=SEBI_RA_REGEX,
        required=False,
        label="SEBI Research Analyst registration number",
        help_text="INH followed by 9 digits; required for subscribe-only listings.",
        error_messages={"invalid": "A SEBI RA registration number is INH followed by 9 digits."},
    )
    parrva_reference = forms.RegexField(
        regex=PARRVA_REGEX,
        required=False,
        label="PaRRVA verification reference",
        help_text=(
            "If SEBI's Past Risk and Return Verification Agency verified this strategy's "
            "figures, its reference; shown on the listing."
        ),
        error_messages={
            "invalid": "4 to 40 letters, digits, '/', '-' or '.', as PaRRVA issued it."
        },
    )


class ListingCreateForm(ListingTermsForm):
    # Each form narrows the choices to its user's own in __init__.
    strategy = forms.ModelChoiceField(queryset=Strategy.objects.none(), empty_label=None)
    plan_kind = forms.ChoiceField(choices=PlanKind.choices, label="Pricing plan")
    monthly_fee = forms.DecimalField(
        max_digits=10, decimal_places=2, initial=0, label="Monthly fee (₹)"
    )
    profit_share_percent = forms.DecimalField(
        max_digits=5,
        decimal_places=2,
        initial=0,
        label="Profit share (%)",
        help_text="0 to 50 %, only on profit above the subscriber's high-water mark.",
    )

    field_order = ["strategy", "title"]

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the creator's own strategies are offered; the service checks again.
        strategy = self.fields["strategy"]
        assert isinstance(strategy, forms.ModelChoiceField)
        strategy.queryset = Strategy.objects.filter(owner=user).exclude(status="archived")


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class CommentForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Comment")


class VersionForm(forms.Form):
    notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, label="What changed"
    )


class PlanChoiceField(forms.ModelChoiceField):
    """Plans are offered by their description (fee and profit share in words)."""

    def label_from_instance(self, obj: Plan) -> str:
        return obj.description


class SubscribeForm(forms.Form):
    plan = PlanChoiceField(queryset=Plan.objects.none(), widget=forms.RadioSelect, empty_label=None)

    def __init__(self, *args, listing: Listing, **kwargs):
        super().__init__(*args, **kwargs)
        plan = self.fields["plan"]
        assert isinstance(plan, forms.ModelChoiceField)
        plan.queryset = Plan.objects.filter(listing=listing, is_active=True)


class DeploymentTermsForm(forms.Form):
    multiplier = forms.IntegerField(min_value=1, max_value=INT_MAX, initial=1)
    max_daily_loss = forms.DecimalField(
        required=False,
        min_value=Decimal("1"),
        max_digits=14,
        decimal_places=2,
        label="Daily loss limit (₹, optional)",
    )


class DeploymentForm(DeploymentTermsForm):
    # Only accounts that can trade now (logged in); the service checks again.
    broker_account = forms.ModelChoiceField(
        queryset=BrokerAccount.objects.none(),
        empty_label="Choose an account",
        error_messages={"invalid_choice": "Choose one of your logged-in broker accounts."},
    )

    field_order = ["broker_account", "multiplier", "max_daily_loss"]

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        broker_account = self.fields["broker_account"]
        assert isinstance(broker_account, forms.ModelChoiceField)
        broker_account.queryset = BrokerAccount.objects.filter(
            owner=user, status=AccountStatus.CONNECTED
        ).order_by("broker", "label")


class RatingForm(forms.Form):
    stars = forms.TypedChoiceField(coerce=int, choices=[(n, f"{n} ★") for n in range(5, 0, -1)])
    review = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class BrowseForm(forms.Form):
    q = forms.CharField(required=False, label="Search")
    underlying = forms.ModelChoiceField(
        queryset=Underlying.objects.filter(is_active=True).order_by("symbol"),
        to_field_name="symbol",
        required=False,
        empty_label="Any underlying",
        error_messages={"invalid_choice": "Choose an underlying from the list."},
    )
    pricing = forms.ChoiceField(choices=[("", "Any price"), *PlanKind.choices], required=False)
    risk = forms.ChoiceField(choices=[("", "Any risk"), *RiskLevel.choices], required=False)
    max_capital = forms.DecimalField(
        required=False, min_value=0, max_digits=14, decimal_places=2, label="Capital up to (₹)"
    )

    def __init__(self, data=None, *args, **kwargs):
        # Symbols are upper case; a typed or old link's "nifty" still finds NIFTY.
        if data is not None and data.get("underlying"):
            data = data.copy()
            data["underlying"] = data["underlying"].strip().upper()
        super().__init__(data, *args, **kwargs)

    sort = forms.ChoiceField(
        choices=[
            ("recommended", "Recommended"),
            ("newest", "Newest"),
            ("subscribers", "Most subscribers"),
            ("return", "Verified return"),
        ],
        required=False,
    )


class PlanForm(forms.Form):
    kind = forms.ChoiceField(choices=PlanKind.choices, label="Pricing plan")
    monthly_fee = forms.DecimalField(
        min_value=0, max_digits=10, decimal_places=2, initial=0, label="Monthly fee (₹)"
    )
    profit_share_percent = forms.DecimalField(
        min_value=0, max_digits=5, decimal_places=2, initial=0, label="Profit share (%)"
    )


class PlanPriceForm(PlanForm):
    kind = None  # type: ignore[assignment]  # a plan's kind never changes
