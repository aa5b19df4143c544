from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from brokers.selectors import broker_account_list_for_user


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    accounts = broker_account_list_for_user(user=request.user)  # type: ignore[arg-type]
    return render(request, "brokers/account_list.html", {"accounts": accounts})
