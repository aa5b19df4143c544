"""A user's alert channels and rules, and the delivery of one alert (a task calls it)."""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from brokers.crypto import encrypt
from trader.alerts import transports
from trader.alerts.models import (
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertRule,
    ChannelKind,
    DeliveryState,
)

logger = logging.getLogger(__name__)

_BOT_TOKEN = re.compile(r"^\d{3,15}:[A-Za-z0-9_-]{30,60}$")
MAX_CHANNELS = 20


def _label(label: str, default: str) -> str:
    return (label or "").strip()[:60] or default


def _room_for_one_more(user: Any) -> None:
    if AlertChannel.objects.filter(user=user).count() >= MAX_CHANNELS:
        raise ValidationError(f"At most {MAX_CHANNELS} channels: delete one first.")


def _own_address(user: Any, address: str) -> bool:
    from allauth.account.models import EmailAddress

    if address.lower() == (user.email or "").lower():
        return True
    return EmailAddress.objects.filter(user=user, email__iexact=address, verified=True).exists()


def channel_email_add(*, user: Any, address: str, label: str = "") -> AlertChannel:
    address = (address or user.email or "").strip()
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError({"address": "Give a valid email address."}) from None
    if not _own_address(user, address):
        # Alerts must not become a way to mail strangers from the platform.
        raise ValidationError(
            {"address": "Use your own address: your login's or one verified under Account."}
        )
    _room_for_one_more(user)
    return AlertChannel.objects.create(
        user=user,
        kind=ChannelKind.EMAIL,
        label=_label(label, address),
        target=address,
        verified_at=timezone.now(),
    )


def channel_telegram_add(*, user: Any, bot_token: str, label: str = "") -> tuple[AlertChannel, str]:
    """A Telegram channel on the user's own bot, waiting for its chat: returns the channel and
    the bot's user name (for the t.me link that sends "/start <code>"). The token is checked
    with Telegram (getMe) and stored encrypted."""
    bot_token = (bot_token or "").strip()
    if not _BOT_TOKEN.match(bot_token):
        raise ValidationError(
            {"bot_token": "That is not a bot token (123456:ABC… from BotFather)."}
        )
    _room_for_one_more(user)
    try:
        me = transports.telegram_call(bot_token, "getMe")
    except transports.TransportError as exc:
        raise ValidationError({"bot_token": f"Telegram refused the token: {exc.message}"}) from exc
    username = str((me or {}).get("username") or "")
    channel = AlertChannel.objects.create(
        user=user,
        kind=ChannelKind.TELEGRAM,
        label=_label(label, f"Telegram @{username}" if username else "Telegram"),
        secret_encrypted=encrypt(bot_token),
        link_code=secrets.token_hex(8),
    )
    return channel, username


def channel_telegram_verify(*, user: Any, channel: AlertChannel) -> AlertChannel:
    """Find the chat that sent "/start <link code>" to the bot (getUpdates) and keep its id:
    only that chat gets alerts. ValidationError when no such message arrived yet."""
    from brokers.crypto import decrypt

    if channel.user_id != user.pk or channel.kind != ChannelKind.TELEGRAM:
        raise PermissionError("Not your Telegram channel.")
    try:
        updates = transports.telegram_call(
            decrypt(channel.secret_encrypted), "getUpdates", {"allowed_updates": ["message"]}
        )
    except transports.TransportError as exc:
        raise ValidationError(f"Telegram could not be asked: {exc.message}") from exc
    wanted = f"/start {channel.link_code}"
    for update in reversed(updates or []):
        message = update.get("message") or {}
        if str(message.get("text") or "").strip() == wanted and message.get("chat"):
            channel.target = str(message["chat"]["id"])
            channel.verified_at = timezone.now()
            channel.save(update_fields=["target", "verified_at"])
            return channel
    raise ValidationError(
        f'No "/start {channel.link_code}" reached the bot yet: open the link, press Start, '
        "then verify again."
    )


def channel_webhook_add(*, user: Any, url: str, label: str = "") -> tuple[AlertChannel, str]:
    """An outgoing webhook; returns it with its signing secret (shown once, kept encrypted:
    it must be read to sign every delivery)."""
    url = (url or "").strip()
    refused = transports.url_allowed(url) if len(url) <= 1000 else "At most 1000 characters."
    if refused:
        raise ValidationError({"url": refused})
    _room_for_one_more(user)
    secret = "whk_" + secrets.token_urlsafe(32)
    channel = AlertChannel.objects.create(
        user=user,
        kind=ChannelKind.WEBHOOK,
        label=_label(label, url[:60]),
        target=url,
        secret_encrypted=encrypt(secret),
        verified_at=timezone.now(),
    )
    return channel, secret


def channel_webpush_add(
    *, user: Any, subscription: Mapping[str, Any], label: str = ""
) -> AlertChannel:
    """A browser's push subscription (PushSubscription.toJSON()) for this user; the same
    endpoint subscribed again replaces its keys."""
    if not settings.WEBPUSH_VAPID_PUBLIC_KEY:
        raise ValidationError("Web push is not configured on this server.")
    endpoint = subscription.get("endpoint")
    keys = subscription.get("keys")
    if (
        not isinstance(endpoint, str)
        or len(endpoint) > 1000
        or not isinstance(keys, dict)
        or not all(isinstance(keys.get(k), str) and keys.get(k) for k in ("p256dh", "auth"))
    ):
        raise ValidationError("Not a push subscription.")
    refused = transports.url_allowed(endpoint)
    if refused:
        raise ValidationError(refused)
    stored = encrypt(json.dumps({"p256dh": keys["p256dh"], "auth": keys["auth"]}))
    existing = AlertChannel.objects.filter(
        user=user, kind=ChannelKind.WEBPUSH, target=endpoint
    ).first()
    if existing is not None:
        existing.secret_encrypted, existing.enabled = stored, True
        existing.save(update_fields=["secret_encrypted", "enabled"])
        return existing
    _room_for_one_more(user)
    return AlertChannel.objects.create(
        user=user,
        kind=ChannelKind.WEBPUSH,
        label=_label(label, "This browser"),
        target=endpoint,
        secret_encrypted=stored,
        verified_at=timezone.now(),
    )


def channel_delete(*, user: Any, channel: AlertChannel) -> None:
    if channel.user_id != user.pk:
        raise PermissionError("Not your channel.")
    channel.delete()


def rules_set(*, user: Any, chosen: Iterable[tuple[str, int]]) -> int:
    """Replace the user's rules with the (event, channel id) pairs given; pairs naming
    another user's channel or an unknown event are ignored. Returns how many are on."""
    own = set(AlertChannel.objects.filter(user=user).values_list("pk", flat=True))
    pairs = {(e, c) for e, c in chosen if e in AlertEvent.values and c in own}
    with transaction.atomic():
        AlertRule.objects.filter(channel__user=user).delete()
        AlertRule.objects.bulk_create(
            [AlertRule(event=event, channel_id=channel_id) for event, channel_id in pairs]
        )
    return len(pairs)


def channel_test(*, user: Any, channel: AlertChannel) -> AlertDelivery:
    """Send a test message through one channel (as a task, after the commit)."""
    if channel.user_id != user.pk:
        raise PermissionError("Not your channel.")
    delivery = AlertDelivery.objects.create(
        user=user,
        channel=channel,
        subject="Test alert",
        body=f"Alerts reach you here ({channel.get_kind_display()}).",
    )
    deliveries_enqueue(delivery_ids=[delivery.pk])
    return delivery


def deliveries_enqueue(*, delivery_ids: list[int]) -> None:
    def enqueue() -> None:
        from trader.alerts.tasks import alert_deliver_task

        for delivery_id in delivery_ids:
            try:
                alert_deliver_task.delay(delivery_id)
            except Exception:
                logger.warning("could not enqueue alert delivery %s", delivery_id)

    transaction.on_commit(enqueue)


def retry_delay(attempts: int) -> int:
    """Seconds before the next try after `attempts` tries: base, 4x base, 16x base…"""
    return int(settings.ALERT_RETRY_BASE_SECONDS) * 4 ** max(0, attempts - 1)


def alert_deliver(*, delivery_id: int) -> int | None:
    """Try one delivery once. Returns the seconds to wait before trying again (a transient
    failure with tries left), else None (sent, failed for good, or not this caller's: the
    claim is a conditional UPDATE, so two workers never both send). A failure is recorded on
    the delivery and its channel; it never reaches the engine."""
    claimed = AlertDelivery.objects.filter(
        pk=delivery_id, state__in=[DeliveryState.PENDING, DeliveryState.RETRYING]
    ).update(state=DeliveryState.SENDING, attempts=F("attempts") + 1)
    if not claimed:
        return None
    delivery = AlertDelivery.objects.select_related("channel").get(pk=delivery_id)
    channel = delivery.channel
    now = timezone.now()
    if not channel.usable:
        _delivery_failed(delivery, "The channel is off or not verified.", retry=False)
        return None
    try:
        transports.SENDERS[ChannelKind(channel.kind)](channel, delivery)
    except transports.TransportError as exc:
        retry = not exc.permanent and delivery.attempts < settings.ALERT_MAX_ATTEMPTS
        _delivery_failed(delivery, exc.message, retry=retry)
        return retry_delay(delivery.attempts) if retry else None
    except Exception as exc:  # a bug or a bad stored value: recorded, never raised to a trade
        logger.exception("alert delivery %s failed", delivery_id)
        _delivery_failed(delivery, f"Unexpected error: {exc.__class__.__name__}", retry=False)
        return None
    AlertDelivery.objects.filter(pk=delivery.pk).update(
        state=DeliveryState.SENT, sent_at=now, last_error=""
    )
    AlertChannel.objects.filter(pk=channel.pk).update(last_success_at=now)
    return None


def _delivery_failed(delivery: AlertDelivery, message: str, *, retry: bool) -> None:
    now = timezone.now()
    AlertDelivery.objects.filter(pk=delivery.pk).update(
        state=DeliveryState.RETRYING if retry else DeliveryState.FAILED, last_error=message
    )
    AlertChannel.objects.filter(pk=delivery.channel_id).update(
        last_failure_at=now, last_error=message
    )
