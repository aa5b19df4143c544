from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from brokers.selectors import broker_account_list_for_user
from execution.selectors import desk_for_user, market_today_get
from trader.forms import ProfileForm
from trader.health import health_report
from trader.http import AuthenticatedHttpRequest
from trader.models import StrategyStatus
from trader.selectors import profile_get_for_user
from trader.services import profile_update
from trader.strategies.selectors import next_entries, strategy_list_for_user


@login_required
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    profile = profile_get_for_user(user=user)
    accounts = list(broker_account_list_for_user(user=user))
    strategies = list(strategy_list_for_user(user=user))
    upcoming = next_entries(strategies)
    active = [s for s in strategies if s.status == StrategyStatus.ACTIVE]
    next_runs = sorted(
        ((when, strategy) for strategy in active if (when := upcoming.get(strategy.pk))),
        key=lambda pair: pair[0],
    )[:5]
    context = {
        "profile": profile,
        "accounts": accounts,
        "accounts_needing_attention": [a for a in accounts if a.status != "connected"],
        "strategies": strategies,
        "active_strategies": active,
        "next_runs": next_runs,
        "desk": desk_for_user(user=user),
        "market_today": market_today_get(now=timezone.now()),
    }
    return render(request, "trader/dashboard.html", context)


@login_required
def dashboard_live(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The dashboard's money fragment, re-requested by htmx while something is open."""
    return render(request, "trader/_desk.html", {"desk": desk_for_user(user=request.user)})


@require_GET
def manifest(request: HttpRequest) -> JsonResponse:
    """The web app manifest: the desk installs as an app on a phone or desktop."""
    from django.templatetags.static import static

    icons = [
        {"src": static(f"icons/icon-{size}.png"), "sizes": f"{size}x{size}", "type": "image/png"}
        for size in (192, 512)
    ]
    icons.append(
        {
            "src": static("icons/icon-512-maskable.png"),
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "maskable",
        }
    )
    data = {
        "name": "Trader: options desk",
        "short_name": "Trader",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#0f3d5e",
        "icons": icons,
    }
    return JsonResponse(data, content_type="application/manifest+json")


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """Served from the root so it controls every page; it caches only the offline page and
    static files, never a page with money on it (a stale P&L is worse than none)."""
    response = render(request, "trader/sw.js", content_type="application/javascript")
    response["Service-Worker-Allowed"] = "/"
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def offline(request: HttpRequest) -> HttpResponse:
    return render(request, "trader/offline.html")


@login_required
def profile_edit(request: AuthenticatedHttpRequest) -> HttpResponse:
    profile = profile_get_for_user(user=request.user)
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            profile_update(user=request.user, **form.cleaned_data)
            messages.success(request, "Your profile is saved.")
            return redirect("trader:dashboard")
    else:
        initial = {}
        if profile is not None:
            initial = {
                "full_name": profile.full_name,
                "mobile": profile.mobile,
                "state": profile.state,
                "city": profile.city,
                "pin_code": profile.pin_code,
                "pan": profile.pan,
            }
        form = ProfileForm(initial=initial)
    return render(request, "trader/profile.html", {"form": form, "profile": profile})


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """up / degraded / down for anyone (load balancers, uptime checks: 503 only when down);
    the per-part details (latencies, worker host names, errors) only for signed-in staff."""
    status, report = health_report()
    body: dict[str, object] = {"status": status}
    if request.user.is_authenticated and request.user.is_staff:
        body.update(report)
    return JsonResponse(body, status=503 if status == "down" else 200)
