"""Tell the execution engine that a deployment's runs of today may have changed.

A subscription paused, resumed, cancelled, lapsed or paid again, a deployment added, changed or
stopped, a listing suspended, retired or published: each changes which deployments may enter
today. The engine re-plans the listed strategy's runs once our transaction commits (runs already
dispatched are never touched, and exits of what a deployment opened stay planned).
"""

from __future__ import annotations

from collections.abc import Iterable


def deployments_replan(*, strategy_ids: Iterable[int]) -> None:
    """Re-plan today's runs of these strategies after the current transaction commits."""
    from execution.planning.replan import strategy_replan

    for strategy_id in sorted(set(strategy_ids)):
        strategy_replan(strategy_id=strategy_id)
