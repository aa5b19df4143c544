"""The "recommended" score of a listing, free of the database.

Every input is verified by the platform itself: returns and drawdown from actual executions,
retention from subscriptions, rating from subscribers' reviews. The page /marketplace/ranking/
explains the same formula in words; keep both in step (RANKING_WEIGHTS is rendered there).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# Weights of each component (they add up to 1). Risk-adjusted return leads: a creator's job is
# to make money per unit of pain; drawdown is counted a second time on purpose, because a deep
# drawdown is what makes subscribers give up on a strategy.
RANKING_WEIGHTS: dict[str, Decimal] = {
    "risk_adjusted_return": Decimal("0.40"),
    "drawdown": Decimal("0.20"),
    "retention": Decimal("0.20"),
    "rating": Decimal("0.20"),
}

# Fewer executed days than this and the track record says little: the score is scaled down
# linearly so a lucky week cannot top the list.
MIN_TRACK_RECORD_DAYS = 20

# A return/drawdown ratio at or above this counts as full marks.
FULL_MARKS_RETURN_TO_DRAWDOWN = Decimal(3)
# A drawdown this deep (in % of capital) or deeper scores zero.
WORST_DRAWDOWN_PERCENT = Decimal(30)
# Listings with no rating yet get a neutral score rather than zero or full marks.
NEUTRAL_RATING = Decimal(3)


@dataclass(frozen=True)
class RankingInput:
    return_percent: Decimal  # cumulative verified return on the listing's capital, in %
    max_drawdown_percent: Decimal  # positive number, in % of capital
    traded_days: int
    subscribers_ever: int
    subscribers_retained: int  # still subscribed (active or paused) of subscribers_ever
    average_rating: Decimal | None  # 1-5, None when nobody has rated yet


def _clamp(value: Decimal) -> Decimal:
    return min(Decimal(1), max(Decimal(0), value))


def ranking_components(data: RankingInput) -> dict[str, Decimal]:
    """Each component scaled to 0..1."""
    drawdown = max(data.max_drawdown_percent, Decimal("0.5"))  # no division by a zero drawdown
    ratio = data.return_percent / drawdown
    retention = (
        Decimal(data.subscribers_retained) / Decimal(data.subscribers_ever)
        if data.subscribers_ever
        else Decimal("0.5")
    )
    rating = data.average_rating if data.average_rating is not None else NEUTRAL_RATING
    return {
        "risk_adjusted_return": _clamp(ratio / FULL_MARKS_RETURN_TO_DRAWDOWN),
        "drawdown": _clamp(1 - data.max_drawdown_percent / WORST_DRAWDOWN_PERCENT),
        "retention": _clamp(retention),
        "rating": _clamp((rating - 1) / 4),
    }


def recommended_score(data: RankingInput) -> Decimal:
    """A score from 0 to 100; 0 when there is no executed track record at all."""
    if data.traded_days <= 0:
        return Decimal(0)
    components = ranking_components(data)
    weighted = sum(
        (RANKING_WEIGHTS[name] * value for name, value in components.items()), Decimal(0)
    )
    confidence = min(Decimal(1), Decimal(data.traded_days) / MIN_TRACK_RECORD_DAYS)
    return (weighted * confidence * 100).quantize(Decimal("0.01"))
