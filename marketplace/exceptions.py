"""Errors the marketplace services raise; their messages are shown to people as they are."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class MarketplaceError(ValidationError):
    """Input the marketplace refuses. A ValidationError, so a form can show it on a field."""


class StaleStateError(MarketplaceError):
    """Someone else moved the listing first (the conditional update matched nothing)."""
