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


def test_only_runs_held_for_want_of_a_price_are_mailed_and_a_mail_failure_is_not_recorded(
    monkeypatch, caplog
):
    from execution.models import ExecutionEvent, ScheduledRun
    from execution.services import runs_held_notify
    from tests.execution.engine_factories import RunFactory

    held = RunFactory(state="skipped", note="No fresh price: Kite quotes gave none: not sent.")
    other = RunFactory(state="skipped", note="Account 9 no longer exists.")
    broken = RunFactory(state="skipped", note="No fresh price: stale quote: not sent.")

    sent = []

    def send_mail(**kwargs):
        if broken.owner.email in kwargs["recipient_list"]:
            raise OSError("mail server down")
        sent.append(kwargs)

    monkeypatch.setattr("django.core.mail.send_mail", send_mail)
    assert runs_held_notify(run_ids=[held.pk, other.pk, broken.pk]) == 1
    assert [m["recipient_list"] for m in sent] == [[held.owner.email]]
    mailed = set(
        ExecutionEvent.objects.filter(kind="run.held_mailed").values_list("run_id", flat=True)
    )
    assert set(mailed) == {held.pk}  # the failed one is tried again next time
    assert "could not email the owner of held run" in caplog.text
    assert ScheduledRun.objects.get(pk=broken.pk).note.startswith("No fresh price")
