from __future__ import annotations

from django.db.models import QuerySet

from brokers.models import BrokerAccount
from trader.models import User


def broker_account_list_for_user(*, user: User) -> QuerySet[BrokerAccount]:
    return BrokerAccount.objects.filter(owner=user).order_by("broker", "label")
