"""The kill switch's state on every page: header button and banner say who engaged it, when."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def kill_switch(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from execution.protection.killswitch import can_operate_global_switch, kill_switches_engaged

    switches = kill_switches_engaged(user=user)
    return {
        "kill_user": switches.get("user"),
        "kill_global": switches.get("global"),
        "can_global_kill": can_operate_global_switch(user),
    }
