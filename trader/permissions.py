"""Named staff permissions, checked here and nowhere else.

Being staff only opens Django admin; every action that changes someone else's money or trading
(approving a listing, the platform-wide kill switch, recording a payment) also needs its own
permission, granted per user or group in admin. Superusers hold them all.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

REVIEW_LISTINGS = "trader.review_listings"
OPERATE_GLOBAL_KILL_SWITCH = "trader.operate_global_kill_switch"
RECORD_PAYMENTS = "trader.record_payments"

_WHAT = {
    REVIEW_LISTINGS: "review marketplace listings",
    OPERATE_GLOBAL_KILL_SWITCH: "operate the platform-wide kill switch",
    RECORD_PAYMENTS: "record payments",
}


def staff_may(*, user: Any, permission: str) -> bool:
    """Whether `user` is active staff holding `permission` (one of the names above)."""
    if permission not in _WHAT:
        raise ValueError(f"Unknown staff permission {permission!r}.")
    return bool(
        getattr(user, "is_active", False)
        and getattr(user, "is_staff", False)
        and user.has_perm(permission)
    )


def staff_permission_require(*, user: Any, permission: str) -> None:
    """Raise PermissionDenied, saying which permission is missing, unless `staff_may`."""
    if not staff_may(user=user, permission=permission):
        raise PermissionDenied(
            f"You need the permission to {_WHAT[permission]} ({permission.split('.', 1)[1]})."
        )
