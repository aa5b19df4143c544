from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from trader.india import IST


def market_clock(request: HttpRequest) -> dict[str, Any]:
    return {"now_ist": timezone.now().astimezone(IST)}
