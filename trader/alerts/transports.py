"""One transport per channel kind. Each raises TransportError saying whether trying again may
help (`permanent=False`: a timeout, a 5xx, a 429) or not (a refused token, a gone endpoint)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import send_mail

from brokers.crypto import decrypt
from trader.alerts.models import AlertChannel, AlertDelivery, ChannelKind

SIGNATURE_HEADER = "X-Trader-Signature"


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


def _timeout() -> float:
    return float(settings.ALERT_HTTP_TIMEOUT_SECONDS)


def _http_error(response: requests.Response, what: str) -> TransportError:
    # 408 and 429 say "later"; another 4xx will not change by trying again.
    permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
    return TransportError(f"{what} answered HTTP {response.status_code}.", permanent=permanent)


def url_allowed(url: str) -> str | None:
    """Why an outgoing URL is refused, or None. Private, loopback and link-local addresses
    are refused unless ALERT_ALLOW_PRIVATE_URLS (tests, development): a user's URL must not
    reach the platform's own network."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Give an http:// or https:// URL."
    if settings.ALERT_ALLOW_PRIVATE_URLS:
        return None
    if parts.scheme != "https":
        return "Give an https:// URL."
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return "That host name does not resolve."
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            return "That address is not on the public internet."
    return None


# --- email ----------------------------------------------------------------------------------
def email_send(channel: AlertChannel, delivery: AlertDelivery) -> None:
    prefix = getattr(settings, "ACCOUNT_EMAIL_SUBJECT_PREFIX", "")
    try:
        send_mail(f"{prefix}{delivery.subject}", delivery.body, None, [channel.target])
    except Exception as exc:  # SMTP and socket errors alike: the server may come back
        raise TransportError(f"Mail server: {exc.__class__.__name__}", permanent=False) from exc


# --- Telegram -------------------------------------------------------------------------------
def telegram_call(token: str, method: str, payload: dict[str, Any] | None = None) -> Any:
    """One Bot API call; its `result`, or TransportError."""
    url = f"{settings.TELEGRAM_API_URL.rstrip('/')}/bot{token}/{method}"
    try:
        response = requests.post(url, json=payload or {}, timeout=_timeout())
    except requests.RequestException as exc:
        raise TransportError("Telegram could not be reached.", permanent=False) from exc
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code != 200 or not answer.get("ok"):
        error = _http_error(response, "Telegram")
        description = str(answer.get("description") or "")[:200]
        raise TransportError(f"{error.message} {description}".strip(), permanent=error.permanent)
    return answer.get("result")


def telegram_send(channel: AlertChannel, delivery: AlertDelivery) -> None:
    text = f"{delivery.subject}\n\n{delivery.body}"[:4000]
    telegram_call(
        decrypt(channel.secret_encrypted),
        "sendMessage",
        {"chat_id": channel.target, "text": text, "disable_web_page_preview": True},
    )


# --- outgoing webhook -----------------------------------------------------------------------
def webhook_body(delivery: AlertDelivery) -> bytes:
    return json.dumps(
        {
            "delivery": delivery.pk,
            "event": delivery.event or "test",
            "subject": delivery.subject,
            "body": delivery.body,
            "created_at": delivery.created_at.isoformat(),
        },
        separators=(",", ":"),
    ).encode()


def webhook_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_send(channel: AlertChannel, delivery: AlertDelivery) -> None:
    refused = url_allowed(channel.target)
    if refused:
        raise TransportError(refused, permanent=True)
    body = webhook_body(delivery)
    headers = {
        "Content-Type": "application/json",
        "X-Trader-Event": delivery.event or "test",
        "X-Trader-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: webhook_signature(decrypt(channel.secret_encrypted), body),
    }
    try:
        response = requests.post(
            channel.target, data=body, headers=headers, timeout=_timeout(), allow_redirects=False
        )
    except requests.RequestException as exc:
        raise TransportError("The webhook could not be reached.", permanent=False) from exc
    if not 200 <= response.status_code < 300:
        raise _http_error(response, "The webhook")


# --- web push -------------------------------------------------------------------------------
def webpush_send(channel: AlertChannel, delivery: AlertDelivery) -> None:
    from pywebpush import WebPushException, webpush

    if not settings.WEBPUSH_VAPID_PRIVATE_KEY:
        raise TransportError("Web push is not configured on this server.", permanent=True)
    refused = url_allowed(channel.target)
    if refused:
        raise TransportError(refused, permanent=True)
    keys = json.loads(decrypt(channel.secret_encrypted))
    try:
        webpush(
            subscription_info={"endpoint": channel.target, "keys": keys},
            data=json.dumps({"title": delivery.subject, "body": delivery.body[:500]}),
            vapid_private_key=settings.WEBPUSH_VAPID_PRIVATE_KEY,
            vapid_claims={"sub": settings.WEBPUSH_SUBJECT},
            ttl=3600,
            timeout=_timeout(),
        )
    except WebPushException as exc:
        response = exc.response
        if response is not None:
            # 404 and 410: the browser dropped the subscription; it will not come back.
            raise _http_error(response, "The push service") from exc
        raise TransportError("The push service could not be reached.", permanent=False) from exc
    except requests.RequestException as exc:
        raise TransportError("The push service could not be reached.", permanent=False) from exc


SENDERS = {
    ChannelKind.EMAIL: email_send,
    ChannelKind.TELEGRAM: telegram_send,
    ChannelKind.WEBHOOK: webhook_send,
    ChannelKind.WEBPUSH: webpush_send,
}
