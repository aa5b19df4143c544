"""Database rules said in words, in one place.

Django reports a broken CheckConstraint or UniqueConstraint as 'Constraint “lotsize_positive” is
violated.' (admin forms, model validation). Every constraint without its own message is given
the one here, by name; a name missing here is turned into words ("lot size: positive") rather
than shown raw. Installed once, from the trader app's ready().
"""

from __future__ import annotations

import re
from typing import Any

MESSAGES: dict[str, str] = {
    # Reference data admins edit.
    "lotsize_positive": "The lot size must be a whole number above zero.",
    "lotsize_range_ordered": "The lot size's end date must be after its start date.",
    "freezequantity_positive": "The freeze quantity must be above zero.",
    "freezequantity_unique_from": "This underlying already has a freeze quantity from that date.",
    "strikestep_positive": "The strike step must be above zero.",
    "strikestep_unique_from": "This underlying already has a strike step from that date.",
    "expiryrule_range_ordered": "The expiry rule's end date must be after its start date.",
    "expiryrule_listed": "Choose at least one listed expiry (weekly or monthly).",
    "sessiontiming_unique_from": "There are session timings from that date already.",
    "sessiontiming_opens_first": "The session must open before it closes.",
    "tradingholiday_unique_day": "That day is already a holiday of this exchange.",
    "holidaycalendaryear_unique": "That year's holiday list is already loaded for this exchange.",
    "specialsession_unique_day": "That day already has a special session on this exchange.",
    "specialsession_opens_first": "The special session must open before it closes.",
    "chargerate_unique_from": "This exchange already has charge rates from that date.",
    "chargerate_not_negative": "Charge rates cannot be negative.",
    "brokeragerate_unique_from": "This broker already has a brokerage rate from that date.",
    "brokeragerate_not_negative": "Brokerage cannot be negative.",
    "instrument_strike_positive": "The strike must be above zero.",
    "killswitch_one_global": "There is only one platform-wide kill switch.",
    "killswitch_scope_matches_user": "A trader's kill switch names the trader; the "
    "platform-wide one names nobody.",
    "riskceiling_singleton": "There is only one platform risk ceiling.",
    "riskceiling_positive": "Risk ceilings must be above zero.",
    "risklimit_positive": "Risk limits must be above zero.",
    # Traders' own data.
    "profile_mobile_e164_indian": "Enter a 10-digit Indian mobile number (6-9 first).",
    "profile_pin_code_format": "A PIN code has 6 digits and does not start with 0.",
    "profile_pan_format": "A PAN has 5 letters, 4 digits, then 1 letter.",
    "strategy_name_not_empty": "Give the strategy a name.",
    "strategyversion_exit_after_entry": "The exit time must be after the entry time.",
    "strategyversion_stop_loss_positive": "The combined stop-loss must be above ₹0.",
    "strategyversion_target_positive": "The combined target must be above ₹0.",
    "strategyversion_trailing_positive": "The trailing stop must be above ₹0.",
    "leg_position_range": "A strategy has one to eight legs.",
    "leg_lots_positive": "Each leg trades at least one lot.",
    "leg_stop_loss_positive": "A leg's stop-loss must be above zero.",
    "leg_target_positive": "A leg's target must be above zero.",
    "leg_strike_parameter_matches_mode": "Give the strike the way it is chosen: steps for ATM, "
    "a strike for exact, a premium or a delta.",
    "brokerallocation_unique_account": "This account is already in the strategy's allocation.",
    "brokerallocation_priority_gte_1": "Priorities start at 1.",
    "brokeraccount_unique_label": "You already have an account with this name.",
    "brokeraccount_ops_range": "Orders per second must be between 1 and the broker's limit.",
    "paperaccount_reject_rate_range": "The reject rate is a share between 0 and 1.",
    "paperaccount_drop_rate_range": "The lost-answer rate is a share between 0 and 1.",
    "paperaccount_slippage_non_negative": "Slippage cannot be negative.",
    "deployment_mult_gte_1": "The multiplier is at least 1.",
    "deployment_max_loss_positive": "The daily loss limit must be above ₹0.",
    "listing_capital_positive": "The capital required must be above ₹0.",
    "listing_title_not_empty": "Give the listing a title.",
    "listing_subscribe_only_needs_ra": "A subscribe-only listing needs a SEBI Research "
    "Analyst registration number.",
    "plan_share_0_to_50": "The profit share is between 0 and 50 %.",
    "plan_fee_not_negative": "The fee cannot be negative.",
    "rating_stars_1_to_5": "Choose one to five stars.",
}

_WORDS = {
    "gte": "at least",
    "gt0": "above zero",
    "ops": "orders per second",
    "mult": "multiplier",
    "pnl": "P&L",
}


def humanise(name: str) -> str:
    """'deployment_unique_account' → 'Deployment: unique account' (for names not listed)."""
    model, _, rule = name.partition("_")
    words = [_WORDS.get(word, word) for word in re.split(r"_+", rule or model)]
    return f"{model.capitalize()}: {' '.join(words)}." if rule else f"{' '.join(words)}."


def message_for(name: str) -> str:
    return MESSAGES.get(name) or f"Not allowed ({humanise(name)})"


def install() -> None:
    """Give every constraint that has no message of its own the one above."""
    from django.db.models.constraints import BaseConstraint

    original = BaseConstraint.get_violation_error_message

    def get_violation_error_message(self: Any) -> str:
        if self.violation_error_message in (None, self.default_violation_error_message):
            return message_for(self.name)
        return str(original(self))

    BaseConstraint.get_violation_error_message = get_violation_error_message  # type: ignore[method-assign]
