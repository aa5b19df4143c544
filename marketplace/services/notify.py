"""Tell people what happened: a UI notification row now, an email once the transaction commits."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction

from marketplace.models import Listing, Notification
from trader.models import User

logger = logging.getLogger(__name__)


def notify_users(*, users: Iterable[User], listing: Listing, subject: str, message: str) -> None:
    """Record one notification per user and email them after commit.

    A failing mail server is logged and never undoes the change it reports on.
    """
    recipients = list(users)
    Notification.objects.bulk_create(
        [Notification(user=user, listing=listing, message=message) for user in recipients]
    )
    prefix = getattr(settings, "ACCOUNT_EMAIL_SUBJECT_PREFIX", "")
    mails = [
        (f"{prefix}{subject}", message, settings.DEFAULT_FROM_EMAIL, [user.email])
        for user in recipients
    ]

    def send() -> None:
        try:
            send_mass_mail(mails, fail_silently=False)
        except Exception:  # the notification row already tells them in the UI
            logger.exception("marketplace notification email failed for listing %s", listing.pk)

    transaction.on_commit(send)
