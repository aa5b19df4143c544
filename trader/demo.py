"""Demo users for `make run`: an admin, a trader with a complete profile, a creator."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from allauth.account.models import EmailAddress
from django.db import transaction

from trader.models import Profile, User


@dataclass
class DemoUsers:
    admin: User
    trader: User
    creator: User
    created: dict[str, str]  # email -> password, only for users made by this call


DEMO_ACCOUNTS = {
    "admin": ("admin@demo.local", "Asha Admin", "+919800000001", "KA", "Bengaluru", "560001"),
    "trader": ("trader@demo.local", "Ravi Trader", "+919800000002", "MH", "Mumbai", "400001"),
    "creator": (
        "creator@demo.local",
        "Meera Creator",
        "+919800000003",
        "TS",
        "Hyderabad",
        "500001",
    ),
}


@transaction.atomic
def seed_users() -> DemoUsers:
    users: dict[str, User] = {}
    created: dict[str, str] = {}
    for role, (email, name, mobile, state, city, pin) in DEMO_ACCOUNTS.items():
        user = User.objects.filter(email=email).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            if role == "admin":
                user = User.objects.create_superuser(email, password)
            else:
                user = User.objects.create_user(email, password)
            created[email] = password
            EmailAddress.objects.update_or_create(
                user=user, email=email, defaults={"verified": True, "primary": True}
            )
        Profile.objects.get_or_create(
            user=user,
            defaults={
                "full_name": name,
                "mobile": mobile,
                "state": state,
                "city": city,
                "pin_code": pin,
            },
        )
        users[role] = user
    return DemoUsers(users["admin"], users["trader"], users["creator"], created)
