"""Staff sign in through allauth (throttled, second factor), enrol before admin, and every staff
action checks its named permission (trader.permissions)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from execution.models.engine import KillSwitch, KillSwitchScope
from marketplace.models import Invoice, InvoiceStatus, Listing
from marketplace.workflow import ListingState
from tests.conftest import staff_client_for, staff_enrol_totp, totp_code
from tests.marketplace.factories import ListingFactory
from tests.trader.factories import ProfileFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


def _staff(*permissions: str):
    user = ProfileFactory().user
    user.is_staff = True
    user.save()
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_admin_login_form_never_signs_in_with_a_password_alone(client):
    staff = _staff()
    staff_enrol_totp(staff)
    response = client.post(
        "/admin/login/?next=/admin/", {"username": staff.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert not _signed_in(client)
    assert client.get("/admin/").status_code == 302


def test_staff_sign_in_asks_for_the_code_then_admin_opens(client):
    staff = _staff()
    secret = staff_enrol_totp(staff)
    response = client.post(reverse("account_login"), {"login": staff.email, "password": PASSWORD})
    assert response["Location"] == reverse("mfa_authenticate")
    assert not _signed_in(client)
    client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert _signed_in(client)
    assert client.get("/admin/").status_code == 200


def test_admin_login_is_throttled_after_failed_passwords(client):
    staff = _staff()
    # The probe: 30 wrong passwords on /admin/login/, then the right one, used to sign in.
    for _ in range(30):
        client.post("/admin/login/", {"username": staff.email, "password": "wrong"})
    client.post("/admin/login/", {"username": staff.email, "password": PASSWORD})
    assert not _signed_in(client)
    # The sign-in it forwards to counts failures and refuses the right password after them.
    for _ in range(30):
        client.post(reverse("account_login"), {"login": staff.email, "password": "wrong"})
    response = client.post(reverse("account_login"), {"login": staff.email, "password": PASSWORD})
    assert response.status_code == 429 or b"Too many failed login attempts" in response.content
    assert not _signed_in(client)


def test_staff_without_an_authenticator_are_sent_to_enrol_before_admin():
    staff = _staff()
    client = Client()
    client.force_login(staff)
    response = client.get("/admin/marketplace/listing/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_activate_totp"))


def test_enrolled_staff_must_give_a_code_in_this_session():
    staff = _staff()
    staff_enrol_totp(staff)
    client = Client()
    client.force_login(staff)
    response = client.get("/admin/")
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))


def test_traders_are_not_affected_by_the_staff_rule(owner_client):
    assert owner_client.get(reverse("trader:dashboard")).status_code == 200


def _submitted_listing() -> Listing:
    return ListingFactory(state=ListingState.SUBMITTED)


def test_staff_without_permission_cannot_approve_through_the_workflow_url():
    listing = _submitted_listing()
    client = staff_client_for(_staff())
    url = reverse("admin:marketplace_listing_workflow", args=[listing.pk, "approve"])
    response = client.post(url, {"apply": "1", "reason": ""})
    assert response.status_code == 403
    listing.refresh_from_db()
    assert listing.state == ListingState.SUBMITTED


def test_staff_with_review_permission_approves():
    listing = _submitted_listing()
    client = staff_client_for(_staff("review_listings"))
    url = reverse("admin:marketplace_listing_workflow", args=[listing.pk, "approve"])
    client.post(url, {"apply": "1", "reason": ""})
    listing.refresh_from_db()
    assert listing.state == ListingState.APPROVED


def test_staff_without_permission_cannot_engage_the_global_kill_switch():
    client = staff_client_for(_staff())
    client.post(reverse("execution:kill-switch"), {"scope": "global"})
    assert not KillSwitch.objects.filter(scope=KillSwitchScope.GLOBAL, engaged=True).exists()


def test_staff_with_permission_engages_the_global_kill_switch():
    client = staff_client_for(_staff("operate_global_kill_switch"))
    # The platform-wide switch is engaged with a reason (audited); without one it is refused.
    client.post(reverse("execution:kill-switch"), {"scope": "global"})
    assert not KillSwitch.objects.filter(scope=KillSwitchScope.GLOBAL, engaged=True).exists()
    client.post(reverse("execution:kill-switch"), {"scope": "global", "reason": "NSE outage"})
    assert KillSwitch.objects.filter(scope=KillSwitchScope.GLOBAL, engaged=True).exists()


def test_recording_a_payment_needs_its_permission():
    from marketplace import services
    from marketplace.exceptions import MarketplaceError
    from tests.marketplace.security_helpers import fee_subscription

    subscription = fee_subscription()
    invoice = subscription.invoices.get()
    changelist = reverse("admin:marketplace_invoice_changelist")
    payload = {
        "action": "mark_paid",
        "_selected_action": [invoice.pk],
        "apply": "1",
        "reference": "UTR123",
    }
    viewer = _staff("view_invoice")
    staff_client_for(viewer).post(changelist, payload)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.ISSUED
    with pytest.raises(MarketplaceError):
        services.invoice_mark_paid(invoice=invoice, admin=viewer, reference="UTR123")

    cashier = _staff("view_invoice", "record_payments")
    staff_client_for(cashier).post(changelist, payload)
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PAID


# A real commit: allauth announces the new authenticator on commit, inside the request.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_staff_enrol_then_reach_admin_in_the_same_session(client):
    staff = _staff()
    client.post(reverse("account_login"), {"login": staff.email, "password": PASSWORD})
    assert _signed_in(client)
    response = client.get("/admin/")
    assert response["Location"].startswith(reverse("mfa_activate_totp"))
    # Enrolment is a sensitive change: allauth asks for the password again first.
    page = client.get(reverse("mfa_activate_totp"))
    client.post(page["Location"], {"password": PASSWORD})
    secret = client.get(reverse("mfa_activate_totp")).context["form"].secret
    client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert client.get("/admin/").status_code == 200


def test_enrolled_staff_confirm_a_code_and_go_on_to_admin(client):
    staff = _staff()
    secret = staff_enrol_totp(staff)
    client.force_login(staff)
    response = client.get("/admin/password_change/")
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))
    done = client.post(response["Location"], {"code": totp_code(secret)})
    assert done["Location"] == "/admin/password_change/"
    assert client.get("/admin/password_change/").status_code == 200


def test_kill_switch_rows_in_admin_need_the_permission_too():
    KillSwitch.objects.create(scope=KillSwitchScope.GLOBAL, engaged=False)
    switch = KillSwitch.objects.get(scope=KillSwitchScope.GLOBAL)
    change = reverse("admin:execution_killswitch_change", args=[switch.pk])
    viewer = staff_client_for(_staff("view_killswitch", "change_killswitch"))
    viewer.post(change, {"scope": "global", "engaged": "on", "reason": "x"})
    switch.refresh_from_db()
    assert not switch.engaged
    operator = staff_client_for(_staff("view_killswitch", "operate_global_kill_switch"))
    assert 'name="_save"' in operator.get(change).text


def test_kill_switch_engaged_in_admin_goes_through_the_audited_service():
    from execution.models import ExecutionEvent

    operator_user = _staff("view_killswitch", "operate_global_kill_switch")
    operator = staff_client_for(operator_user)
    add = reverse("admin:execution_killswitch_add")
    refused = operator.post(add, {"scope": "global", "engaged": "on", "reason": " "})
    assert refused.status_code == 200 and "Say why" in refused.text
    assert not KillSwitch.objects.filter(engaged=True).exists()
    operator.post(add, {"scope": "global", "engaged": "on", "reason": "exchange outage"})
    switch = KillSwitch.objects.get(scope=KillSwitchScope.GLOBAL)
    assert switch.engaged and switch.engaged_by == operator_user and switch.engaged_at
    assert switch.reason == "exchange outage"
    assert ExecutionEvent.objects.filter(kind="killswitch.engaged").exists()
    # Every admin page says so, with who and when.
    page = operator.get(reverse("admin:index")).text
    assert "PLATFORM-WIDE KILL SWITCH ENGAGED" in page and "exchange outage" in page
    change = reverse("admin:execution_killswitch_change", args=[switch.pk])
    operator.post(change, {"scope": "global", "engaged": "", "reason": "exchange outage"})
    switch.refresh_from_db()
    assert not switch.engaged and switch.rearmed_at
    assert ExecutionEvent.objects.filter(kind="killswitch.rearmed").exists()
    assert "KILL SWITCH ENGAGED" not in operator.get(reverse("admin:index")).text
