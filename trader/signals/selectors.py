"""Reads for the strategy page: the webhook and the latest signals with their outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trader.signals.models import Signal, SignalWebhook

RECENT_SIGNALS = 50


@dataclass
class SignalPanel:
    webhook: SignalWebhook | None
    signals: list[Signal] = field(default_factory=list)


def signal_panel_for_strategy(*, strategy: Any) -> SignalPanel:
    """The strategy's webhook (if any) and its last signals, newest first (two queries). The
    caller has already checked that the strategy is the user's."""
    webhook = SignalWebhook.objects.filter(strategy=strategy).first()
    if webhook is None:
        return SignalPanel(webhook=None)
    return SignalPanel(webhook=webhook, signals=list(webhook.signals.all()[:RECENT_SIGNALS]))
