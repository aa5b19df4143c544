"""The kill switch's state on every page: header button and banner say who engaged it, when."""

from __future__ import annotations

import functools
from typing import Any

from django.http import HttpRequest


def kill_switch(request: HttpRequest) -> dict[str, Any]:
    """Lazy: the template calls each value when it reads it (Django calls a callable context
    variable), so the fragments htmx polls, which never show the switch, pay no query; a page
    that does reads both switches in one query, once."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from execution.protection.killswitch import can_operate_global_switch, kill_switches_engaged

    engaged = functools.cache(lambda: kill_switches_engaged(user=user))
    return {
        "kill_user": lambda: engaged().get("user"),
        "kill_global": lambda: engaged().get("global"),
        "can_global_kill": functools.cache(lambda: can_operate_global_switch(user)),
    }
