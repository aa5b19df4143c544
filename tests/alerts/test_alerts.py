"""Alerts end to end: an engine audit event → routed by rule → delivered on each channel
(email, Telegram through a local Bot API emulator, an HMAC-signed webhook, web push to a local
push service), retries with backoff, and failing channels that never touch trading."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core import mail
from django.urls import reverse

from execution.audit import event_record
from tests.alerts.loopback import (
    LoopbackServer,
    Receiver,
    TelegramState,
    receiver_app,
    telegram_app,
    user_presses_start,
)
from tests.execution.engine_factories import RunFactory
from trader.alerts import services, tasks
from trader.alerts.models import AlertChannel, AlertDelivery, DeliveryState

pytestmark = pytest.mark.django_db

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def telegram(settings):
    state = TelegramState(bots={BOT_TOKEN: "trader_alerts_bot"})
    server = LoopbackServer(telegram_app(state))
    settings.TELEGRAM_API_URL = server.url
    yield state
    server.stop()


@pytest.fixture
def receiver():
    receiver = Receiver()
    server = LoopbackServer(receiver_app(receiver))
    receiver.url = server.url  # type: ignore[attr-defined]
    yield receiver
    server.stop()


@pytest.fixture
def vapid(settings):
    key = ec.generate_private_key(ec.SECP256R1())
    settings.WEBPUSH_VAPID_PRIVATE_KEY = b64url(
        key.private_numbers().private_value.to_bytes(32, "big")
    )
    settings.WEBPUSH_VAPID_PUBLIC_KEY = b64url(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


@pytest.fixture
def eager(monkeypatch):
    """Celery tasks run in this process when enqueued (retries at once, without the wait)."""
    for task in (tasks.alerts_route_task, tasks.alert_deliver_task):
        monkeypatch.setattr(task, "delay", lambda *args, _t=task: _t.apply(args=args))


def telegram_channel(owner, telegram, chat_id=777):
    channel, _username = services.channel_telegram_add(user=owner, bot_token=BOT_TOKEN)
    user_presses_start(telegram, BOT_TOKEN, chat_id, f"/start {channel.link_code}")
    return services.channel_telegram_verify(user=owner, channel=channel)


def browser_subscription(endpoint: str):
    """What PushSubscription.toJSON() gives, with the browser's private key kept for decrypting."""
    key = ec.generate_private_key(ec.SECP256R1())
    auth = os.urandom(16)
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return (
        {"endpoint": endpoint, "keys": {"p256dh": b64url(public), "auth": b64url(auth)}},
        key,
        auth,
    )


def test_a_fill_reaches_every_channel_it_is_routed_to(
    owner, telegram, receiver, vapid, eager, django_capture_on_commit_callbacks
):
    import http_ece

    email = services.channel_email_add(user=owner, address=owner.email)
    tg = telegram_channel(owner, telegram)
    hook, secret = services.channel_webhook_add(user=owner, url=f"{receiver.url}/hook")
    subscription, browser_key, auth = browser_subscription(f"{receiver.url}/push/abc")
    push = services.channel_webpush_add(user=owner, subscription=subscription)
    services.rules_set(user=owner, chosen=[("fill", c.pk) for c in (email, tg, hook, push)])
    run = RunFactory(strategy_version__strategy__owner=owner, owner=owner)
    with django_capture_on_commit_callbacks(execute=True):
        event = event_record(
            kind="order.filled",
            message="SELL 75 NIFTY26N2626000CE filled",
            user_id=owner.pk,
            run_id=run.pk,
        )
    deliveries = AlertDelivery.objects.filter(source_event_id=event.pk)
    assert {d.state for d in deliveries} == {"sent"} and deliveries.count() == 4
    assert mail.outbox[-1].to == [owner.email] and "Fills" in mail.outbox[-1].subject
    assert telegram.sent[-1]["chat_id"] == "777" and "filled" in telegram.sent[-1]["text"]
    hook_requests = [r for r in receiver.requests if r[1].startswith(b"{")]
    headers, body = hook_requests[-1]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Trader-Signature"] == expected and headers["X-Trader-Event"] == "fill"
    assert json.loads(body)["subject"].startswith("Fills: ")
    push_headers, push_body = [r for r in receiver.requests if not r[1].startswith(b"{")][-1]
    assert push_headers["Content-Encoding"] == "aes128gcm"
    assert push_headers["Authorization"].startswith("vapid t=")
    plain = http_ece.decrypt(
        push_body, private_key=browser_key, auth_secret=auth, version="aes128gcm"
    )
    assert json.loads(plain)["title"].startswith("Fills: ")


def test_events_nobody_asked_for_are_not_sent(owner, eager, django_capture_on_commit_callbacks):
    email = services.channel_email_add(user=owner, address=owner.email)
    services.rules_set(user=owner, chosen=[("rejection", email.pk)])
    with django_capture_on_commit_callbacks(execute=True):
        event_record(kind="order.filled", message="filled", user_id=owner.pk)
        event_record(kind="order.sent", message="sent", user_id=owner.pk)
    assert not AlertDelivery.objects.exists() and not mail.outbox


def test_a_routed_event_is_delivered_once_even_if_routed_twice(
    owner, eager, django_capture_on_commit_callbacks
):
    email = services.channel_email_add(user=owner, address=owner.email)
    services.rules_set(user=owner, chosen=[("kill_switch", email.pk)])
    with django_capture_on_commit_callbacks(execute=True):
        event = event_record(kind="killswitch.engaged", message="engaged", user_id=owner.pk)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.alerts_route_task.apply(args=[[event.pk]])
    assert AlertDelivery.objects.count() == 1 and len(mail.outbox) == 1


def test_the_platform_wide_kill_switch_tells_everyone_who_asked(
    owner, stranger, eager, django_capture_on_commit_callbacks
):
    mine = services.channel_email_add(user=owner, address=owner.email)
    services.channel_email_add(user=stranger, address=stranger.email)
    services.rules_set(user=owner, chosen=[("kill_switch", mine.pk)])
    with django_capture_on_commit_callbacks(execute=True):
        event_record(kind="killswitch.engaged", message="platform-wide", user_id=None)
    assert [m.to for m in mail.outbox] == [[owner.email]]


def test_webhook_failures_are_retried_with_backoff_then_delivered(owner, receiver, settings):
    settings.ALERT_RETRY_BASE_SECONDS = 15
    hook, _ = services.channel_webhook_add(user=owner, url=f"{receiver.url}/hook")
    receiver.fail_next = 2
    delivery = AlertDelivery.objects.create(user=owner, channel=hook, subject="s", body="b")
    waits = [services.alert_deliver(delivery_id=delivery.pk) for _ in range(3)]
    delivery.refresh_from_db()
    assert waits == [15, 60, None]
    assert delivery.state == "sent" and delivery.attempts == 3 and len(receiver.requests) == 3


def test_a_failing_channel_is_recorded_and_never_blocks_the_others_or_trading(
    owner, telegram, receiver, settings, eager, monkeypatch, django_capture_on_commit_callbacks
):
    settings.ALERT_MAX_ATTEMPTS = 3
    email = services.channel_email_add(user=owner, address=owner.email)
    tg = telegram_channel(owner, telegram)
    telegram.chats.clear()  # the user deleted the chat: Telegram answers 400 chat not found
    hook, _ = services.channel_webhook_add(user=owner, url=f"{receiver.url}/hook")
    receiver.status = 500  # the receiver is broken for good
    services.rules_set(user=owner, chosen=[("rejection", c.pk) for c in (email, tg, hook)])
    with django_capture_on_commit_callbacks(execute=True):
        event = event_record(kind="order.rejected", message="rejected", user_id=owner.pk)
    by_kind = {d.channel.kind: d for d in AlertDelivery.objects.filter(source_event_id=event.pk)}
    assert by_kind["email"].state == DeliveryState.SENT
    assert by_kind["telegram"].state == "failed" and by_kind["telegram"].attempts == 1
    assert "chat not found" in by_kind["telegram"].last_error
    assert by_kind["webhook"].state == "failed" and by_kind["webhook"].attempts == 3
    assert "HTTP 500" in AlertChannel.objects.get(pk=hook.pk).last_error

    def broker_down(*args):
        raise ConnectionError("no broker")

    monkeypatch.setattr(tasks.alerts_route_task, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        recorded = event_record(kind="order.rejected", message="again", user_id=owner.pk)
    assert recorded.pk is not None  # the engine's write went through


def test_telegram_link_flow_verifies_the_chat_by_its_start_code(owner, telegram):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="refused the token"):
        services.channel_telegram_add(user=owner, bot_token="999:" + "x" * 35)
    channel, username = services.channel_telegram_add(user=owner, bot_token=BOT_TOKEN)
    assert username == "trader_alerts_bot" and not channel.usable
    with pytest.raises(ValidationError, match='No "/start'):
        services.channel_telegram_verify(user=owner, channel=channel)
    user_presses_start(telegram, BOT_TOKEN, 555, "/start not-the-code")
    with pytest.raises(ValidationError):
        services.channel_telegram_verify(user=owner, channel=channel)
    user_presses_start(telegram, BOT_TOKEN, 777, f"/start {channel.link_code}")
    channel = services.channel_telegram_verify(user=owner, channel=channel)
    assert channel.usable and channel.target == "777"
    assert BOT_TOKEN not in channel.secret_encrypted


def test_settings_page_saves_rules_and_shows_deliveries(owner, owner_client, stranger_client):
    email = services.channel_email_add(user=owner, address=owner.email)
    AlertDelivery.objects.create(
        user=owner,
        channel=email,
        subject="Rejections: X",
        body="b",
        state="failed",
        last_error="Mail server: SMTPException",
    )
    answer = owner_client.post(
        reverse("alerts:rules"), {"rule": [f"fill:{email.pk}", "bogus:1", f"fill:{email.pk + 99}"]}
    )
    assert answer.status_code == 302
    assert list(email.rules.values_list("event", flat=True)) == ["fill"]
    page = owner_client.get(reverse("alerts:settings"))
    assert "Mail server: SMTPException" in page.text and "Rejections: X" in page.text
    assert "Rejections: X" not in stranger_client.get(reverse("alerts:settings")).text
    gone = stranger_client.post(reverse("alerts:channel-delete", args=[email.pk]))
    assert gone.status_code == 404 and AlertChannel.objects.filter(pk=email.pk).exists()


def test_webhook_signing_secret_is_shown_once_on_the_page(owner_client, receiver):
    owner_client.post(
        reverse("alerts:channel-add"), {"kind": "webhook", "url": f"{receiver.url}/x"}
    )
    first = owner_client.get(reverse("alerts:settings"))
    assert "whk_" in first.text
    assert "whk_" not in owner_client.get(reverse("alerts:settings")).text


def test_private_urls_are_refused_in_production(owner, settings):
    from django.core.exceptions import ValidationError

    settings.ALERT_ALLOW_PRIVATE_URLS = False
    for url in ("http://127.0.0.1:9/x", "https://127.0.0.1/x", "ftp://example.com/"):
        with pytest.raises(ValidationError):
            services.channel_webhook_add(user=owner, url=url)


def test_a_black_box_subscribers_alert_names_the_listing_and_hides_the_contract(
    owner, stranger, eager, django_capture_on_commit_callbacks
):
    from marketplace.models import Visibility
    from tests.marketplace.factories import ListingFactory

    listing = ListingFactory(
        visibility=Visibility.SUBSCRIBE_ONLY, title="Secret sauce", sebi_ra_number="INH000012345"
    )
    strategy = listing.strategy
    run = RunFactory(strategy_version=strategy.current_version, owner=stranger)
    email = services.channel_email_add(user=stranger, address=stranger.email)
    services.rules_set(user=stranger, chosen=[("fill", email.pk)])
    with django_capture_on_commit_callbacks(execute=True):
        event_record(
            kind="order.filled",
            message="SELL 75 NIFTY26N2626000CE filled at 10:15:02",
            user_id=stranger.pk,
            run_id=run.pk,
        )
    sent = mail.outbox[-1]
    assert "Secret sauce" in sent.subject and strategy.name not in sent.subject
    assert "NIFTY26N2626000CE" not in sent.body and "10:15:02" not in sent.body
    assert "(contract hidden)" in sent.body


def test_the_page_subscribes_a_browser_for_web_push(owner, owner_client, vapid, receiver):
    subscription, _, _ = browser_subscription(f"{receiver.url}/push/xyz")
    url = reverse("alerts:webpush-subscribe")
    answer = owner_client.post(url, data=json.dumps(subscription), content_type="application/json")
    assert answer.status_code == 200
    channel = AlertChannel.objects.get(pk=answer.json()["channel"])
    assert channel.kind == "webpush" and channel.usable and channel.user == owner
    assert subscription["keys"]["auth"] not in channel.secret_encrypted
    again = owner_client.post(url, data=json.dumps(subscription), content_type="application/json")
    assert again.json()["channel"] == channel.pk  # the same endpoint is one channel
    for bad in (b"nope", b"[]", json.dumps({"endpoint": "x"}).encode()):
        assert owner_client.post(url, data=bad, content_type="application/json").status_code == 400
    assert "data-push-subscribe" in owner_client.get(reverse("alerts:settings")).text


def test_telegram_is_linked_through_the_page(owner, owner_client, telegram):
    added = owner_client.post(
        reverse("alerts:channel-add"), {"kind": "telegram", "bot_token": BOT_TOKEN}
    )
    assert added.status_code == 302
    channel = AlertChannel.objects.get(kind="telegram")
    page = owner_client.get(reverse("alerts:settings"))
    assert f"https://t.me/trader_alerts_bot?start={channel.link_code}" in page.text
    assert BOT_TOKEN not in page.text
    verify = reverse("alerts:telegram-verify", args=[channel.pk])
    owner_client.post(verify)
    assert not AlertChannel.objects.get(pk=channel.pk).usable
    user_presses_start(telegram, BOT_TOKEN, 4242, f"/start {channel.link_code}")
    owner_client.post(verify)
    assert AlertChannel.objects.get(pk=channel.pk).target == "4242"
    bad = owner_client.post(reverse("alerts:channel-add"), {"kind": "telegram", "bot_token": "x"})
    assert bad.status_code == 302 and AlertChannel.objects.count() == 1


def test_email_alerts_go_only_to_the_users_own_verified_addresses(owner, stranger):
    from allauth.account.models import EmailAddress
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="your own"):
        services.channel_email_add(user=owner, address=stranger.email)
    EmailAddress.objects.create(user=owner, email="second@example.com", verified=False)
    with pytest.raises(ValidationError, match="your own"):
        services.channel_email_add(user=owner, address="second@example.com")
    EmailAddress.objects.filter(email="second@example.com").update(verified=True)
    assert services.channel_email_add(user=owner, address="SECOND@example.com").usable


def test_vapid_keys_prints_a_pair_that_signs(capsys):
    from django.core.management import call_command
    from py_vapid import Vapid02

    call_command("vapid_keys")
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    vapid = Vapid02.from_raw(lines["WEBPUSH_VAPID_PRIVATE_KEY"].encode())
    headers = vapid.sign({"sub": "mailto:a@example.com", "aud": "https://push.example.com"})
    assert headers["Authorization"].startswith("vapid t=")
    public = base64.urlsafe_b64decode(lines["WEBPUSH_VAPID_PUBLIC_KEY"] + "==")
    assert len(public) == 65 and public[0] == 4  # an uncompressed P-256 point
