"""Indian formatting for every template (a builtin: no `{% load %}` needed).

{{ amount|inr }}       ₹10,00,000.00 / \u2212₹5,583.50 (a real minus)
{{ pnl|inr_pnl }}      +₹120.00 / \u2212₹56.55 (P&L: the sign of a gain shown too)
{{ count|num_in }}     12,34,567
"""

from __future__ import annotations

from typing import Any

from django import template

from trader.india import number_in, rupees

register = template.Library()


@register.filter
def inr(value: Any, decimals: int = 2) -> str:
    return rupees(value, decimals=int(decimals))


@register.filter
def inr_pnl(value: Any) -> str:
    return rupees(value, plus=True)


@register.filter
def num_in(value: Any, decimals: int | None = None) -> str:
    return number_in(value, decimals=None if decimals is None else int(decimals))


@register.filter
def pnl_class(value: Any) -> str:
    """CSS class of a P&L figure: gain, loss or flat."""
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return ""
    return "gain" if amount > 0 else "loss" if amount < 0 else "flat"
