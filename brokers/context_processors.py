from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from brokers.selectors import broker_accounts_needing_login


def login_banner(request: HttpRequest) -> dict[str, Any]:
    """The signed-in trader's accounts whose broker session is over, for the banner on every
    page. Lazy: the query runs only when a template reads it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"broker_accounts_needing_login": []}
    return {
        "broker_accounts_needing_login": SimpleLazyObject(
            lambda: broker_accounts_needing_login(user=user)  # type: ignore[arg-type]
        )
    }
