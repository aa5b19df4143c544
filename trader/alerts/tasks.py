"""Alert tasks (queue `default`): thin, ids in, safe to run twice."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from trader.alerts import routing, services


@shared_task(ignore_result=True)
def alerts_route_task(event_ids: list[int]) -> None:
    """Make the deliveries of these audit events and start sending them."""
    delivery_ids = routing.alerts_route(event_ids=event_ids)
    services.deliveries_enqueue(delivery_ids=delivery_ids)


@shared_task(bind=True, ignore_result=True, max_retries=None)
def alert_deliver_task(self: Any, delivery_id: int) -> None:
    """Send one alert; a transient failure comes back later with backoff (the service counts
    the tries and gives up after ALERT_MAX_ATTEMPTS)."""
    wait = services.alert_deliver(delivery_id=delivery_id)
    if wait is not None:
        raise self.retry(countdown=wait)
