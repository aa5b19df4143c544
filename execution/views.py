"""Trader pages of the engine: runs with orders and timings, consolidated positions, the kill
switch (one POST from every page) and "test now on paper"."""

from __future__ import annotations

from typing import Any

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

# Each live page is a full page that includes a small fragment template; htmx re-requests the
# fragment (`…/live/`) every few seconds while something of it can change. A fragment rendered
# when nothing can change any more carries no trigger, so the polling stops by itself.


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    rows, live = selectors.run_rows_for_user(user=request.user)
    context = {"rows": rows, "live": live}
    if request.resolver_match and request.resolver_match.url_name == "runs-live":
        return render(request, "execution/_run_rows.html", context)
    return render(
        request,
        "execution/run_list.html",
        {
            **context,
            "testable": selectors.strategies_to_test_for_user(user=request.user),
            "price_choices": _price_choices(request),
            "not_ready": selectors.readiness_problems_for_user(
                user=request.user, day=planning.today_ist()
            ),
            "attention": selectors.orders_needing_attention_for_user(user=request.user),
        },
    )


def _price_choices(request: HttpRequest) -> list[tuple[str, str]]:
    """A paper test's price sources, read once for every strategy's form: the simulator and
    the trader's connected live accounts (only offered when there is one)."""
    from execution.forms import PaperPriceSourceForm

    field: Any = PaperPriceSourceForm(user=request.user).fields["price_account"]
    choices = [(str(value), str(label)) for value, label in field.choices]
    return choices if len(choices) > 1 else []


@login_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    page = selectors.run_page_get_for_user(user=request.user, pk=pk)
    template = "execution/run_detail.html"
    if request.resolver_match and request.resolver_match.url_name == "run-live":
        template = "execution/_run_live.html"
    return render(request, template, {"page": page, "run": page.run})


@login_required
@require_POST
def strategy_paper_price(request: HttpRequest, strategy_id: int) -> HttpResponse:
    """Choose the live account whose quotes price the strategy's paper runs (or none)."""
    from execution.forms import PaperPriceSourceForm
    from trader.models import Strategy

    strategy = get_object_or_404(Strategy, pk=strategy_id, owner=request.user)
    form = PaperPriceSourceForm(request.POST, user=request.user)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors.get("price_account", [])))
    else:
        account = form.cleaned_data["price_account"]
        services.strategy_paper_price_set(user=request.user, strategy=strategy, account=account)
        messages.success(
            request,
            "Paper runs of this strategy are priced by "
            + (f"{account.label}'s quotes." if account else "the simulated market."),
        )
    return redirect("strategies:detail", pk=strategy.pk)


@login_required
def strategy_margin(request: HttpRequest, strategy_id: int) -> HttpResponse:
    """ "Margin needed" of a strategy on each of its live accounts (the broker's basket
    estimate), a fragment the strategy page loads after itself."""
    from execution.margin import strategy_margins_for_page
    from trader.models import Strategy

    strategy = get_object_or_404(Strategy, pk=strategy_id, owner=request.user)
    return render(
        request,
        "execution/_margin_needed.html",
        {
            "margins": strategy_margins_for_page(strategy=strategy),
            "strategy": strategy,
            "price_choices": _price_choices(request),
        },
    )


@login_required
def option_chain(request: HttpRequest) -> HttpResponse:
    """An underlying's option chain for one expiry, from the simulator or one of the trader's
    connected brokers (GET form; a source that cannot answer says why on the page)."""
    from execution.chain import SIMULATOR, option_chain_get
    from execution.forms import OptionChainForm

    day = planning.today_ist()
    data = request.GET.copy()
    data.setdefault("source", SIMULATOR)
    data.setdefault("strikes", "10")
    form = OptionChainForm(data, user=request.user, day=day)
    underlying_field: Any = form.fields["underlying"]
    first = underlying_field.queryset.first()
    if "underlying" not in data and first is not None:
        data["underlying"] = first.symbol
        form = OptionChainForm(data, user=request.user, day=day)
    page = None
    expiries: list[Any] = []
    if form.is_valid():
        underlying = form.cleaned_data["underlying"]
        expiries = form.expiries(underlying)
        page = option_chain_get(
            user=request.user,
            underlying=underlying,
            expiry=form.cleaned_data["expiry"],
            source=form.cleaned_data["source"],
            strikes_each_side=form.cleaned_data["strikes"],
        )
    elif form.cleaned_data.get("underlying") is not None:
        expiries = form.expiries(form.cleaned_data["underlying"])
    status = 200 if form.is_valid() or not request.GET else 400
    return render(
        request,
        "execution/option_chain.html",
        {"form": form, "page": page, "expiries": expiries},
        status=status,
    )


@login_required
def positions(request: HttpRequest) -> HttpResponse:
    rows, consolidated = disclosure.positions_disclosed(
        user=request.user, positions=selectors.open_positions_for_user(user=request.user)
    )
    context: dict[str, Any] = {"positions": rows, "consolidated": consolidated}
    if request.resolver_match and request.resolver_match.url_name == "positions-live":
        return render(request, "execution/_positions_live.html", context)
    from execution.broker_positions import broker_positions_for_user

    # The broker's own positions against ours, on the full page only (not every poll).
    context["at_brokers"] = broker_positions_for_user(user=request.user)
    return render(request, "execution/positions.html", context)


@login_required
@require_POST
def run_exit(request: HttpRequest, pk: int) -> HttpResponse:
    """Exit the whole run, or one position (`position`), on every broker of the run."""
    from execution.runs import ExitError
    from execution.runs import run_exit as exit_write

    run = selectors.run_get_for_user(user=request.user, pk=pk)
    raw = request.POST.get("position", "")
    position_ids = None
    if raw:
        if not raw.isdigit():
            messages.error(request, "That position is not one of this run's.")
            return redirect("execution:run-detail", pk=run.pk)
        position_ids = [int(raw)]
    try:
        intents = exit_write(
            actor=request.user,
            run=run,
            position_ids=position_ids,
            reason=request.POST.get("reason", "")[:200],
        )
    except ExitError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Exit sent: {len(intents)} closing order{'s' if len(intents) != 1 else ''} "
            "(shorts bought back first, then longs sold).",
        )
    return redirect("execution:run-detail", pk=run.pk)


@login_required
@require_POST
def kill_switch(request: HttpRequest) -> HttpResponse:
    """Engage (default) or re-arm the user's own switch; staff may act on the global one."""
    action = request.POST.get("action", "engage")
    platform = request.POST.get("scope") == "global"
    target = None if platform else request.user
    reason = request.POST.get("reason", "").strip()[:200]
    try:
        if action == "rearm":
            kill_switch_rearm(actor=request.user, user=target)
            messages.success(
                request,
                ("Platform-wide kill switch" if platform else "Kill switch")
                + " re-armed: new entries are allowed again.",
            )
        else:
            outside = not platform and request.POST.get("flatten_outside") == "1"
            kill_switch_engage(
                actor=request.user,
                user=target,
                reason=reason if platform else (reason or "Pressed in the web UI."),
                flatten_outside=outside,
            )
            messages.warning(
                request,
                (
                    "Platform-wide kill switch engaged for every trader: "
                    if platform
                    else "Kill switch engaged: "
                )
                + "open orders are being cancelled and every position closed"
                + (", including those opened outside the platform" if outside else "")
                + ". No new entries until it is re-armed.",
            )
    except (PermissionError, ValueError) as exc:
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
    if selectors.kill_switches_engaged(user=request.user):
        messages.error(request, "The kill switch is engaged: re-arm it before a test run.")
        return redirect("execution:runs")
    from execution.forms import PaperPriceSourceForm

    form = PaperPriceSourceForm(request.POST, user=request.user)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors.get("price_account", [])))
        return redirect("execution:runs")
    try:
        run = services.paper_test_run(
            user=request.user, strategy=strategy, price_account=form.cleaned_data["price_account"]
        )
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
