"""Broker account pages: list, connect (OAuth with a signed state), callback, test,
disconnect. Thin: parse, call a service or selector, say what happened in words."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from brokers import services
from brokers.base import BrokerError
from brokers.forms import AccountSettingsForm, ConnectForm
from brokers.models import Broker, BrokerAccount
from brokers.registry import AdapterUnavailableError
from brokers.selectors import (
    account_events_for_account,
    broker_account_get_for_user,
    broker_account_list_for_user,
)
from trader.http import AuthenticatedHttpRequest

logger = logging.getLogger(__name__)


def _callback_uri(request: HttpRequest, broker: str) -> str:
    return request.build_absolute_uri(reverse("brokers:callback", args=[broker]))


def _profile_complete(request: HttpRequest) -> bool:
    profile = getattr(request.user, "profile", None)
    if profile is not None and profile.is_complete:
        return True
    messages.warning(
        request, "Complete your profile (name, mobile, state, city, PIN code) to connect a broker."
    )
    return False


def _start_login(request: AuthenticatedHttpRequest, account: BrokerAccount) -> HttpResponse:
    try:
        start = services.login_start(
            account=account,
            actor=request.user,
            redirect_uri=_callback_uri(request, account.broker),
        )
    except (BrokerError, AdapterUnavailableError) as exc:
        messages.error(request, f"Could not start the {account.get_broker_display()} login: {exc}")
        return redirect("brokers:detail", account_id=account.pk)
    # For brokers that do not echo `state` to the callback; it stays signed and single-use.
    request.session[_session_state_key(account.broker)] = start.state
    return redirect(start.url)


def _session_state_key(broker: str) -> str:
    return f"brokers:login-state:{broker}"


@login_required
def account_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    accounts = broker_account_list_for_user(user=request.user)
    return render(request, "brokers/account_list.html", {"accounts": accounts})


@login_required
def connect(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not _profile_complete(request):
        return redirect("trader:profile")
    form = ConnectForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        account = services.broker_account_create(
            owner=request.user,
            broker=data["broker"],
            label=data["label"],
            api_key=data["api_key"],
            api_secret=data["api_secret"],
            broker_user_id=data["broker_user_id"],
            static_ip_primary=data["static_ip_primary"],
            static_ip_secondary=data["static_ip_secondary"],
            algo_id=data["algo_id"],
            orders_per_second=data["orders_per_second"],
        )
        return _start_login(request, account)
    callback_uris = {value: _callback_uri(request, value) for value, _ in form.broker_choices}
    return render(request, "brokers/connect.html", {"form": form, "callback_uris": callback_uris})


@login_required
@require_POST
def connect_paper(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not _profile_complete(request):
        return redirect("trader:profile")
    account = services.broker_account_create(
        owner=request.user,
        broker=Broker.PAPER,
        label=services.paper_label_for(owner=request.user),
    )
    return _start_login(request, account)


@login_required
def account_detail(request: AuthenticatedHttpRequest, account_id: int) -> HttpResponse:
    account = broker_account_get_for_user(user=request.user, account_id=account_id)
    form = AccountSettingsForm(
        request.POST or None,
        owner=request.user,
        account_id=account.pk,
        initial={
            "label": account.label,
            "broker_user_id": account.broker_user_id,
            "static_ip_primary": account.static_ip_primary,
            "static_ip_secondary": account.static_ip_secondary,
            "algo_id": account.algo_id,
            "orders_per_second": account.orders_per_second,
        },
    )
    if request.method == "POST" and form.is_valid():
        services.broker_account_update(account=account, actor=request.user, **form.cleaned_data)
        messages.success(request, "Account settings saved.")
        return redirect("brokers:detail", account_id=account.pk)
    events = account_events_for_account(account=account)
    return render(
        request,
        "brokers/account_detail.html",
        {
            "account": account,
            "form": form,
            "events": events,
            "callback_uri": _callback_uri(request, account.broker),
        },
    )


@login_required
@require_POST
def login(request: AuthenticatedHttpRequest, account_id: int) -> HttpResponse:
    account = broker_account_get_for_user(user=request.user, account_id=account_id)
    return _start_login(request, account)


@login_required
@require_GET
def callback(request: AuthenticatedHttpRequest, broker: str) -> HttpResponse:
    if broker not in Broker.values:
        messages.error(request, "Unknown broker.")
        return redirect("brokers:list")
    params = request.GET.dict()
    remembered = request.session.pop(_session_state_key(broker), "")
    if "state" not in params and remembered:
        params["state"] = remembered
    try:
        result = services.login_complete(
            broker=broker,
            user=request.user,
            params=params,
            redirect_uri=_callback_uri(request, broker),
        )
    except services.LoginStateError as exc:
        messages.error(request, str(exc))
        return redirect("brokers:list")
    if result.error:
        messages.error(request, result.error)
    else:
        messages.success(request, f"{result.account.label} is connected.")
    return redirect("brokers:list")


@login_required
@require_POST
def test_connection(request: AuthenticatedHttpRequest, account_id: int) -> HttpResponse:
    account = broker_account_get_for_user(user=request.user, account_id=account_id)
    check = services.broker_account_test(account=account, actor=request.user)
    (messages.success if check.ok else messages.error)(request, f"{account.label}: {check.message}")
    return redirect("brokers:list")


@login_required
@require_POST
def disconnect(request: AuthenticatedHttpRequest, account_id: int) -> HttpResponse:
    account = broker_account_get_for_user(user=request.user, account_id=account_id)
    services.broker_account_disconnect(account=account, actor=request.user)
    messages.success(request, f"{account.label} is disconnected; its session token is deleted.")
    return redirect("brokers:list")
