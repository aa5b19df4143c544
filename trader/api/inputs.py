"""What the API's writes take: bodies parsed into the services' plain data.

These serializers only parse (types, choices, the columns' bounds); every rule a value must
satisfy is the service's (trader.strategies.specs through strategy_create / strategy_update,
marketplace.services), so the API refuses a bad value with the wizard's own words. Errors of
both come back flat, keyed by the field's path: `legs.0.lots`, `allocations.1.multiplier`,
`legs` (about the legs as a whole), `non_field_errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from execution.models import Underlying
from trader.api.serializers import StrictCharField
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
from trader.models.strategies import MON_TO_FRI_MASK
from trader.strategies.specs import AllocationSpec, LegSpec, StrategySpec, weekdays_to_mask

# A bound on what is parsed at all; the rules (at most 8 legs…) are the service's, in words.
MAX_ITEMS = 50


def _decimal(digits: int, places: int, **kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=digits, decimal_places=places, required=False, allow_null=True, **kwargs
    )


class LegInput(serializers.Serializer):
    side = serializers.ChoiceField(choices=Side.choices)
    option_type = serializers.ChoiceField(choices=OptionType.choices)
    lots = serializers.IntegerField(max_value=INT_MAX, min_value=-INT_MAX)
    expiry_choice = serializers.ChoiceField(
        choices=ExpiryChoice.choices, required=False, default=ExpiryChoice.CURRENT_WEEK
    )
    strike_mode = serializers.ChoiceField(
        choices=StrikeMode.choices, required=False, default=StrikeMode.ATM_OFFSET
    )
    strike_offset = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=-SMALLINT_MAX,
        max_value=SMALLINT_MAX,
        help_text="Strike steps from ATM (atm mode): 0 is ATM, 2 is two steps away.",
    )
    strike_price = _decimal(10, 2, help_text="The strike (exact mode).")
    target_premium = _decimal(10, 2, help_text="Premium in rupees to aim for (premium mode).")
    target_delta = _decimal(4, 3, help_text="Delta between 0 and 1 (delta mode).")
    stop_loss = _decimal(10, 2)
    stop_loss_unit = serializers.ChoiceField(
        choices=ExitUnit.choices, required=False, default=ExitUnit.POINTS
    )
    target = _decimal(10, 2)
    target_unit = serializers.ChoiceField(
        choices=ExitUnit.choices, required=False, default=ExitUnit.POINTS
    )


class AllocationInput(serializers.Serializer):
    broker_account_id = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX)
    sizing = serializers.ChoiceField(
        choices=AllocationSizing.choices, required=False, default=AllocationSizing.MULTIPLIER
    )
    multiplier = _decimal(6, 2, help_text="Every leg's lots times this (multiplier sizing).")
    fixed_lots = serializers.IntegerField(
        required=False,
        allow_null=True,
        max_value=INT_MAX,
        min_value=-INT_MAX,
        help_text="Lots per leg (fixed sizing).",
    )
    priority = serializers.IntegerField(
        required=False, min_value=-SMALLINT_MAX, max_value=SMALLINT_MAX, default=1
    )
    enabled = serializers.BooleanField(required=False, default=True)


class StrategyInput(serializers.Serializer):
    """A whole strategy as the wizard builds it: basics, legs, times and days, risk and the
    broker accounts it trades on."""

    name = StrictCharField(max_length=80)
    description = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)
    underlying = StrictCharField(max_length=30, help_text="The index's symbol, e.g. NIFTY.")
    kind = serializers.ChoiceField(
        choices=StrategyKind.choices, required=False, default=StrategyKind.INTRADAY
    )
    legs = LegInput(many=True, max_length=MAX_ITEMS)  # type: ignore[call-arg]
    entry_time = serializers.TimeField(help_text="IST, to the second, e.g. 09:20:00.")
    exit_time = serializers.TimeField(help_text="IST, to the second, e.g. 15:15:00.")
    trading_days = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        required=False,
        max_length=7,
        help_text="Weekdays, 0 = Monday … 6 = Sunday (weekends trade only on special "
        "sessions). Default Monday to Friday.",
    )
    leg_failure_policy = serializers.ChoiceField(
        choices=LegFailurePolicy.choices, required=False, default=LegFailurePolicy.UNWIND
    )
    hedge_confirmation = serializers.ChoiceField(
        choices=HedgeConfirmation.choices, required=False, default=HedgeConfirmation.ACK
    )
    stop_loss_mtm = _decimal(12, 2, help_text="Combined stop-loss in rupees.")
    target_mtm = _decimal(12, 2, help_text="Combined target in rupees.")
    trailing_stop_mtm = _decimal(12, 2, help_text="Trailing stop in rupees.")
    allocations = AllocationInput(  # type: ignore[call-arg]
        many=True, max_length=MAX_ITEMS, required=False
    )

    def spec(self) -> StrategySpec:
        data = self.validated_data
        # An unknown symbol reaches the service as no underlying: it says so in its words.
        underlying = (
            Underlying.objects.filter(symbol=data["underlying"].strip().upper(), is_active=True)
            .values_list("pk", flat=True)
            .first()
        )
        days = data.get("trading_days")
        return StrategySpec(
            name=data["name"],
            description=data["description"],
            underlying_id=underlying or 0,
            kind=data["kind"],
            legs=[_given(LegSpec, leg) for leg in data["legs"]],
            entry_time=data["entry_time"],
            exit_time=data["exit_time"],
            trading_days=MON_TO_FRI_MASK if days is None else weekdays_to_mask(days),
            leg_failure_policy=data["leg_failure_policy"],
            hedge_confirmation=data["hedge_confirmation"],
            stop_loss_mtm=data.get("stop_loss_mtm"),
            target_mtm=data.get("target_mtm"),
            trailing_stop_mtm=data.get("trailing_stop_mtm"),
            allocations=[_allocation(a) for a in data.get("allocations") or []],
        )


def _given(cls: Any, values: Mapping[str, Any]) -> Any:
    """`cls` from the values given; what was left out keeps the dataclass's default."""
    return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


def _allocation(values: Mapping[str, Any]) -> AllocationSpec:
    fixed = values["sizing"] == AllocationSizing.FIXED
    return AllocationSpec(
        broker_account_id=values["broker_account_id"],
        sizing=values["sizing"],
        # As the wizard's allocation form: only the sizing's own parameter is kept.
        multiplier=None if fixed else values.get("multiplier"),
        fixed_lots=values.get("fixed_lots") if fixed else None,
        priority=values["priority"],
        enabled=values["enabled"],
    )


class PaperTestInput(serializers.Serializer):
    price_account_id = serializers.IntegerField(
        min_value=1,
        max_value=BIGINT_MAX,
        required=False,
        allow_null=True,
        help_text="One of your connected live accounts whose quotes price the test (“paper on "
        "live prices”); left out or null, the simulated market. No order goes to it.",
    )


class RunExitInput(serializers.Serializer):
    reason = StrictCharField(max_length=200, required=False, allow_blank=True, default="")


class SubscribeInput(serializers.Serializer):
    plan = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX, help_text="A plan's id.")
    confirm = serializers.BooleanField(
        required=False,
        default=False,
        help_text="false: see the price and billing dates, nothing is saved; true: subscribe.",
    )


class DeploymentTermsInput(serializers.Serializer):
    multiplier = serializers.IntegerField(min_value=1, max_value=INT_MAX, default=1)
    max_daily_loss = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=1,
        required=False,
        allow_null=True,
        help_text="Stop this deployment for the day once its loss reaches this many rupees.",
    )


class DeploymentInput(DeploymentTermsInput):
    broker_account_id = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX)


def flat_errors(detail: Any, path: str = "") -> dict[str, list[str]]:
    """DRF's nested errors ({legs: [{}, {lots: [..]}]}) flattened to {"legs.1.lots": [..]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            name = key if not path else (path if key == "non_field_errors" else f"{path}.{key}")
            for field, messages in flat_errors(value, name).items():
                out.setdefault(field, []).extend(messages)
    elif isinstance(detail, list) and any(isinstance(item, Mapping | list) for item in detail):
        for index, item in enumerate(detail):
            for field, messages in flat_errors(item, f"{path}.{index}").items():
                out.setdefault(field, []).extend(messages)
    else:
        items = detail if isinstance(detail, list) else [detail]
        out[path or "non_field_errors"] = [str(item) for item in items]
    return out


def service_errors(error: DjangoValidationError) -> dict[str, list[str]]:
    """A service's ValidationError in the same flat shape: the wizard's formset keys
    (`legs-0-lots`) become paths (`legs.0.lots`), `__all__` is non_field_errors."""
    if not hasattr(error, "error_dict"):
        return {"non_field_errors": list(error.messages)}
    out: dict[str, list[str]] = {}
    for key, messages in error.message_dict.items():
        name = "non_field_errors" if key == "__all__" else key.replace("-", ".")
        if name.startswith("allocations.") and name.endswith(".broker_account"):
            name += "_id"  # the form's field is named broker_account; the API's is the id
        out.setdefault(name, []).extend(messages)
    return out
