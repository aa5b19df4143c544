"""The kill switch in the Django admin goes through the same services as the form: the
global switch needs a reason, engaging records who and when (and cancels and flattens),
unticking re-arms it, and a change that does not turn the switch is a plain save."""

from __future__ import annotations

import pytest
from django.urls import reverse

from execution.models import ExecutionEvent, KillSwitch

pytestmark = pytest.mark.django_db


def _form(**changes) -> dict[str, str]:
    data = {"scope": "global", "user": "", "engaged": "on", "reason": ""}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_the_global_switch_is_engaged_only_with_a_reason_and_rearmed_by_unticking(
    admin_client, admin_user, django_capture_on_commit_callbacks
):
    add = reverse("admin:execution_killswitch_add")
    page = admin_client.post(add, _form())
    assert page.status_code == 200
    assert "Say why the platform-wide kill switch is engaged." in page.content.decode()
    assert not KillSwitch.objects.filter(scope="global", engaged=True).exists()

    with django_capture_on_commit_callbacks(execute=False):
        response = admin_client.post(add, _form(reason="exchange outage"))
    assert response.status_code == 302
    switch = KillSwitch.objects.get(scope="global", user=None)
    assert switch.engaged and switch.engaged_by == admin_user and switch.engaged_at is not None
    assert switch.reason == "exchange outage"
    assert ExecutionEvent.objects.filter(kind="killswitch.engaged").exists()

    change = reverse("admin:execution_killswitch_change", args=[switch.pk])
    # Only the reason changes: not a turn of the switch, nothing re-armed.
    admin_client.post(change, _form(reason="exchange outage (NSE)"))
    switch.refresh_from_db()
    assert switch.engaged and switch.reason == "exchange outage (NSE)"
    assert switch.rearmed_at is None
    # Unticked: re-armed through the service.
    admin_client.post(change, _form(engaged=None, reason="exchange outage (NSE)"))
    switch.refresh_from_db()
    assert not switch.engaged and switch.rearmed_at is not None
    assert ExecutionEvent.objects.filter(kind="killswitch.rearmed").exists()
