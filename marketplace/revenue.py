"""Revenue arithmetic of one subscription for one month, free of the database.

The profit share follows a per-subscription high-water mark (as Tradetron bills its creators):
the subscriber pays a share only of cumulative profit above the best cumulative profit already
charged, so a loss has to be recovered before any share is due again.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

PAISE = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)

# The regulator does not cap a creator's share; 50 % is this platform's product limit, the
# same bound the Listing plan's database constraint enforces.
MAX_PROFIT_SHARE_PERCENT = Decimal(50)


def money(value: Decimal) -> Decimal:
    return value.quantize(PAISE, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class MonthInput:
    """What a month's ledger needs: the plan's terms, the month's P&L, and the state before."""

    fee: Decimal  # fee invoiced for periods starting this month (0 on share-only plans)
    profit_share_percent: Decimal
    commission_percent: Decimal
    pnl: Decimal  # net realised P&L of the subscription's deployments in the month
    cumulative_pnl_before: Decimal
    high_water_mark_before: Decimal


@dataclass(frozen=True)
class MonthCharges:
    fee: Decimal
    pnl: Decimal
    cumulative_pnl: Decimal
    high_water_mark: Decimal
    share_base: Decimal  # the profit above the high-water mark that the share applies to
    profit_share: Decimal
    commission: Decimal
    creator_payout: Decimal

    @property
    def total_charged(self) -> Decimal:
        return self.fee + self.profit_share


def month_charges(month: MonthInput) -> MonthCharges:
    """Compute fee, profit share above the high-water mark, commission and creator payout.

    Raises ValueError for terms the platform never accepts (negative fee, share outside 0-50 %,
    commission outside 0-100 %), so a mis-configured plan cannot produce a bill.
    """
    if month.fee < 0:
        raise ValueError("The fee cannot be negative.")
    if not ZERO <= month.profit_share_percent <= MAX_PROFIT_SHARE_PERCENT:
        raise ValueError("The profit share must be between 0 and 50 %.")
    if not ZERO <= month.commission_percent <= HUNDRED:
        raise ValueError("The platform commission must be between 0 and 100 %.")

    cumulative = month.cumulative_pnl_before + month.pnl
    mark = month.high_water_mark_before
    share_base = ZERO
    if month.profit_share_percent > 0 and cumulative > mark:
        share_base = cumulative - mark
        mark = cumulative
    elif month.profit_share_percent == 0:
        # Without a share the mark still follows the best cumulative P&L, so switching plans
        # later never bills profit that was made while no share was agreed.
        mark = max(mark, cumulative)
    profit_share = money(share_base * month.profit_share_percent / HUNDRED)
    fee = money(month.fee)
    commission = money((fee + profit_share) * month.commission_percent / HUNDRED)
    return MonthCharges(
        fee=fee,
        pnl=money(month.pnl),
        cumulative_pnl=money(cumulative),
        high_water_mark=money(mark),
        share_base=money(share_base),
        profit_share=profit_share,
        commission=commission,
        creator_payout=fee + profit_share - commission,
    )
