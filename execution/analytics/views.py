"""Analytics pages: execution timing, broker comparison, cost and performance per strategy.

Thin: parse the period, call one selector of `execution.analytics.reports`, render. Every page
shows only the logged-in user's own runs.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render

from execution.analytics import reports as analytics
from execution.analytics.forms import period_from_query
from execution.planning import plan as planning


def _period(request: HttpRequest) -> dict[str, Any]:
    form, start, end, kinds = period_from_query(request.GET, today=planning.today_ist())
    query = QueryDict(mutable=True)
    query["start"], query["end"] = start.isoformat(), end.isoformat()
    query.setlist("kinds", kinds)
    return {
        "form": form,
        "start": start,
        "end": end,
        "kinds": kinds,
        "kind_labels": [analytics.RUN_KINDS[k] for k in kinds],
        "query": query.urlencode(),
    }


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "execution/analytics/overview.html", _period(request))


def _report(request: HttpRequest, template: str, name: str, selector: Any) -> HttpResponse:
    """Render `template` with the period form and `selector`'s report for the period."""
    context = _period(request)
    context[name] = selector(
        user=request.user, start=context["start"], end=context["end"], kinds=context["kinds"]
    )
    return render(request, f"execution/analytics/{template}", context)


@login_required
def timing(request: HttpRequest) -> HttpResponse:
    from marketplace.disclosure import timing_disclosed

    def disclosed(**period: Any) -> Any:
        return timing_disclosed(user=request.user, report=analytics.timing_for_user(**period))

    return _report(request, "timing.html", "report", disclosed)


@login_required
def brokers(request: HttpRequest) -> HttpResponse:
    return _report(request, "brokers.html", "rows", analytics.broker_comparison_for_user)


def _names_disclosed(request: HttpRequest, selector: Any) -> Any:
    """`selector` whose per-strategy rows name a subscribed black box by its listing only."""
    from marketplace.disclosure import strategy_rows_disclosed

    def disclosed(**period: Any) -> Any:
        return strategy_rows_disclosed(user=request.user, rows=selector(**period))

    return disclosed


@login_required
def costs(request: HttpRequest) -> HttpResponse:
    return _report(
        request, "costs.html", "rows", _names_disclosed(request, analytics.costs_for_user)
    )


@login_required
def performance(request: HttpRequest) -> HttpResponse:
    return _report(
        request,
        "performance.html",
        "results",
        _names_disclosed(request, analytics.performance_for_user),
    )


@login_required
def strategy_performance(request: HttpRequest, strategy_id: int) -> HttpResponse:
    strategy = analytics.analytics_strategy_get_for_user(user=request.user, pk=strategy_id)
    context = _period(request)
    from marketplace.disclosure import strategy_label, strategy_rows_disclosed

    context["strategy"] = strategy
    context["strategy_label"] = strategy_label(user=request.user, strategy=strategy)
    context["results"] = strategy_rows_disclosed(
        user=request.user,
        rows=analytics.performance_for_user(
            user=request.user,
            start=context["start"],
            end=context["end"],
            strategy_id=strategy.pk,
            kinds=context["kinds"],
        ),
    )
    return render(request, "execution/analytics/strategy_performance.html", context)
