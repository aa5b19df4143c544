"""Re-plan hooks: a change to a strategy, its allocation, its algo IDs, its versions (or a
marketplace deployment, which calls `strategy_replan`) re-plans today's runs of that strategy
after the change commits. Runs already dispatched are never touched (see planning.day_plan).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from execution import enqueue

logger = logging.getLogger(__name__)


def strategy_replan(*, strategy_id: int) -> None:
    """Re-plan today's runs of one strategy once the current transaction commits."""

    def start() -> None:
        try:
            enqueue.task_enqueue(enqueue.DAY_PLAN, kwargs={"strategy_id": strategy_id})
        except Exception:  # the broker is down: the 09:00 re-plan still catches the change
            logger.warning("could not enqueue the re-plan of strategy %s", strategy_id)

    transaction.on_commit(start)


def _on_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    strategy_id = getattr(instance, "strategy_id", None) or getattr(instance, "pk", None)
    if kwargs.get("raw") or strategy_id is None:
        return  # fixtures loading
    strategy_replan(strategy_id=strategy_id)


def connect() -> None:
    from trader.models import BrokerAllocation, Strategy, StrategyAlgoId, StrategyVersion

    for model in (BrokerAllocation, StrategyAlgoId, StrategyVersion, Strategy):
        post_save.connect(_on_change, sender=model, dispatch_uid=f"execution-replan-{model}")
        post_delete.connect(_on_change, sender=model, dispatch_uid=f"execution-replan-d-{model}")
