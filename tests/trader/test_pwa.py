"""The installable app: manifest with icons, a service worker at the root, an offline page."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_manifest_names_the_app_and_its_icons_which_exist(client):
    response = client.get(reverse("manifest"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"
    data = response.json()
    assert data["display"] == "standalone" and data["start_url"] == "/"
    sizes = {icon["sizes"] for icon in data["icons"]}
    assert {"192x192", "512x512"} <= sizes
    assert any(icon.get("purpose") == "maskable" for icon in data["icons"])
    for icon in data["icons"]:
        assert finders.find(icon["src"].split("/static/", 1)[1]), icon["src"]


def test_service_worker_is_served_from_the_root_and_caches_no_money_page(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    body = response.content.decode()
    assert reverse("offline") in body and "caches.match(OFFLINE)" in body


def test_offline_page_carries_no_user_data(owner_client, owner):
    page = owner_client.get(reverse("offline"))
    assert page.status_code == 200 and "You are offline" in page.text
    assert owner.email not in page.text and "csrfmiddlewaretoken" not in page.text


def test_every_page_links_the_manifest(owner_client):
    page = owner_client.get(reverse("trader:dashboard"))
    assert reverse("manifest") in page.text and 'name="theme-color"' in page.text
