"""The wizard's draft: kept in the session between steps, nothing in the database until the
review is confirmed (so an abandoned wizard leaves no half-made strategy behind)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest

from trader.models import HedgeConfirmation
from trader.strategies.specs import AllocationSpec, LegSpec, StrategySpec
from trader.strategies.templates_catalog import template_get

SESSION_KEY = "strategy_wizard"
STEPS: tuple[tuple[str, str], ...] = (
    ("template", "Template"),
    ("basics", "Underlying"),
    ("legs", "Legs"),
    ("schedule", "Times and days"),
    ("risk", "Risk"),
    ("allocation", "Allocation"),
    ("review", "Review"),
)
STEP_NAMES = [name for name, _ in STEPS]
DECIMAL_FIELDS = {
    "strike_price",
    "target_premium",
    "target_delta",
    "stop_loss",
    "target",
    "multiplier",
    "stop_loss_mtm",
    "target_mtm",
    "trailing_stop_mtm",
}


def _to_json(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Decimal):
            out[key] = str(value)
        elif isinstance(value, datetime.time):
            out[key] = value.strftime("%H:%M:%S")
        elif hasattr(value, "pk"):
            out[key] = value.pk
        else:
            out[key] = value
    return out


def _decimal(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def _from_json(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _decimal(v) if k in DECIMAL_FIELDS else v for k, v in values.items()}


def empty() -> dict[str, Any]:
    return {
        "strategy_id": None,
        "template": None,
        "basics": None,
        "legs": None,
        "schedule": None,
        "risk": None,
        "allocations": None,
    }


def load(request: HttpRequest) -> dict[str, Any]:
    return request.session.get(SESSION_KEY) or empty()


def save(request: HttpRequest, draft: dict[str, Any]) -> None:
    request.session[SESSION_KEY] = draft


def clear(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)


def completed(draft: dict[str, Any], step: str) -> bool:
    key = {"allocation": "allocations"}.get(step, step)
    return step != "review" and draft.get(key) is not None


def first_incomplete(draft: dict[str, Any]) -> str:
    return next((name for name in STEP_NAMES if not completed(draft, name)), "review")


def next_step(step: str) -> str:
    return STEP_NAMES[min(STEP_NAMES.index(step) + 1, len(STEP_NAMES) - 1)]


def set_template(draft: dict[str, Any], key: str) -> None:
    """Choosing a (different) template replaces the legs with the template's."""
    if draft.get("template") == key and draft.get("legs"):
        return
    draft["template"] = key
    template = template_get(key)
    draft["legs"] = (
        [_to_json(leg.as_initial()) for leg in template.legs] if template is not None else None
    )
    if template is None:
        draft["legs"] = None


def set_part(draft: dict[str, Any], part: str, values: Any) -> None:
    if isinstance(values, list):
        draft[part] = [_to_json(v) for v in values]
    else:
        draft[part] = _to_json(values)


def leg_specs(draft: dict[str, Any]) -> list[LegSpec]:
    names = LegSpec.__dataclass_fields__
    return [
        LegSpec(**{k: v for k, v in _from_json(leg).items() if k in names})
        for leg in draft.get("legs") or []
    ]


def allocation_specs(draft: dict[str, Any]) -> list[AllocationSpec]:
    names = AllocationSpec.__dataclass_fields__
    return [
        AllocationSpec(**{k: v for k, v in _from_json(a).items() if k in names})
        for a in draft.get("allocations") or []
    ]


def to_spec(draft: dict[str, Any]) -> StrategySpec:
    basics, schedule, risk = draft["basics"], draft["schedule"], _from_json(draft["risk"])
    template = draft.get("template") or ""
    return StrategySpec(
        name=basics["name"],
        description=basics.get("description") or "",
        underlying_id=int(basics["underlying"]),
        kind=basics["kind"],
        template="" if template == "custom" else template,
        legs=leg_specs(draft),
        entry_time=datetime.time.fromisoformat(schedule["entry_time"]),
        exit_time=datetime.time.fromisoformat(schedule["exit_time"]),
        trading_days=sum(1 << int(day) for day in set(schedule["trading_days"])),
        leg_failure_policy=risk["leg_failure_policy"],
        hedge_confirmation=risk.get("hedge_confirmation") or HedgeConfirmation.ACK,
        stop_loss_mtm=risk.get("stop_loss_mtm"),
        target_mtm=risk.get("target_mtm"),
        trailing_stop_mtm=risk.get("trailing_stop_mtm"),
        allocations=allocation_specs(draft),
    )


def from_spec(spec: StrategySpec, *, strategy_id: int | None) -> dict[str, Any]:
    """A draft pre-filled from an existing strategy (the edit starts at its legs)."""
    draft = empty()
    draft["strategy_id"] = strategy_id
    draft["template"] = spec.template or "custom"
    set_part(
        draft,
        "basics",
        {
            "name": spec.name,
            "description": spec.description,
            "underlying": spec.underlying_id,
            "kind": spec.kind,
        },
    )
    set_part(draft, "legs", [leg.__dict__ for leg in spec.legs])
    set_part(
        draft,
        "schedule",
        {
            "entry_time": spec.entry_time,
            "exit_time": spec.exit_time,
            "trading_days": [d for d in range(7) if spec.trading_days & (1 << d)],
        },
    )
    set_part(
        draft,
        "risk",
        {
            "leg_failure_policy": spec.leg_failure_policy,
            "hedge_confirmation": spec.hedge_confirmation,
            "stop_loss_mtm": spec.stop_loss_mtm,
            "target_mtm": spec.target_mtm,
            "trailing_stop_mtm": spec.trailing_stop_mtm,
        },
    )
    set_part(draft, "allocations", [a.__dict__ for a in spec.allocations])
    return draft
