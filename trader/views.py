from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from trader.forms import ProfileForm
from trader.health import health_report
from trader.selectors import profile_get_for_user
from trader.services import profile_update


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    profile = profile_get_for_user(user=request.user)  # type: ignore[arg-type]
    return render(request, "trader/dashboard.html", {"profile": profile})


@login_required
def profile_edit(request: HttpRequest) -> HttpResponse:
    profile = profile_get_for_user(user=request.user)  # type: ignore[arg-type]
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            profile_update(user=request.user, **form.cleaned_data)  # type: ignore[arg-type]
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
    ok, report = health_report()
    return JsonResponse({"status": "ok" if ok else "degraded", **report}, status=200 if ok else 503)
