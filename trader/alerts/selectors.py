"""Reads for the alerts settings page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trader.alerts.models import AlertChannel, AlertDelivery, AlertEvent, AlertRule

RECENT_DELIVERIES = 50


@dataclass
class AlertSettings:
    channels: list[AlertChannel]
    events: list[tuple[str, str]]
    chosen: set[tuple[str, int]]
    deliveries: list[AlertDelivery]


def alert_settings_for_user(*, user: Any) -> AlertSettings:
    """The user's channels, the (event, channel) boxes ticked and the latest deliveries
    (three queries)."""
    return AlertSettings(
        channels=list(AlertChannel.objects.filter(user=user)),
        events=list(AlertEvent.choices),
        chosen=set(AlertRule.objects.filter(channel__user=user).values_list("event", "channel_id")),
        deliveries=list(
            AlertDelivery.objects.filter(user=user).select_related("channel")[:RECENT_DELIVERIES]
        ),
    )


def channel_get_for_user(*, user: Any, pk: int) -> AlertChannel:
    """One of the user's channels; AlertChannel.DoesNotExist for anybody else's."""
    return AlertChannel.objects.get(pk=pk, user=user)
