"""The signal webhook (no session: the secret or signature authenticates) and the owner's
buttons on the strategy page. Thin: parse, call a service, answer."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from trader.http import AuthenticatedHttpRequest
from trader.models import Strategy
from trader.signals import services
from trader.strategies import selectors as strategy_selectors


@csrf_exempt
def signal_webhook(request: HttpRequest, public_id: str) -> HttpResponse:
    """POST a signal: JSON {secret, signal_id, action: entry|exit, timestamp}."""
    if request.method != "POST":
        return JsonResponse({"status": "refused", "error": "POST a JSON signal."}, status=405)
    answer = services.signal_receive(
        public_id=public_id,
        body=request.body,
        signature=request.headers.get(services.SIGNATURE_HEADER, ""),
    )
    response = JsonResponse(answer.body, status=answer.status)
    if answer.status == 429:
        response["Retry-After"] = "60"
    return response


def _strategy_or_404(request: AuthenticatedHttpRequest, pk: int) -> Strategy:
    try:
        return strategy_selectors.strategy_get_for_user(user=request.user, pk=pk)
    except Strategy.DoesNotExist:
        raise Http404("No such strategy.") from None


@login_required
@require_POST
def webhook_enable(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Make or rotate the secret: the answer is the only time it is shown."""
    strategy = _strategy_or_404(request, pk)
    issued = services.webhook_enable(user=request.user, strategy=strategy)
    url = request.build_absolute_uri(
        reverse("signals:webhook", kwargs={"public_id": issued.webhook.public_id})
    )
    response = render(
        request,
        "signals/secret.html",
        {"strategy": strategy, "issued": issued, "url": url},
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def webhook_disable(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    strategy = _strategy_or_404(request, pk)
    services.webhook_disable(user=request.user, strategy=strategy)
    messages.success(request, "Signals are off: the strategy trades at its times again.")
    return redirect("strategies:detail", pk=strategy.pk)


@login_required
@require_POST
def webhook_signature(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    strategy = _strategy_or_404(request, pk)
    required = request.POST.get("required") == "1"
    services.webhook_signature_require(user=request.user, strategy=strategy, required=required)
    messages.success(
        request, "Unsigned signals are refused." if required else "The secret alone is enough."
    )
    return redirect("strategies:detail", pk=strategy.pk)
