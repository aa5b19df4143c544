"""Trader domain: users (email login) and their Indian profile."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone

from trader.india import STATE_CHOICES, STATE_NAMES


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField("email address", unique=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        profile = getattr(self, "profile", None)
        return profile.full_name if profile and profile.full_name else self.email

    def get_short_name(self) -> str:
        return self.get_full_name().split(" ")[0]


class Profile(models.Model):
    """A trader's identity as brokers and SEBI expect it; complete before connecting a broker."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="profile")
    full_name = models.CharField(max_length=120, blank=True)
    mobile = models.CharField(
        max_length=13, blank=True, help_text="E.164, for example +919876543210."
    )
    state = models.CharField(
        "state or union territory", max_length=2, choices=STATE_CHOICES, blank=True
    )
    city = models.CharField(max_length=80, blank=True)
    pin_code = models.CharField("PIN code", max_length=6, blank=True)
    pan = models.CharField("PAN", max_length=10, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(mobile="") | models.Q(mobile__regex=r"^\+91[6-9][0-9]{9}$"),
                name="profile_mobile_e164_indian",
            ),
            models.CheckConstraint(
                condition=models.Q(pin_code="") | models.Q(pin_code__regex=r"^[1-9][0-9]{5}$"),
                name="profile_pin_code_format",
            ),
            models.CheckConstraint(
                condition=models.Q(pan="") | models.Q(pan__regex=r"^[A-Z]{5}[0-9]{4}[A-Z]$"),
                name="profile_pan_format",
            ),
        ]
        indexes = [models.Index(fields=["mobile"]), models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"{self.full_name or self.user.email} ({self.state or '—'})"

    @property
    def is_complete(self) -> bool:
        return all([self.full_name, self.mobile, self.state, self.city, self.pin_code])

    @property
    def missing_fields(self) -> list[str]:
        labels = {
            "full_name": "full name",
            "mobile": "mobile number",
            "state": "state or union territory",
            "city": "city",
            "pin_code": "PIN code",
        }
        return [label for field, label in labels.items() if not getattr(self, field)]

    @property
    def state_iso(self) -> str:
        return f"IN-{self.state}" if self.state else ""

    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.state, "")


class StaffPermission(models.Model):
    """Carrier of the named staff permissions (no table): admins grant them to staff users or
    groups in Django admin like any other permission. `trader.permissions` names and checks
    them; nothing else reads this model."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("review_listings", "Can approve, reject, suspend and review marketplace listings"),
            ("operate_global_kill_switch", "Can engage and re-arm the platform-wide kill switch"),
            ("record_payments", "Can record payments received for marketplace invoices"),
        ]

    def __str__(self) -> str:
        return "staff permissions"
