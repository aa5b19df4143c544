"""Sign-up to a complete profile, through HTTP as a trader would."""

from __future__ import annotations

import re
import time

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import hotp_value
from django.core import mail
from django.urls import reverse

from trader.models import Profile, User

pytestmark = pytest.mark.django_db

GOOD_PROFILE = {
    "full_name": "Priya Sharma",
    "mobile": "+91 98765-43210",
    "state": "Odisha",
    "city": "Bhubaneswar",
    "pin_code": "751001",
    "pan": "abcde1234f",
}


def test_signup_confirm_login_and_complete_profile(client):
    response = client.post(
        reverse("account_signup"),
        {
            "email": "Priya@Example.com",
            "password1": "s3cure-Passw0rd!",
            "password2": "s3cure-Passw0rd!",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="priya@example.com")
    assert not user.emailaddress_set.get().verified

    # Unverified: logging in is held at the verification step.
    client.logout()
    response = client.post(
        reverse("account_login"), {"login": "priya@example.com", "password": "s3cure-Passw0rd!"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")

    confirm_url = re.search(r"https?://[^\s]+/accounts/confirm-email/[^\s]+/", mail.outbox[-1].body)
    assert confirm_url, mail.outbox[-1].body
    path = confirm_url.group(0).split("testserver", 1)[1]
    assert client.get(path).status_code == 200
    response = client.post(path)
    assert response.status_code == 302
    assert user.emailaddress_set.get().verified

    client.logout()
    response = client.post(
        reverse("account_login"), {"login": "priya@example.com", "password": "s3cure-Passw0rd!"}
    )
    assert response.status_code == 302 and response["Location"] == reverse("trader:dashboard")

    dashboard = client.get(reverse("trader:dashboard"))
    assert b"Complete your profile" in dashboard.content

    response = client.post(reverse("trader:profile"), GOOD_PROFILE)
    assert response.status_code == 302
    profile = Profile.objects.get(user=user)
    assert profile.mobile == "+919876543210"
    assert profile.state == "OD" and profile.state_iso == "IN-OD"
    assert profile.pan == "ABCDE1234F"
    assert profile.is_complete
    dashboard = client.get(reverse("trader:dashboard"))
    assert b"Profile complete (Odisha, +919876543210)" in dashboard.content


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mobile", "022 2345 6789", "10-digit Indian mobile number"),
        ("mobile", "1800 180 1234", "10-digit Indian mobile number"),
        ("pin_code", "012345", "6 digits"),
        ("pan", "ABCD1234F", "5 letters, 4 digits"),
        ("state", "Atlantis", "28 states or 8 union territories"),
        ("full_name", "", "This field is required"),
    ],
)
def test_bad_profile_input_rerenders_with_field_error_and_saves_nothing(
    client, field, value, message
):
    user = User.objects.create_user("x@example.com", "pw-123456789")
    client.force_login(user)
    response = client.post(reverse("trader:profile"), {**GOOD_PROFILE, field: value})
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert message in " ".join(response.context["form"].errors[field])
    assert message.encode() in response.content
    assert not Profile.objects.filter(user=user).exists()


def test_failed_profile_edit_keeps_the_previous_values(owner_client, owner):
    before = Profile.objects.get(user=owner)
    response = owner_client.post(
        reverse("trader:profile"), {**GOOD_PROFILE, "mobile": "5876543210"}
    )
    assert response.status_code == 200
    after = Profile.objects.get(user=owner)
    assert (after.mobile, after.state, after.full_name) == (
        before.mobile,
        before.state,
        before.full_name,
    )


def test_totp_enrolment(client):
    user = User.objects.create_user("totp@example.com", "pw-123456789")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    client.post(reverse("account_login"), {"login": "totp@example.com", "password": "pw-123456789"})
    # Enrolment is a sensitive change: allauth asks for the password again first.
    response = client.get(reverse("mfa_activate_totp"))
    assert response.status_code == 302 and "reauthenticate" in response["Location"]
    client.post(response["Location"], {"password": "pw-123456789"})
    response = client.get(reverse("mfa_activate_totp"))
    assert response.status_code == 200
    secret = response.context["form"].secret
    code = f"{hotp_value(secret, int(time.time() // 30)):06d}"

    response = client.post(reverse("mfa_activate_totp"), {"code": "000000"})
    assert response.status_code == 200  # wrong code: form again, nothing activated
    assert not Authenticator.objects.filter(user=user).exists()

    response = client.post(reverse("mfa_activate_totp"), {"code": code})
    assert response.status_code == 302
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()

    # From now on a password alone is not enough: login stops at the TOTP step.
    client.logout()
    response = client.post(
        reverse("account_login"), {"login": "totp@example.com", "password": "pw-123456789"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")


def test_repeated_failed_logins_are_throttled(client):
    User.objects.create_user("victim@example.com", "right-password-1")
    for _ in range(5):
        response = client.post(
            reverse("account_login"), {"login": "victim@example.com", "password": "wrong"}
        )
        assert response.status_code == 200
    response = client.post(
        reverse("account_login"), {"login": "victim@example.com", "password": "right-password-1"}
    )
    assert response.status_code == 429 or b"Too many failed login attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_password_change_and_reset_pages(owner_client, client):
    assert owner_client.get(reverse("account_change_password")).status_code == 200
    response = client.post(reverse("account_reset_password"), {"email": "nobody@example.com"})
    assert response.status_code == 302


def test_pages_need_login(client):
    for name in ["trader:dashboard", "trader:profile", "brokers:list", "strategies:list"]:
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
