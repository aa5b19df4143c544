"""The marketplace's run source: subscribers' deployments run through the same engine as the
creators' own strategies, on the subscriber's account, with every leg's lots multiplied.

A deployment that may not enter today (paused, lapsed or cancelled subscription, listing not
published, deployment stopped) is still offered to the planner while it has exposure, i.e. an
entry of today already dispatched or a positional entry still open, so that the exit of what it
opened is never unplanned. The planner itself never plans a new positional entry while one is
open, and an entry run already dispatched is never changed by re-planning.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal

from django.db.models import Q

from execution.models import ScheduledRun
from execution.models.engine import Boundary, RunState
from execution.planning.sources import AccountAllocation, RunSource, RunTarget, register
from marketplace.models import Deployment, SubscriptionStatus
from marketplace.performance import DEPLOYMENT_SOURCE
from marketplace.services import deployment_may_enter


def _exposure(*, day: datetime.date) -> dict[str, int]:
    """Deployments (by source_ref) whose positions the engine must still be able to close, with
    the strategy version that opened them (the newest such entry)."""
    runs = ScheduledRun.objects.filter(
        source=DEPLOYMENT_SOURCE, boundary=Boundary.ENTRY, is_test=False
    )
    dispatched_today = runs.filter(session_date=day).exclude(
        state__in=[RunState.PLANNED, RunState.SKIPPED]
    )
    still_open = runs.filter(Q(positions__net_quantity__lt=0) | Q(positions__net_quantity__gt=0))
    columns = ("source_ref", "strategy_version_id", "session_date")
    # No ORDER BY inside a UNION: SQLite refuses it (the model has a default ordering).
    rows = (
        dispatched_today.order_by()
        .values_list(*columns)
        .union(still_open.order_by().values_list(*columns))
    )
    exposure: dict[str, int] = {}
    for ref, version_id, _ in sorted(rows, key=lambda row: row[2]):
        exposure[ref] = version_id
    return exposure


def _limits(deployment: Deployment) -> dict[str, str]:
    """The subscriber's own limits for this deployment, checked by the engine before orders."""
    if deployment.max_daily_loss is None:
        return {}
    return {"max_daily_loss": str(deployment.max_daily_loss)}


class DeploymentSource(RunSource):
    """One target per deployment: the approved listing version the subscription runs, on one
    of the subscriber's accounts, lots times the deployment's multiplier."""

    name = DEPLOYMENT_SOURCE

    def targets(self, *, day: datetime.date, strategy_id: int | None = None) -> Iterable[RunTarget]:
        exposed = _exposure(day=day)
        exposed_ids = [int(ref) for ref in exposed if ref.isdigit()]
        deployments = Deployment.objects.select_related(
            "broker_account", "subscription__listing", "subscription__version"
        ).filter(
            Q(is_active=True, subscription__status=SubscriptionStatus.ACTIVE)
            | Q(pk__in=exposed_ids)
        )
        if strategy_id is not None:
            deployments = deployments.filter(subscription__listing__strategy_id=strategy_id)
        for deployment in deployments:
            ref = str(deployment.pk)
            may_enter = deployment_may_enter(deployment=deployment, day=day)
            if not may_enter and ref not in exposed:
                continue
            subscription = deployment.subscription
            # While a deployment has exposure its runs stay on the version that opened it, so a
            # version approved mid-day never withdraws the exit of what the old one opened.
            version_id = exposed.get(ref, subscription.version.strategy_version_id)
            # Someone else's account can never get here (deployment_create checks), but the
            # engine trades real money: check again at the seam.
            if deployment.broker_account.owner_id != subscription.subscriber_id:
                continue
            yield RunTarget(
                source=self.name,
                source_ref=ref,
                owner_id=subscription.subscriber_id,
                strategy_id=subscription.listing.strategy_id,
                version_id=version_id,
                allocations=(
                    AccountAllocation(
                        account_id=deployment.broker_account_id,
                        broker=deployment.broker_account.broker,
                        priority=1,
                        multiplier=Decimal(deployment.multiplier),
                        limits=_limits(deployment),
                    ),
                ),
                extra={"subscription_id": subscription.pk, "entries_allowed": may_enter},
            )


register(DeploymentSource())
