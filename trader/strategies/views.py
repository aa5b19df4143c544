"""Strategy pages and the wizard. Thin: parse, call a selector or service, render."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.forms import ModelChoiceField
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from execution.markettime import IST
from execution.models import Underlying
from trader.http import AuthenticatedHttpRequest
from trader.models import Strategy
from trader.models.strategies import MAX_LEGS
from trader.signals.selectors import signal_panel_for_strategy
from trader.strategies import selectors, services, wizard
from trader.strategies.forms import (
    CUSTOM,
    AllocationFormSet,
    BasicsForm,
    LegFormSet,
    RiskForm,
    RiskLimitForm,
    ScheduleForm,
    TemplateForm,
)
from trader.strategies.review import legs_preview, review_build
from trader.strategies.specs import Limits, describe_weekdays, fit_expiry_choice
from trader.strategies.templates_catalog import TEMPLATES, template_get


def _strategy_or_404(request: AuthenticatedHttpRequest, pk: int) -> Strategy:
    try:
        return selectors.strategy_get_for_user(user=request.user, pk=pk)
    except Strategy.DoesNotExist:
        raise Http404("No such strategy.") from None


def _data(request: HttpRequest) -> Any:
    """Bound data only for a POST (the htmx advance re-renders the next step as a GET)."""
    return request.POST if request.method == "POST" else None


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


@login_required
def strategy_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    show_archived = request.GET.get("archived") == "1"
    strategies = list(
        selectors.strategy_list_for_user(user=request.user, include_archived=show_archived)
    )
    next_runs = selectors.next_entries(strategies)
    rows = [(s, next_runs.get(s.pk)) for s in strategies]
    return render(
        request,
        "trader/strategy_list.html",
        {"rows": rows, "show_archived": show_archived, "templates": TEMPLATES},
    )


@login_required
def strategy_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    strategy = _strategy_or_404(request, pk)
    now = timezone.now()
    upcoming, past = selectors.strategy_runs(strategy=strategy, today=now.astimezone(IST).date())
    versions = list(strategy.versions.all())
    return render(
        request,
        "trader/strategy_detail.html",
        {
            "strategy": strategy,
            "version": next((v for v in versions if v.pk == strategy.current_version_id), None),
            "versions": versions,
            "in_force": selectors.version_in_force(
                strategy=strategy, on=now.astimezone(IST).date()
            ),
            "allocations": list(strategy.allocations.all()),
            "next_run": selectors.next_entries([strategy], now=now).get(strategy.pk),
            "upcoming_runs": upcoming,
            "past_runs": past,
            "describe_weekdays": describe_weekdays,
            "signal_panel": signal_panel_for_strategy(strategy=strategy),
        },
    )


def _action(service: Any, done: str):  # type: ignore[no-untyped-def]
    @login_required
    @require_POST
    def view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
        strategy = _strategy_or_404(request, pk)
        try:
            service(user=request.user, strategy=strategy)
        except services.StrategyStateError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{strategy.name} {done}.")
        return redirect("strategies:detail", pk=strategy.pk)

    return view


strategy_activate = _action(services.strategy_activate, "is active")
strategy_pause = _action(services.strategy_pause, "is paused")
strategy_archive = _action(services.strategy_archive, "is archived")


@login_required
@require_POST
def strategy_duplicate(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    strategy = _strategy_or_404(request, pk)
    try:
        copy = services.strategy_duplicate(user=request.user, strategy=strategy)
    except (services.StrategyStateError, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect("strategies:detail", pk=strategy.pk)
    messages.success(request, f"Copied as the draft “{copy.name}”.")
    return redirect("strategies:detail", pk=copy.pk)


@login_required
def strategy_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    strategy = _strategy_or_404(request, pk)
    if strategy.status == "archived" or strategy.current_version is None:
        messages.error(request, "An archived strategy cannot be edited; duplicate it instead.")
        return redirect("strategies:detail", pk=strategy.pk)
    spec = services.spec_from_version(strategy, strategy.current_version)
    wizard.save(request, wizard.from_spec(spec, strategy_id=strategy.pk))
    return redirect("strategies:wizard", step="legs")


@login_required
def wizard_start(request: AuthenticatedHttpRequest) -> HttpResponse:
    draft = wizard.empty()
    key = request.GET.get("template", "")
    if template_get(key) is not None:
        wizard.set_template(draft, key)
        wizard.save(request, draft)
        return redirect("strategies:wizard", step="basics")
    wizard.save(request, draft)
    return redirect("strategies:wizard", step="template")


@login_required
@require_http_methods(["GET", "POST"])
def wizard_step(request: AuthenticatedHttpRequest, step: str) -> HttpResponse:
    if step not in wizard.STEP_NAMES:
        raise Http404("No such step.")
    draft = wizard.load(request)
    missing = wizard.first_incomplete(draft)
    if wizard.STEP_NAMES.index(step) > wizard.STEP_NAMES.index(missing):
        return redirect("strategies:wizard", step=missing)
    editing = None
    if draft.get("strategy_id"):
        editing = _strategy_or_404(request, draft["strategy_id"])
    context = STEP_HANDLERS[step](request, draft, editing)
    if isinstance(context, HttpResponse):
        return context
    context.update(
        step=step,
        steps=wizard.STEPS,
        step_index=wizard.STEP_NAMES.index(step),
        editing=editing,
        draft=draft,
    )
    template = "trader/wizard/step.html" if _is_htmx(request) else "trader/strategy_wizard.html"
    response = render(request, template, context)
    if _is_htmx(request):
        response["HX-Push-Url"] = reverse("strategies:wizard", kwargs={"step": step})
    return response


def _advance(request: AuthenticatedHttpRequest, draft: dict[str, Any], step: str) -> HttpResponse:
    wizard.save(request, draft)
    target = wizard.next_step(step)
    if _is_htmx(request):
        # Render the next step in place; the URL follows via HX-Push-Url.
        request.method = "GET"
        return wizard_step(request, target)
    return redirect("strategies:wizard", step=target)


def _limits(request: AuthenticatedHttpRequest) -> Limits:
    return selectors.risk_limits_for_user(user=request.user)


def _step_template(request: AuthenticatedHttpRequest, draft: dict[str, Any], editing: Any) -> Any:
    form = TemplateForm(_data(request), initial={"template": draft.get("template")})
    if request.method == "POST" and form.is_valid():
        wizard.set_template(draft, form.cleaned_data["template"])
        if form.cleaned_data["template"] == CUSTOM and not draft.get("legs"):
            draft["legs"] = None
        return _advance(request, draft, "template")
    return {"form": form, "templates": TEMPLATES}


def _step_basics(request: AuthenticatedHttpRequest, draft: dict[str, Any], editing: Any) -> Any:
    form = BasicsForm(_data(request), initial=draft.get("basics") or {})
    if request.method == "POST" and form.is_valid():
        wizard.set_part(draft, "basics", form.cleaned_data)
        if draft.get("legs") is None:
            draft["legs"] = []
        return _advance(request, draft, "basics")
    return {"form": form}


def _leg_formset(request: AuthenticatedHttpRequest, draft: dict[str, Any], data: Any = None) -> Any:
    # Among the underlyings the basics step offers (active ones).
    offered = BasicsForm.base_fields["underlying"]
    assert isinstance(offered, ModelChoiceField) and offered.queryset is not None
    underlying = offered.queryset.filter(pk=draft["basics"]["underlying"]).first()
    today = timezone.now().astimezone(IST).date()
    step = services.strike_step_for(underlying, today) if underlying else None
    kinds = selectors.expiry_kinds_for(underlying=underlying, on=today) if underlying else None
    template = template_get(draft.get("template") or "")
    # A template's "current week" becomes "current month" on an index with monthlies only.
    initial = [
        {**leg, "expiry_choice": fit_expiry_choice(leg.get("expiry_choice"), kinds)}
        for leg in draft.get("legs") or []
    ]
    return LegFormSet(
        data,
        initial=initial,
        prefix="legs",
        needs_distinct_expiries=bool(template and template.needs_distinct_expiries),
        form_kwargs={
            "strike_step": step,
            "limits": _limits(request),
            "symbol": underlying.symbol if underlying else "",
            "expiry_kinds": kinds,
        },
    )


def _legs_preview(draft: dict[str, Any], legs: list[Any]) -> Any:
    """Premiums, payoff (expiry and today), Greeks and warnings for the legs as they stand."""
    from execution.market import default_market

    underlying = (draft.get("basics") or {}).get("underlying")
    return legs_preview(underlying_id=underlying, legs=legs, market=default_market())


def _step_legs(request: AuthenticatedHttpRequest, draft: dict[str, Any], editing: Any) -> Any:
    context = _legs_step(request, draft)
    if isinstance(context, dict):
        context.setdefault("max_legs", MAX_LEGS)
    return context


def _legs_step(request: AuthenticatedHttpRequest, draft: dict[str, Any]) -> Any:
    if request.method != "POST":
        formset = _leg_formset(request, draft)
        return {"formset": formset, **_legs_context(draft, wizard.leg_specs(draft))}
    action = request.POST.get("action", "next")
    formset = _leg_formset(request, draft, request.POST)
    if action == "preview":
        # A change in the table: validate and show what the legs would do, stay on the step.
        if formset.is_valid():
            wizard.set_part(draft, "legs", [s.__dict__ for s in formset.specs()])
            wizard.save(request, draft)
            return {"formset": formset, **_legs_context(draft, formset.specs())}
        return {"formset": formset}
    if action == "add":
        if int(request.POST.get("legs-TOTAL_FORMS", 0) or 0) >= MAX_LEGS:
            return {
                "formset": formset,
                "skip_errors": True,
                "leg_limit": f"A strategy has at most {MAX_LEGS} legs: remove one to add another.",
            }
        kinds = formset.form_kwargs.get("expiry_kinds")
        # Keep what was typed, add one blank leg; nothing is validated or saved yet.
        data = request.POST.copy()
        total = int(data.get("legs-TOTAL_FORMS", 0) or 0)
        data["legs-TOTAL_FORMS"] = str(total + 1)
        for name, value in {
            "side": "BUY",
            "option_type": "CE",
            "lots": "1",
            "expiry_choice": fit_expiry_choice("current_week", kinds),
            "strike_mode": "atm",
            "strike_offset": "0",
            "stop_loss_unit": "points",
            "target_unit": "points",
        }.items():
            data[f"legs-{total}-{name}"] = value
        formset = _leg_formset(request, draft, data)
        return {"formset": formset, "skip_errors": True}
    if formset.is_valid():
        wizard.set_part(draft, "legs", [s.__dict__ for s in formset.specs()])
        return _advance(request, draft, "legs")
    return {"formset": formset}


def _legs_context(draft: dict[str, Any], legs: list[Any]) -> dict[str, Any]:
    underlying_id = (draft.get("basics") or {}).get("underlying")
    underlying = Underlying.objects.filter(pk=underlying_id).first() if underlying_id else None
    return {
        "preview": _legs_preview(draft, legs) if legs else None,
        "symbol": underlying.symbol if underlying else "",
    }


def _step_schedule(request: AuthenticatedHttpRequest, draft: dict[str, Any], editing: Any) -> Any:
    initial = draft.get("schedule") or {
        "entry_time": "09:20:00",
        "exit_time": "15:15:00",
        "trading_days": [0, 1, 2, 3, 4],
    }
    form = ScheduleForm(_data(request), initial=initial, **_session_of_draft(draft))
    if request.method == "POST" and form.is_valid():
        wizard.set_part(draft, "schedule", form.cleaned_data)
        return _advance(request, draft, "schedule")
    return {"form": form}


def _session_of_draft(draft: dict[str, Any]) -> dict[str, Any]:
    """The normal session in force today on the draft underlying's exchange."""
    today = timezone.now().astimezone(IST).date()
    underlying_id = (draft.get("basics") or {}).get("underlying")
    underlying = Underlying.objects.filter(pk=underlying_id).first() if underlying_id else None
    exchange = underlying.exchange if underlying else "NSE"
    return {"session": selectors.session_times_for(exchange=exchange, on=today), "on": today}


def _step_risk(request: AuthenticatedHttpRequest, draft: dict[str, Any], editing: Any) -> Any:
    initial = draft.get("risk") or {"leg_failure_policy": "unwind", "hedge_confirmation": "ack"}
    form = RiskForm(_data(request), initial=initial)
    if request.method == "POST" and form.is_valid():
        wizard.set_part(draft, "risk", form.cleaned_data)
        return _advance(request, draft, "risk")
    return {"form": form, "limits": _limits(request)}


def _step_allocation(request: AuthenticatedHttpRequest, draft: dict[str, Any], editing: Any) -> Any:
    accounts = {a.pk: a for a in request.user.broker_accounts.order_by("broker", "label")}
    chosen = {a["broker_account_id"]: a for a in draft.get("allocations") or []}
    initial = []
    for priority, account in enumerate(accounts.values(), start=1):
        previous = chosen.get(account.pk)
        initial.append(
            {
                "broker_account": account.pk,
                "include": previous is not None,
                "sizing": (previous or {}).get("sizing", "multiplier"),
                "multiplier": (previous or {}).get("multiplier") or "1",
                "fixed_lots": (previous or {}).get("fixed_lots"),
                "priority": (previous or {}).get("priority") or priority,
            }
        )
    formset = AllocationFormSet(
        _data(request),
        initial=initial,
        prefix="allocations",
        form_kwargs={
            "accounts": accounts,
            "legs": wizard.leg_specs(draft),
            "limits": _limits(request),
        },
    )
    if request.method == "POST" and formset.is_valid():
        wizard.set_part(draft, "allocations", [s.__dict__ for s in formset.specs()])
        return _advance(request, draft, "allocation")
    return {"formset": formset, "has_accounts": bool(accounts)}


def _step_review(request: AuthenticatedHttpRequest, draft: dict[str, Any], editing: Any) -> Any:
    from execution.market import default_market

    spec = wizard.to_spec(draft)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            if editing is not None:
                version = services.strategy_update(user=request.user, strategy=editing, spec=spec)
                strategy = editing
                messages.success(
                    request,
                    f"Saved as version {version.number}, in force from "
                    f"{version.effective_from:%a %d %b %Y}.",
                )
            else:
                strategy = services.strategy_create(user=request.user, spec=spec)
                messages.success(request, f"“{strategy.name}” is saved as a draft.")
        except ValidationError as exc:
            errors = exc.message_dict
        except services.StrategyStateError as exc:
            errors = {"__all__": [str(exc)]}
        else:
            wizard.clear(request)
            url = reverse("strategies:detail", kwargs={"pk": strategy.pk})
            if _is_htmx(request):
                response = HttpResponse(status=204)
                response["HX-Redirect"] = url
                return response
            return redirect(url)
    else:
        _, found = services.strategy_spec_errors(user=request.user, spec=spec)
        errors = found
    review = review_build(user=request.user, spec=spec, market=default_market())
    return {
        "spec": spec,
        "review": review,
        "errors": errors,
        "weekdays": describe_weekdays(spec.trading_days),
        "template_obj": template_get(spec.template),
    }


STEP_HANDLERS = {
    "template": _step_template,
    "basics": _step_basics,
    "legs": _step_legs,
    "schedule": _step_schedule,
    "risk": _step_risk,
    "allocation": _step_allocation,
    "review": _step_review,
}


@login_required
def templates_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "trader/strategy_templates.html", {"templates": TEMPLATES})


@login_required
@require_http_methods(["GET", "POST"])
def risk_limits(request: AuthenticatedHttpRequest) -> HttpResponse:
    limits = selectors.risk_limits_for_user(user=request.user)
    ceiling = selectors.risk_ceiling_get()
    form = RiskLimitForm(_data(request), initial=limits.__dict__)
    if request.method == "POST" and form.is_valid():
        try:
            services.risk_limit_update(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            for field, field_errors in exc.message_dict.items():
                for message in field_errors:
                    form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, "Your risk limits are saved.")
            return redirect("strategies:risk-limits")
    return render(request, "trader/strategy_risk_limits.html", {"form": form, "ceiling": ceiling})
