"""The trader's API tokens page (under the profile): create, see last use, revoke."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from trader.api.models import ApiToken, Scope
from trader.api.tokens import token_create, token_revoke, tokens_for_user

EXPIRY_CHOICES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "1 year")]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=60, help_text="Which program uses it, e.g. “Sheet bot”.")
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[Scope.READ]
    )
    days = forms.TypedChoiceField(
        choices=EXPIRY_CHOICES, coerce=int, initial=30, label="Expires after"
    )


@login_required
@never_cache
def token_list(request: HttpRequest) -> HttpResponse:
    """GET: the tokens; POST: a new one, whose text is in this one answer only (never stored
    nor put in the session, so a reload cannot show it again)."""
    new_token = None
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            try:
                _, new_token = token_create(user=request.user, **form.cleaned_data)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    for error in errors:
                        form.add_error(None if field == "__all__" else field, error)
            else:
                form = TokenForm()
    else:
        form = TokenForm()
    return render(
        request,
        "api/tokens.html",
        {"form": form, "tokens": tokens_for_user(user=request.user), "new_token": new_token},
    )


@login_required
@require_POST
def token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        token = token_revoke(user=request.user, token_id=pk)
    except ApiToken.DoesNotExist:
        raise Http404("No such token of yours.") from None
    messages.success(request, f"Token “{token.name}” revoked: it no longer works.")
    return redirect("trader:api-tokens")
