"""Staff reach Django admin only through the site's own sign-in (allauth: throttled, with the
second factor when enrolled), and only with a second factor proven in this session.

Django admin's own login form would accept a password alone and has no throttle, so its URL
only forwards to allauth's login. A staff session reaches /admin/ once an authenticator app is
enrolled and a code from it has been given in this session (at sign-in, re-authentication or
enrolment); otherwise it is sent to enrol or to confirm a code first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

# The user id whose second factor was proven in this session.
SECOND_FACTOR_SESSION_KEY = "staff_second_factor_user"


def admin_login(request: HttpRequest) -> HttpResponse:
    """/admin/login/ (GET or POST): never authenticates; forwards to the site's sign-in."""
    target = request.GET.get("next") or reverse("admin:index")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("admin:index")
    return HttpResponseRedirect(f"{reverse('account_login')}?{urlencode({'next': target})}")


def second_factor_proven(request: HttpRequest) -> bool:
    user = request.user
    return bool(
        user.is_authenticated
        and request.session.get(SECOND_FACTOR_SESSION_KEY) == str(user.pk)
        and Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    )


def _remember_second_factor(request: HttpRequest | None, user: Any) -> None:
    if request is not None and user is not None and user.pk is not None:
        request.session[SECOND_FACTOR_SESSION_KEY] = str(user.pk)


@receiver(mfa_signals.authenticator_used)
def _on_authenticator_used(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    _remember_second_factor(request, user)


@receiver(mfa_signals.authenticator_added)
def _on_authenticator_added(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    # Enrolling takes a valid code from the new authenticator: that proves it too.
    _remember_second_factor(request, user)


@receiver(mfa_signals.authenticator_removed)
def _on_authenticator_removed(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if request is not None:
        request.session.pop(SECOND_FACTOR_SESSION_KEY, None)


class StaffSecondFactorMiddleware:
    """Admin pages for staff who proved a second factor in this session; others are sent to
    enrol (no authenticator yet) or to give a code (enrolled, not proven in this session)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        admin_root = reverse("admin:index")
        user = request.user
        if (
            request.path.startswith(admin_root)
            and not request.path.startswith(reverse("admin:login"))
            and user.is_authenticated
            and user.is_staff
            and not second_factor_proven(request)
        ):
            query = urlencode({"next": request.get_full_path()})
            enrolled = Authenticator.objects.filter(
                user=user, type=Authenticator.Type.TOTP
            ).exists()
            if not enrolled:
                messages.warning(
                    request,
                    "Staff need two-factor authentication: enrol an authenticator app "
                    "before using the admin.",
                )
                return HttpResponseRedirect(f"{reverse('mfa_activate_totp')}?{query}")
            messages.info(request, "Confirm a code from your authenticator app to use the admin.")
            return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{query}")
        return self.get_response(request)
