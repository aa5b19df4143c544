"""Indian formatting for every template (a builtin: no `{% load %}` needed).

{{ amount|inr }}       ₹10,00,000.00 / \u2212₹5,583.50 (a real minus)
{{ pnl|inr_pnl }}      +₹120.00 / \u2212₹56.55 (P&L: the sign of a gain shown too)
{{ count|num_in }}     12,34,567
{{ moment|clock_ms }}  11:00:15.712 (IST, to the millisecond)
{{ lag|ms }}           +1,150.3 ms (after T; a real minus before it)
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

from trader.india import MINUS, number_in, rupees

register = template.Library()


@register.filter
def inr(value: Any, decimals: int = 2) -> str:
    return rupees(value, decimals=int(decimals))


@register.filter
def inr_pnl(value: Any) -> str:
    return rupees(value, plus=True)


@register.filter
def inr_abs(value: Any) -> str:
    """The amount without its sign, for sentences that say the direction ("₹5,583.50 paid")."""
    if value is None or value == "":
        return ""
    return rupees(abs(Decimal(str(value))))


@register.filter
def num_in(value: Any, decimals: int | None = None) -> str:
    return number_in(value, decimals=None if decimals is None else int(decimals))


@register.filter
def clock_ms(value: Any) -> str:
    """An instant as an IST clock time to the millisecond (order timings); '' for None."""
    if value is None:
        return ""
    from django.utils import timezone

    local = timezone.localtime(value)
    return f"{local:%H:%M:%S}.{local.microsecond // 1000:03d}"


@register.filter
def ms(value: Any) -> str:
    """A time from T in milliseconds, one decimal, Indian grouping, signed (+1,150.3 ms,
    or minus 3.2 ms, a real minus, for an order that left before T); '' for None."""
    if value is None or value == "":
        return ""
    text = number_in(value, decimals=1)
    return f"{'' if text.startswith(MINUS) else '+'}{text} ms"


@register.filter
def pnl_class(value: Any) -> str:
    """CSS class of a P&L figure: gain, loss or flat."""
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return ""
    return "gain" if amount > 0 else "loss" if amount < 0 else "flat"


@register.filter
def expiry_label(value: Any) -> str:
    """ "current_week" as people say it ("Current week"), for snapshots kept as plain data."""
    from trader.models.strategies import ExpiryChoice

    return dict(ExpiryChoice.choices).get(value, str(value).replace("_", " ").capitalize())


@register.filter
def strike_label(leg: Any) -> str:
    """A snapshot leg's strike in words: "ATM", "2 steps above ATM", "premium ≈ ₹45.00"."""
    mode = leg.get("strike_mode")
    if mode == "atm":
        offset = int(leg.get("strike_offset") or 0)
        if not offset:
            return "ATM"
        steps = "step" if abs(offset) == 1 else "steps"
        return f"{abs(offset)} {steps} {'above' if offset > 0 else 'below'} ATM"
    if mode == "exact":  # strikes are written without grouping (24350), as traders do
        return f"{Decimal(str(leg.get('strike_price'))):f}".rstrip("0").rstrip(".")
    if mode == "premium":
        return f"premium \u2248 {rupees(leg.get('target_premium'))}"
    return f"delta \u2248 {leg.get('target_delta')}"
