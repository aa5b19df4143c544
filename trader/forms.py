from __future__ import annotations

from django import forms

from trader.india import (
    STATE_CHOICES,
    normalize_mobile,
    normalize_pan,
    normalize_pin,
    normalize_state,
)


class StateField(forms.CharField):
    """Accepts a current or legacy ISO code or a name ("Odisha", "OR", "IN-OD")."""

    def to_python(self, value: object) -> str | None:
        text = super().to_python(value)
        return normalize_state(text) if text else text


class ProfileForm(forms.Form):
    full_name = forms.CharField(max_length=120, label="Full name")
    mobile = forms.CharField(
        max_length=20,
        label="Mobile number",
        help_text="10 digits starting with 6-9; +91 or a leading 0 is fine.",
    )
    state = StateField(
        label="State or union territory",
        widget=forms.Select(choices=[("", "Choose…"), *STATE_CHOICES]),
    )
    city = forms.CharField(max_length=80)
    pin_code = forms.CharField(max_length=7, label="PIN code")
    pan = forms.CharField(
        max_length=12, required=False, label="PAN (optional)", help_text="For example ABCDE1234F."
    )

    def clean_full_name(self) -> str:
        name = " ".join(self.cleaned_data["full_name"].split())
        if len(name) < 2:
            raise forms.ValidationError("Enter your full name as on your broker account.")
        return name

    def clean_mobile(self) -> str:
        return normalize_mobile(self.cleaned_data["mobile"])

    def clean_pin_code(self) -> str:
        return normalize_pin(self.cleaned_data["pin_code"])

    def clean_pan(self) -> str:
        return normalize_pan(self.cleaned_data.get("pan", ""))
