"""The alerts settings page and its forms. Thin: parse, call a service, redirect."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from trader.alerts import selectors, services
from trader.alerts.models import AlertChannel
from trader.http import AuthenticatedHttpRequest


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _channel_or_404(request: AuthenticatedHttpRequest, pk: int) -> AlertChannel:
    try:
        return selectors.channel_get_for_user(user=request.user, pk=pk)
    except AlertChannel.DoesNotExist:
        raise Http404("No such channel.") from None


@login_required
def alert_settings(request: AuthenticatedHttpRequest) -> HttpResponse:
    data = selectors.alert_settings_for_user(user=request.user)
    return render(
        request,
        "alerts/settings.html",
        {
            "data": data,
            "vapid_public_key": settings.WEBPUSH_VAPID_PUBLIC_KEY,
            "revealed": request.session.pop("alerts_revealed", None),
        },
    )


@login_required
@require_POST
def channel_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    kind = request.POST.get("kind")
    label = request.POST.get("label", "")
    try:
        if kind == "email":
            services.channel_email_add(
                user=request.user, address=request.POST.get("address", ""), label=label
            )
            messages.success(request, "Email channel added.")
        elif kind == "telegram":
            channel, username = services.channel_telegram_add(
                user=request.user, bot_token=request.POST.get("bot_token", ""), label=label
            )
            request.session["alerts_revealed"] = {
                "telegram": channel.pk,
                "link": f"https://t.me/{username}?start={channel.link_code}" if username else "",
                "code": channel.link_code,
            }
        elif kind == "webhook":
            channel, secret = services.channel_webhook_add(
                user=request.user, url=request.POST.get("url", ""), label=label
            )
            # Shown once, on the next page view, then gone from the session.
            request.session["alerts_revealed"] = {"webhook": channel.pk, "secret": secret}
        else:
            messages.error(request, "Choose a kind of channel.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("alerts:settings")


@login_required
@require_POST
def webpush_subscribe(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The page's script posts the browser's PushSubscription as JSON."""
    try:
        subscription = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        subscription = None
    if not isinstance(subscription, dict):
        return JsonResponse({"error": "Not a push subscription."}, status=400)
    try:
        channel = services.channel_webpush_add(user=request.user, subscription=subscription)
    except ValidationError as exc:
        return JsonResponse({"error": _errors(exc)}, status=400)
    return JsonResponse({"channel": channel.pk})


@login_required
@require_POST
def telegram_verify(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    channel = _channel_or_404(request, pk)
    try:
        services.channel_telegram_verify(user=request.user, channel=channel)
    except (ValidationError, PermissionError) as exc:
        messages.error(request, _errors(exc) if isinstance(exc, ValidationError) else str(exc))
    else:
        messages.success(request, "Telegram chat verified: alerts can go there now.")
    return redirect("alerts:settings")


@login_required
@require_POST
def channel_test(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    services.channel_test(user=request.user, channel=_channel_or_404(request, pk))
    messages.success(request, "Test alert queued: its delivery shows below.")
    return redirect("alerts:settings")


@login_required
@require_POST
def channel_delete(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    services.channel_delete(user=request.user, channel=_channel_or_404(request, pk))
    messages.success(request, "Channel deleted.")
    return redirect("alerts:settings")


@login_required
@require_POST
def rules_save(request: AuthenticatedHttpRequest) -> HttpResponse:
    chosen = []
    for value in request.POST.getlist("rule"):
        event, _, channel_id = value.partition(":")
        if channel_id.isdigit():
            chosen.append((event, int(channel_id)))
    count = services.rules_set(user=request.user, chosen=chosen)
    messages.success(request, f"Saved: {count} alert route(s) on.")
    return redirect("alerts:settings")
