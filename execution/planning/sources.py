"""Run sources: who asks the engine to trade a strategy version, for whom, on which accounts.

The planner asks every registered source for its targets of the day. The trader's own
strategies (their BrokerAllocations) are one source; the marketplace registers another for
deployments of a listing onto a subscriber's accounts with a multiplier:

    from execution.planning.sources import RunSource, RunTarget, register
    class DeploymentSource(RunSource):
        name = "deployment"
        def targets(self, *, day, strategy_id=None): ...
    register(DeploymentSource())          # e.g. in MarketplaceConfig.ready()

A target's accounts are snapshotted into the run when it is planned (and re-planned when
something changes), so dispatch never has to ask the source again.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import Any, ClassVar

from django.db.models import OuterRef, Subquery


@dataclass(frozen=True)
class AccountAllocation:
    """One account a target trades on: how many lots per leg lot, and its failover order."""

    account_id: int
    broker: str
    priority: int
    multiplier: Decimal | None = None  # leg lots x multiplier (rounded down to whole lots)
    fixed_lots: int | None = None  # or this many lots on every leg
    algo_id: str = ""  # the strategy's own exchange algo ID at this broker, if registered
    # Risk limits the run source sets for this account on top of the owner's own and the
    # admins' ceiling (e.g. a marketplace deployment's daily loss), as text by limit name:
    # see execution.protection.risk.source_limit_checks.
    limits: dict[str, str] = field(default_factory=dict)

    def lots(self, leg_lots: int, run_multiplier: Decimal = Decimal(1)) -> int:
        """Lots this account trades for a leg of `leg_lots` lots: its fixed lots, else the
        leg's lots times its multiplier (1 when unset), then times the run's multiplier (a
        marketplace deployment's), rounded down to whole lots. Dispatch sizes the orders with
        it, and the margin estimates size the basket the same way; below 1 the leg is not
        traded (dispatch says so)."""
        if self.fixed_lots:
            lots = Decimal(self.fixed_lots)
        else:
            lots = Decimal(leg_lots) * (self.multiplier or Decimal(1))
        return int((lots * run_multiplier).to_integral_value(rounding=ROUND_DOWN))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["multiplier"] = None if self.multiplier is None else str(self.multiplier)
        if not self.limits:
            del data["limits"]  # runs without source limits keep their snapshot as it was
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccountAllocation:
        multiplier = data.get("multiplier")
        return cls(
            account_id=int(data["account_id"]),
            broker=str(data["broker"]),
            priority=int(data["priority"]),
            multiplier=None if multiplier in (None, "") else Decimal(str(multiplier)),
            fixed_lots=data.get("fixed_lots"),
            algo_id=str(data.get("algo_id") or ""),
            limits={str(k): str(v) for k, v in (data.get("limits") or {}).items()},
        )


@dataclass(frozen=True)
class RunTarget:
    """A strategy version to run on a day for one owner on some accounts."""

    source: str
    source_ref: str
    owner_id: int
    strategy_id: int
    version_id: int
    allocations: tuple[AccountAllocation, ...]
    multiplier: Decimal = Decimal("1")
    extra: dict[str, Any] = field(default_factory=dict)


class RunSource(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    def targets(self, *, day: date, strategy_id: int | None = None) -> Iterable[RunTarget]:
        """Every target of `day` (only those of `strategy_id` when given)."""


_SOURCES: dict[str, RunSource] = {}


def register(source: RunSource) -> None:
    """Add (or replace) a run source under its name."""
    _SOURCES[source.name] = source


def registered() -> list[RunSource]:
    return list(_SOURCES.values())


def version_in_force_subquery(day: date) -> Subquery:
    """The id of a strategy's newest version effective on `day` (for `.annotate`)."""
    from trader.models import StrategyVersion

    return Subquery(
        StrategyVersion.objects.filter(strategy=OuterRef("pk"), effective_from__lte=day)
        .order_by("-effective_from", "-number")
        .values("pk")[:1]
    )


def strategy_allocations(strategy: Any) -> tuple[AccountAllocation, ...]:
    """The strategy's enabled allocations on its owner's own accounts, with the algo ID the
    strategy registered at each broker (prefetch `allocations__broker_account`, `algo_ids`)."""
    algo_ids = {row.broker: row.algo_id for row in strategy.algo_ids.all()}
    return tuple(
        AccountAllocation(
            account_id=allocation.broker_account_id,
            broker=allocation.broker_account.broker,
            priority=allocation.priority,
            multiplier=allocation.multiplier,
            fixed_lots=allocation.fixed_lots,
            algo_id=algo_ids.get(allocation.broker_account.broker, ""),
        )
        for allocation in strategy.allocations.all()
        if allocation.enabled and allocation.broker_account.owner_id == strategy.owner_id
    )


class AllocationSource(RunSource):
    """The trader's own active strategies on their own enabled allocations. A signal strategy
    (an enabled webhook, trader.signals) is traded when its signals arrive, not at its times."""

    name = "allocation"

    def targets(self, *, day: date, strategy_id: int | None = None) -> Iterable[RunTarget]:
        from trader.models import Strategy, StrategyStatus

        strategies = (
            Strategy.objects.filter(status=StrategyStatus.ACTIVE)
            .exclude(signal_webhook__enabled=True)
            .annotate(version_id=version_in_force_subquery(day))
            .filter(version_id__isnull=False)
            .prefetch_related("allocations__broker_account", "algo_ids")
        )
        if strategy_id is not None:
            strategies = strategies.filter(pk=strategy_id)
        for strategy in strategies:
            allocations = strategy_allocations(strategy)
            if not allocations:
                continue
            price_account = strategy.paper_price_account_id
            yield RunTarget(
                source=self.name,
                source_ref="",
                owner_id=strategy.owner_id,
                strategy_id=strategy.pk,
                version_id=strategy.version_id,
                allocations=allocations,
                # Paper on live prices (a strategy on paper accounts only: see planning).
                extra={"price_account_id": price_account} if price_account else {},
            )


register(AllocationSource())
