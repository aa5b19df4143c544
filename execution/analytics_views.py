"""Analytics pages: execution timing, broker comparison, cost and performance per strategy.

Thin: parse the period, call one selector of `execution.analytics`, render. Every page shows only
the logged-in user's own runs.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render

from execution import analytics, planning
from execution.analytics_forms import period_from_query


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
    return _report(request, "timing.html", "report", analytics.timing_for_user)


@login_required
def brokers(request: HttpRequest) -> HttpResponse:
    return _report(request, "brokers.html", "rows", analytics.broker_comparison_for_user)


@login_required
def costs(request: HttpRequest) -> HttpResponse:
    return _report(request, "costs.html", "rows", analytics.costs_for_user)


@login_required
def performance(request: HttpRequest) -> HttpResponse:
    return _report(request, "performance.html", "results", analytics.performance_for_user)


@login_required
def strategy_performance(request: HttpRequest, strategy_id: int) -> HttpResponse:
    strategy = analytics.analytics_strategy_get_for_user(user=request.user, pk=strategy_id)
    context = _period(request)
    context["strategy"] = strategy
    context["results"] = analytics.performance_for_user(
        user=request.user,
        start=context["start"],
        end=context["end"],
        strategy_id=strategy.pk,
        kinds=context["kinds"],
    )
    return render(request, "execution/analytics/strategy_performance.html", context)
