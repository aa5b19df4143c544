from __future__ import annotations

from typing import Any

from django import forms

from brokers.models import Broker
from brokers.registry import adapter_class, is_available


def _broker_choices() -> list[tuple[str, str]]:
    # Real brokers only: the paper broker has its own one-click button.
    return [
        (value, label)
        for value, label in Broker.choices
        if value != Broker.PAPER and is_available(value)
    ]


class AccountSettingsFields(forms.Form):
    label = forms.CharField(max_length=60, help_text="Your name for this account.")
    broker_user_id = forms.CharField(
        label="Broker client ID", max_length=40, required=False, help_text="Your ID at the broker."
    )
    api_key = forms.CharField(label="API key", max_length=200, required=False)
    api_secret = forms.CharField(
        label="API secret",
        max_length=200,
        required=False,
        widget=forms.PasswordInput(render_value=False),
    )
    static_ip_primary = forms.GenericIPAddressField(
        label="Registered static IP", required=False, help_text="As registered with the broker."
    )
    static_ip_secondary = forms.GenericIPAddressField(label="Secondary static IP", required=False)
    algo_id = forms.CharField(label="Exchange algo ID", max_length=40, required=False)
    orders_per_second = forms.IntegerField(
        label="Orders per second",
        min_value=1,
        max_value=100,
        initial=10,
        help_text="SEBI allows 10 without exchange registration.",
    )

    def __init__(self, *args: Any, owner: Any, account_id: int | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.account_id = account_id

    def clean_label(self) -> str:
        label: str = self.cleaned_data["label"].strip()
        taken = self.owner.broker_accounts.filter(label=label)
        if self.account_id is not None:
            taken = taken.exclude(pk=self.account_id)
        if taken.exists():
            raise forms.ValidationError("You already have an account with this label.")
        return label

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        primary, secondary = data.get("static_ip_primary"), data.get("static_ip_secondary")
        if secondary and not primary:
            self.add_error("static_ip_secondary", "Enter the primary static IP first.")
        elif secondary and secondary == primary:
            self.add_error("static_ip_secondary", "The secondary IP must differ from the primary.")
        return data


class ConnectForm(AccountSettingsFields):
    field_order = ["broker", "label"]
    broker = forms.ChoiceField(choices=())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Kept typed for the page, which shows each broker's callback URI.
        self.broker_choices = _broker_choices()
        broker = self.fields["broker"]
        assert isinstance(broker, forms.ChoiceField)
        broker.choices = self.broker_choices

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        broker = data.get("broker")
        if broker and adapter_class(broker).capabilities.needs_app_credentials:
            for name in ("api_key", "api_secret"):
                if not data.get(name):
                    self.add_error(name, f"{Broker(broker).label} needs your app's {name[4:]}.")
        return data


class AccountSettingsForm(AccountSettingsFields):
    """Edit an account; blank key/secret keep the stored ones (they are never shown)."""
