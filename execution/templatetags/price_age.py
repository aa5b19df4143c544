"""The age of a price on the run page: `{{ position.last_price_at|price_age }}` ("4 s old"),
and the freshness bound beyond which a price fires no exit."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

from execution import conf

register = template.Library()


def _seconds(value: datetime) -> int:
    return max(0, int((timezone.now() - value).total_seconds()))


@register.filter
def price_age(value: datetime | None) -> str:
    if value is None:
        return "not marked"
    seconds = _seconds(value)
    if seconds < 120:
        return f"{seconds} s old"
    if seconds < 7200:
        return f"{seconds // 60} min old"
    return f"{seconds // 3600} h old"


@register.filter
def price_is_stale(value: datetime | None) -> bool:
    return value is None or _seconds(value) > conf.quote_max_age_seconds()


@register.simple_tag
def quote_max_age() -> str:
    return f"{conf.quote_max_age_seconds():g}"
