"""Trader pages of the engine: runs with orders and timings, consolidated positions, the kill
switch (one POST from every page) and "test now on paper"."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from execution import planning, selectors, services
from execution.killswitch import kill_switch_engage, kill_switch_rearm
from marketplace import disclosure


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "execution/run_list.html",
        {
            "runs": disclosure.runs_disclosed(
                user=request.user, runs=selectors.runs_for_user(user=request.user)
            ),
            "kill": selectors.kill_switch_state(user=request.user),
            "testable": selectors.strategies_to_test_for_user(user=request.user),
            "not_ready": selectors.readiness_problems_for_user(
                user=request.user, day=planning.today_ist()
            ),
            "attention": selectors.orders_needing_attention_for_user(user=request.user),
        },
    )


@login_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = selectors.run_get_for_user(user=request.user, pk=pk)
    detail = disclosure.run_disclosed(user=request.user, run=run)
    return render(request, "execution/run_detail.html", {"detail": detail, "run": detail.run})


@login_required
def positions(request: HttpRequest) -> HttpResponse:
    rows, consolidated = disclosure.positions_disclosed(
        user=request.user, positions=selectors.open_positions_for_user(user=request.user)
    )
    return render(
        request, "execution/positions.html", {"positions": rows, "consolidated": consolidated}
    )


@login_required
@require_POST
def kill_switch(request: HttpRequest) -> HttpResponse:
    """Engage (default) or re-arm the user's own switch; staff may act on the global one."""
    action = request.POST.get("action", "engage")
    target = None if request.POST.get("scope") == "global" else request.user
    try:
        if action == "rearm":
            kill_switch_rearm(actor=request.user, user=target)
            messages.success(request, "Kill switch re-armed: new entries are allowed again.")
        else:
            kill_switch_engage(actor=request.user, user=target, reason="Pressed in the web UI.")
            messages.warning(
                request,
                "Kill switch engaged: open orders are being cancelled and every position "
                "closed. No new entries until you re-arm it.",
            )
    except PermissionError as exc:
        messages.error(request, str(exc))
    next_url = request.POST.get("next", "")
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(next_url)
    return redirect("execution:runs")


@login_required
@require_POST
def order_attention_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    """The owner confirms an order needing attention is absent at the broker."""
    from execution.models.engine import IntentState, OrderIntent
    from execution.orders import intent_attention_dismiss

    intent = get_object_or_404(
        OrderIntent.objects.select_related("run"),
        pk=pk,
        run__owner=request.user,
        state=IntentState.NEEDS_ATTENTION,
    )
    intent_attention_dismiss(intent=intent, user=request.user)
    messages.success(request, f"Order {intent.tag} closed as not placed; it is not sent again.")
    return redirect("execution:runs")


@login_required
@require_POST
def paper_test(request: HttpRequest, strategy_id: int) -> HttpResponse:
    from trader.models import Strategy

    strategy = get_object_or_404(Strategy, pk=strategy_id, owner=request.user)
    try:
        run = services.paper_test_run(user=request.user, strategy=strategy)
    except services.PaperTestError as exc:
        messages.error(request, str(exc))
        return redirect("execution:runs")
    messages.success(request, "Test run on paper started: orders leave at the next second.")
    return redirect("execution:run-detail", pk=run.pk)


# One answer for every refused postback, whatever the reason, so that nobody can learn from it
# whether an order id is ours.
POSTBACK_REFUSED = "Postback refused."


@csrf_exempt
@require_POST
def kite_postback(request: HttpRequest) -> HttpResponse:
    """Kite's order postbacks (the app's postback URL). Verified by checksum, not by session.
    400 for a body that is not a JSON object, 403 for a refused one; both read the same."""
    import json

    from execution.orders import PostbackRefusedError, kite_postback_apply

    try:
        payload = json.loads(request.body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return HttpResponse(POSTBACK_REFUSED, status=400, content_type="text/plain")
    try:
        kite_postback_apply(payload=payload)
    except PostbackRefusedError:
        return HttpResponse(POSTBACK_REFUSED, status=403, content_type="text/plain")
    except (KeyError, TypeError, ValueError, ArithmeticError):
        # A verified postback whose fields do not parse: nothing is applied.
        return HttpResponse(POSTBACK_REFUSED, status=400, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")
