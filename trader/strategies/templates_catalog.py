"""Ready-made strategy shapes that pre-fill the wizard's legs.

Strikes are ATM ± N strike steps, so one template fits every underlying: the step (50 for NIFTY,
100 for BANKNIFTY, ...) is market data looked up on the trade date.
"""

from __future__ import annotations

from dataclasses import dataclass

from trader.models import ExpiryChoice, OptionType, Side, StrikeMode


@dataclass(frozen=True)
class TemplateLeg:
    side: str
    option_type: str
    strike_offset: int
    expiry_choice: str = ExpiryChoice.CURRENT_WEEK
    lots: int = 1

    def as_initial(self) -> dict[str, object]:
        return {
            "side": self.side,
            "option_type": self.option_type,
            "lots": self.lots,
            "expiry_choice": self.expiry_choice,
            "strike_mode": StrikeMode.ATM_OFFSET,
            "strike_offset": self.strike_offset,
        }


@dataclass(frozen=True)
class StrategyTemplate:
    key: str
    name: str
    explanation: str
    legs: tuple[TemplateLeg, ...]
    # A calendar spread only makes sense if its legs expire on different dates.
    needs_distinct_expiries: bool = False


B, S = Side.BUY, Side.SELL
CE, PE = OptionType.CE, OptionType.PE

TEMPLATES: tuple[StrategyTemplate, ...] = (
    StrategyTemplate(
        "short_straddle",
        "Short straddle",
        "Sell the ATM call and put: earns the premium if the index stays put, loses without "
        "limit on a big move either way.",
        (TemplateLeg(S, CE, 0), TemplateLeg(S, PE, 0)),
    ),
    StrategyTemplate(
        "short_strangle",
        "Short strangle",
        "Sell an OTM call and an OTM put: a wider profit zone than a straddle for less premium, "
        "unlimited loss beyond it.",
        (TemplateLeg(S, CE, 4), TemplateLeg(S, PE, -4)),
    ),
    StrategyTemplate(
        "iron_condor",
        "Iron condor",
        "A short strangle with bought wings further out: the wings cap the loss on either side.",
        (
            TemplateLeg(B, PE, -8),
            TemplateLeg(S, PE, -4),
            TemplateLeg(S, CE, 4),
            TemplateLeg(B, CE, 8),
        ),
    ),
    StrategyTemplate(
        "iron_butterfly",
        "Iron butterfly",
        "A short straddle with bought wings: more premium than a condor, a narrower profit "
        "zone, capped loss.",
        (
            TemplateLeg(B, PE, -6),
            TemplateLeg(S, PE, 0),
            TemplateLeg(S, CE, 0),
            TemplateLeg(B, CE, 6),
        ),
    ),
    StrategyTemplate(
        "bull_call_spread",
        "Bull call spread",
        "Buy the ATM call and sell a higher one: gains if the index rises, with both the cost "
        "and the gain capped.",
        (TemplateLeg(B, CE, 0), TemplateLeg(S, CE, 4)),
    ),
    StrategyTemplate(
        "bear_put_spread",
        "Bear put spread",
        "Buy the ATM put and sell a lower one: gains if the index falls, with both the cost and "
        "the gain capped.",
        (TemplateLeg(B, PE, 0), TemplateLeg(S, PE, -4)),
    ),
    StrategyTemplate(
        "long_straddle",
        "Long straddle",
        "Buy the ATM call and put: pays on a big move either way; the premium paid is the most "
        "you can lose.",
        (TemplateLeg(B, CE, 0), TemplateLeg(B, PE, 0)),
    ),
    StrategyTemplate(
        "calendar_spread",
        "Calendar spread",
        "Sell this week's ATM call and buy next week's: earns from the faster time decay of the "
        "near expiry if the index stays near the strike.",
        (
            TemplateLeg(S, CE, 0, ExpiryChoice.CURRENT_WEEK),
            TemplateLeg(B, CE, 0, ExpiryChoice.NEXT_WEEK),
        ),
        needs_distinct_expiries=True,
    ),
)

TEMPLATES_BY_KEY = {template.key: template for template in TEMPLATES}


def template_get(key: str) -> StrategyTemplate | None:
    return TEMPLATES_BY_KEY.get(key)
