""" "Test now on paper" refuses in words what it cannot run: a strategy with no saved version,
and a trader without a paper account (a test run never uses a real broker)."""

from __future__ import annotations

import pytest

from brokers.models import Broker
from execution.models import ScheduledRun
from execution.services import PaperTestError, paper_test_run
from tests.execution.engine_factories import StrategyFactory, strategy_with_accounts

pytestmark = pytest.mark.django_db


def test_a_strategy_without_a_version_cannot_be_tested():
    strategy = StrategyFactory(current_version=None)
    with pytest.raises(PaperTestError, match="no saved version"):
        paper_test_run(user=strategy.owner, strategy=strategy)


def test_a_trader_without_a_paper_account_is_told_to_connect_one():
    strategy, _version, _accounts = strategy_with_accounts(brokers=(Broker.KITE,))
    with pytest.raises(PaperTestError, match="Connect the paper broker first"):
        paper_test_run(user=strategy.owner, strategy=strategy)
    assert not ScheduledRun.objects.exists()  # never on the real broker
