"""Wizard forms. They parse and attach messages to fields; the rules live in specs.py."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.forms import BaseFormSet, formset_factory

from brokers.models import AccountStatus, BrokerAccount
from execution.models import Underlying
from trader.bounds import BIGINT_MAX, INT_MAX, SMALLINT_MAX
from trader.models import (
    AllocationSizing,
    ExitUnit,
    ExpiryChoice,
    HedgeConfirmation,
    LegFailurePolicy,
    OptionType,
    Side,
    StrategyKind,
    StrikeMode,
)
from trader.models.strategies import MAX_LEGS
from trader.strategies.specs import (
    WEEKDAY_NAMES,
    AllocationSpec,
    LegSpec,
    Limits,
    allocation_errors,
    allocations_total_errors,
    leg_errors,
    legs_errors,
    money_errors,
    times_errors,
)
from trader.strategies.templates_catalog import TEMPLATES

TIME_FORMATS = ["%H:%M:%S", "%H:%M"]
CUSTOM = "custom"


def _attach(form: forms.BaseForm, errors: dict[str, list[str]]) -> None:
    for name, messages in errors.items():
        for message in messages:
            form.add_error(name if name in form.fields else None, message)


class TemplateForm(forms.Form):
    template = forms.ChoiceField(
        choices=[(t.key, t.name) for t in TEMPLATES] + [(CUSTOM, "Start from scratch")],
        widget=forms.RadioSelect,
        error_messages={"required": "Pick a template, or start from scratch."},
    )


class BasicsForm(forms.Form):
    name = forms.CharField(max_length=80)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    underlying = forms.ModelChoiceField(
        queryset=Underlying.objects.filter(is_active=True).order_by("symbol"),
        error_messages={"invalid_choice": "Choose an underlying from the list."},
    )
    kind = forms.ChoiceField(choices=StrategyKind.choices, initial=StrategyKind.INTRADAY)


class LegForm(forms.Form):
    side = forms.ChoiceField(choices=Side.choices)
    option_type = forms.ChoiceField(choices=OptionType.choices)
    lots = forms.IntegerField(initial=1, max_value=INT_MAX)
    expiry_choice = forms.ChoiceField(choices=ExpiryChoice.choices)
    # Short words in the legs table, whose next columns name the parameter (Steps, Strike,
    # Premium, Delta): the model's longer labels were cut off at 1366 px.
    strike_mode = forms.ChoiceField(
        choices=[
            (StrikeMode.ATM_OFFSET, "ATM ± steps"),
            (StrikeMode.EXACT, "Exact strike"),
            (StrikeMode.PREMIUM, "Premium ≈ ₹X"),
            (StrikeMode.DELTA, "Delta ≈ D"),
        ]
    )
    strike_offset = forms.IntegerField(
        required=False, min_value=-SMALLINT_MAX, max_value=SMALLINT_MAX, label="Steps from ATM"
    )
    strike_price = forms.DecimalField(required=False, max_digits=10, decimal_places=2)
    target_premium = forms.DecimalField(
        required=False, max_digits=10, decimal_places=2, label="Premium ₹"
    )
    target_delta = forms.DecimalField(required=False, max_digits=4, decimal_places=3)
    stop_loss = forms.DecimalField(required=False, max_digits=10, decimal_places=2)
    stop_loss_unit = forms.ChoiceField(choices=ExitUnit.choices)
    target = forms.DecimalField(required=False, max_digits=10, decimal_places=2)
    target_unit = forms.ChoiceField(choices=ExitUnit.choices)

    def __init__(
        self,
        *args: Any,
        strike_step: Decimal | None = None,
        limits: Limits | None = None,
        symbol: str = "",
        expiry_kinds: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.strike_step, self.limits, self.symbol = strike_step, limits, symbol
        self.expiry_kinds = expiry_kinds
        if expiry_kinds:
            # Offer only the expiries this underlying lists (the widget's choices); a posted
            # other one still reaches leg_errors, which refuses it naming the underlying.
            widget = self.fields["expiry_choice"].widget
            assert isinstance(widget, forms.Select)
            widget.choices = [c for c in ExpiryChoice.choices if c[0] in expiry_kinds]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            _attach(
                self,
                leg_errors(
                    self.spec(),
                    strike_step=self.strike_step,
                    limits=self.limits,
                    symbol=self.symbol,
                    expiry_kinds=self.expiry_kinds,
                ),
            )
        return data

    def spec(self) -> LegSpec:
        data = self.cleaned_data
        values: dict[str, Any] = {name: data.get(name) for name in LegSpec.__dataclass_fields__}
        return LegSpec(**values)


class BaseLegFormSet(BaseFormSet):
    def __init__(self, *args: Any, needs_distinct_expiries: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.needs_distinct_expiries = needs_distinct_expiries

    def kept_forms(self) -> list[LegForm]:
        return [
            form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]

    def clean(self) -> None:
        if any(self.errors):
            return
        limits = self.form_kwargs.get("limits")
        messages = legs_errors(
            self.specs(), limits=limits, needs_distinct_expiries=self.needs_distinct_expiries
        )
        if messages:
            raise forms.ValidationError(messages)

    def specs(self) -> list[LegSpec]:
        return [form.spec() for form in self.kept_forms()]


# formset_factory returns a subclass of `formset`; the stubs only say BaseFormSet.
LegFormSet = cast(
    type[BaseLegFormSet],
    formset_factory(
        LegForm, formset=BaseLegFormSet, extra=0, can_delete=True, max_num=MAX_LEGS + 1000
    ),
)


class ScheduleForm(forms.Form):
    entry_time = forms.TimeField(
        input_formats=TIME_FORMATS,
        help_text="IST, to the second, e.g. 09:20:00",
        widget=forms.TimeInput(format="%H:%M:%S", attrs={"step": 1}),
    )
    exit_time = forms.TimeField(
        input_formats=TIME_FORMATS,
        help_text="IST, to the second, e.g. 15:15:00",
        widget=forms.TimeInput(format="%H:%M:%S", attrs={"step": 1}),
    )
    trading_days = forms.TypedMultipleChoiceField(
        choices=[(i, name) for i, name in enumerate(WEEKDAY_NAMES)],
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one day to trade on."},
        help_text="Holidays are skipped by the trading calendar. Saturday and Sunday only run "
        "on special sessions the exchange declares.",
    )

    def __init__(
        self,
        *args: Any,
        session: tuple[datetime.time, datetime.time],
        on: datetime.date,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.session, self.on = session, on

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        _attach(
            self,
            times_errors(
                data.get("entry_time"), data.get("exit_time"), session=self.session, on=self.on
            ),
        )
        return data


class RiskForm(forms.Form):
    stop_loss_mtm = forms.DecimalField(
        required=False, max_digits=12, decimal_places=2, label="Combined stop-loss ₹"
    )
    target_mtm = forms.DecimalField(
        required=False, max_digits=12, decimal_places=2, label="Combined target ₹"
    )
    trailing_stop_mtm = forms.DecimalField(
        required=False,
        max_digits=12,
        decimal_places=2,
        label="Trailing stop ₹",
        help_text="Exit when the combined MTM falls this much below its best level.",
    )
    leg_failure_policy = forms.ChoiceField(
        choices=LegFailurePolicy.choices,
        widget=forms.RadioSelect,
        label="If a hedge leg cannot be placed",
    )
    hedge_confirmation = forms.ChoiceField(
        choices=HedgeConfirmation.choices,
        widget=forms.RadioSelect,
        initial=HedgeConfirmation.ACK,
        required=False,  # left out: the safe choice, waiting
        label="At entry, the short legs",
        help_text=(
            "Waiting costs one round trip to the broker (about 0.1 s) and means a short is "
            "never sent when its hedge was refused. Without waiting, all legs leave together, "
            "hedges first, but the broker may fill a short before its hedge."
        ),
    )

    def clean_hedge_confirmation(self) -> str:
        return str(self.cleaned_data.get("hedge_confirmation") or HedgeConfirmation.ACK)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        _attach(
            self,
            money_errors(
                {k: data.get(k) for k in ("stop_loss_mtm", "target_mtm", "trailing_stop_mtm")}
            ),
        )
        return data


class AllocationForm(forms.Form):
    broker_account = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=BIGINT_MAX)
    include = forms.BooleanField(required=False, label="Trade on this account")
    sizing = forms.ChoiceField(choices=AllocationSizing.choices)
    multiplier = forms.DecimalField(required=False, max_digits=6, decimal_places=2)
    fixed_lots = forms.IntegerField(required=False, max_value=INT_MAX)
    priority = forms.IntegerField(initial=1, min_value=1, max_value=SMALLINT_MAX)

    def __init__(
        self,
        *args: Any,
        accounts: dict[int, BrokerAccount] | None = None,
        legs: list[LegSpec] | None = None,
        limits: Limits | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.accounts, self.legs, self.limits = accounts or {}, legs or [], limits

    @property
    def account(self) -> BrokerAccount | None:
        # Whatever was posted or given as initial; int() below refuses anything else.
        value: Any = self.data.get(self.add_prefix("broker_account")) if self.is_bound else None
        value = value or self.initial.get("broker_account")
        try:
            return self.accounts.get(int(value))
        except (TypeError, ValueError):
            return None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors or not data.get("include"):
            return data
        account = self.accounts.get(data["broker_account"])
        if account is None:
            self.add_error(None, "Choose one of your own broker accounts.")
            return data
        if account.status == AccountStatus.DISABLED:
            self.add_error(None, f"{account.label} is disabled: enable it or leave it out.")
        _attach(self, allocation_errors(self.spec(), legs=self.legs, limits=self.limits))
        return data

    def spec(self) -> AllocationSpec:
        data = self.cleaned_data
        fixed = data.get("sizing") == AllocationSizing.FIXED
        return AllocationSpec(
            broker_account_id=data["broker_account"],
            # Required fields: spec() only runs once the form has validated.
            sizing=data["sizing"],
            multiplier=None if fixed else data.get("multiplier"),
            fixed_lots=data.get("fixed_lots") if fixed else None,
            priority=data["priority"],
        )


class BaseAllocationFormSet(BaseFormSet):
    def clean(self) -> None:
        if any(self.errors):
            return
        messages = allocations_total_errors(
            self.specs(),
            legs=self.form_kwargs.get("legs") or [],
            limits=self.form_kwargs.get("limits"),
        )
        if messages:
            raise forms.ValidationError(messages)

    def specs(self) -> list[AllocationSpec]:
        return [form.spec() for form in self.forms if form.cleaned_data.get("include")]


AllocationFormSet = cast(
    type[BaseAllocationFormSet],
    formset_factory(AllocationForm, formset=BaseAllocationFormSet, extra=0),
)


class RiskLimitForm(forms.Form):
    max_lots_per_order = forms.IntegerField(label="Max lots per order", max_value=INT_MAX)
    max_lots_per_strategy = forms.IntegerField(label="Max lots per strategy", max_value=INT_MAX)
    max_open_strategies = forms.IntegerField(label="Max active strategies", max_value=INT_MAX)
    max_daily_loss = forms.DecimalField(max_digits=14, decimal_places=2, label="Max daily loss ₹")


def time_text(value: datetime.time) -> str:
    return value.strftime("%H:%M:%S")
