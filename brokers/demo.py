"""Demo data for `make run`: the demo trader gets a paper account that is already logged in,
so funds show at once. Idempotent."""

from __future__ import annotations

from typing import Any

from brokers.models import AccountStatus, Broker, BrokerAccount
from brokers.services import broker_account_create, paper_account_log_in


def seed(users: Any) -> None:
    trader = users.trader
    account = BrokerAccount.objects.filter(owner=trader, broker=Broker.PAPER).first()
    if account is None:
        account = broker_account_create(owner=trader, broker=Broker.PAPER, label="Paper")
    if account.status != AccountStatus.CONNECTED:
        paper_account_log_in(account=account, actor=trader)
