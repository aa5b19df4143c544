"""The morning ready check reads each logged-in account's funds at its broker: none available,
or funds that cannot be read, make the account not ready, in words the owner reads; and only
the owner may choose where a strategy's paper runs take their prices from."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.base import BrokerError, Funds
from brokers.models import Broker
from execution.planning.plan import day_plan
from execution.services import accounts_ready_check, strategy_paper_price_set
from tests.execution.engine_factories import strategy_with_accounts
from tests.execution.test_dispatch import DAY, _accounts_ready
from tests.trader.factories import ProfileFactory

pytestmark = pytest.mark.django_db


class _FundsBroker:
    def __init__(self, answer) -> None:
        self.answer = answer

    def funds(self):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (
            Funds(available=Decimal("0"), used=Decimal("5000"), total=Decimal("5000")),
            "no funds available at the broker.",
        ),
        (BrokerError("token expired"), "funds could not be read (token expired)."),
    ],
)
def test_an_account_without_readable_or_available_funds_is_not_ready(monkeypatch, answer, words):
    _strategy, _version, (account,) = strategy_with_accounts(brokers=(Broker.KITE,))
    _accounts_ready([account])
    day_plan(day=DAY)
    monkeypatch.setattr("brokers.registry.get_adapter", lambda a: _FundsBroker(answer))
    (readiness,) = accounts_ready_check(day=DAY)
    assert not readiness.ready
    assert f"{account.label}: {words}" in readiness.problems


def test_only_the_owner_chooses_a_strategys_price_source_and_only_a_live_account():
    strategy, _version, (paper,) = strategy_with_accounts(brokers=(Broker.PAPER,))
    with pytest.raises(PermissionError, match="owner"):
        strategy_paper_price_set(user=ProfileFactory().user, strategy=strategy, account=None)
    with pytest.raises(ValueError, match="your own live accounts"):
        strategy_paper_price_set(user=strategy.owner, strategy=strategy, account=paper)
    _other, _v, (someone_elses,) = strategy_with_accounts(brokers=(Broker.KITE,))
    with pytest.raises(ValueError, match="your own live accounts"):
        strategy_paper_price_set(user=strategy.owner, strategy=strategy, account=someone_elses)
