"""Forms of the engine's trader pages: the option chain's choices, and a paper test's price
source."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms

from execution.chain import MAX_STRIKES_EACH_SIDE, SIMULATOR, chain_accounts_for_user


class OptionChainForm(forms.Form):
    """Which chain to show. Expiries are the underlying's listed ones on `day`."""

    underlying: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None, to_field_name="symbol", empty_label=None
    )
    expiry = forms.DateField(required=False)
    source = forms.ChoiceField(label="Prices from")
    strikes = forms.IntegerField(
        label="Strikes each side", min_value=1, max_value=MAX_STRIKES_EACH_SIDE, initial=10
    )

    def __init__(self, data: Any = None, *, user: Any, day: date) -> None:
        from execution.models import Underlying

        super().__init__(data)
        self.day = day
        field: Any = self.fields["underlying"]
        field.queryset = Underlying.objects.filter(is_active=True)
        accounts = chain_accounts_for_user(user=user)
        source: Any = self.fields["source"]
        source.choices = [(SIMULATOR, "Simulated market")] + [
            (str(a.pk), f"{a.label} ({a.get_broker_display()})") for a in accounts
        ]

    def expiries(self, underlying: Any) -> list[date]:
        from execution import contracts

        return contracts.expiries(underlying, self.day)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        underlying = cleaned.get("underlying")
        if underlying is None:
            return cleaned
        listed = self.expiries(underlying)
        if not listed:
            raise forms.ValidationError(f"{underlying} has no listed expiry on {self.day}.")
        expiry = cleaned.get("expiry")
        if expiry is None:
            cleaned["expiry"] = listed[0]
        elif expiry not in listed:
            self.add_error("expiry", f"{underlying} has no contracts expiring on {expiry}.")
        return cleaned


class PaperPriceSourceForm(forms.Form):
    """A paper test's price source: the simulator, or one of the owner's connected live
    accounts ("paper on live prices")."""

    price_account: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None,
        required=False,
        empty_label="Simulated market",
        label="Prices from",
    )

    def __init__(self, data: Any = None, *, user: Any) -> None:
        super().__init__(data)
        field: Any = self.fields["price_account"]
        field.queryset = chain_accounts_for_user(user=user)
        field.error_messages["invalid_choice"] = (
            "Choose one of your own live accounts that is connected now."
        )
