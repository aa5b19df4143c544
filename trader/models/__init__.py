"""Trader domain models, one module per sub-domain."""

from trader.models.accounts import Profile, User, UserManager

__all__ = ["Profile", "User", "UserManager"]
