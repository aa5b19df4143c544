"""DRF authentication by API token (`Authorization: Bearer trk_…`), scope checks and the
per-token throttle. Session authentication keeps working for the browser."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from trader.api.models import ApiToken, Scope
from trader.api.tokens import token_check

KEYWORD = "Bearer"


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """One answer for every bad token (unknown, wrong, expired, revoked): nobody learns which."""

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0] != KEYWORD:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Give one token after Bearer.")
        token = token_check(header[1])
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return f'{KEYWORD} realm="api"'


class HasScope(permissions.BasePermission):
    """The token holds every scope the view asks for this method (`view.scopes[method]`: one
    scope, or a tuple of scopes all needed, e.g. marketplace and trade to deploy). A browser
    session holds every scope (its user is the one acting)."""

    message = "This token lacks the scope for this request."

    def has_permission(self, request: Request, view: Any) -> bool:
        auth = request.auth
        if not isinstance(auth, ApiToken):
            return True
        missing = [scope for scope in required_scopes(request, view) if not auth.has_scope(scope)]
        if missing:
            self.message = f"This token lacks the “{missing[0]}” scope."
        return not missing


def required_scopes(request: Request, view: Any) -> tuple[str, ...]:
    scopes = getattr(view, "scopes", {})
    default = Scope.READ if request.method in permissions.SAFE_METHODS else Scope.TRADE
    wanted = scopes.get(request.method, default)
    return tuple(str(s) for s in wanted) if isinstance(wanted, tuple) else (str(wanted),)


class TokenRateThrottle(throttling.SimpleRateThrottle):
    """Requests per token (per user for a browser session), counted in the Redis cache."""

    scope = "api"

    def get_rate(self) -> str:
        return str(settings.API_THROTTLE_RATE)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, ApiToken):
            ident = f"token-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"anon-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
