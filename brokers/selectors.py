"""Reads for broker accounts. `broker_account_get_for_user` is the only way a view reaches
one account: it 404s for anyone but the owner."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from brokers.models import AccountEvent, AccountStatus, BrokerAccount
from trader.models import User


def broker_account_list_for_user(*, user: User) -> QuerySet[BrokerAccount]:
    return BrokerAccount.objects.filter(owner=user).order_by("broker", "label")


def broker_account_get_for_user(*, user: User, account_id: int) -> BrokerAccount:
    account = BrokerAccount.objects.filter(owner=user, pk=account_id).first()
    if account is None:
        raise Http404("No such broker account.")
    return account


def broker_accounts_needing_login(*, user: User) -> list[BrokerAccount]:
    """Accounts whose session is over: marked expired, or connected past the token's expiry
    (tokens die daily at the broker's cut-off, before any sweep may have run)."""
    return list(
        BrokerAccount.objects.filter(owner=user)
        .filter(
            Q(status=AccountStatus.EXPIRED, token_issued_at__isnull=False)
            | Q(status=AccountStatus.CONNECTED, token_expires_at__lte=timezone.now())
        )
        .only("id", "label", "broker", "status", "last_error", "token_expires_at")
        .order_by("label")
    )


def account_events_for_account(*, account: BrokerAccount, limit: int = 20) -> list[AccountEvent]:
    return list(AccountEvent.objects.filter(account=account).order_by("-created_at", "-id")[:limit])
