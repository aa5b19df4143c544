"""Request types for views that only signed-in users reach."""

from __future__ import annotations

from django.http import HttpRequest

from trader.models import User


class AuthenticatedHttpRequest(HttpRequest):
    """The request a `login_required` view receives: its user is a real account, never
    AnonymousUser. Annotation only (Django builds plain HttpRequests); use it on views behind
    `login_required` and on the helpers they call, so `request.user` types as `User`."""

    user: User
