"""The OpenAPI document (/api/schema/) and its docs page (/api/docs/), served from our own
static files under the site's strict Content-Security-Policy."""

from __future__ import annotations

import os
import re

import pytest
from django.test import Client

from tests.trader.test_csp_browser import CHROMIUM, browser_page  # noqa: F401 (fixture)

OPERATIONS = {
    ("get", "/api/v1/profile/"),
    ("get", "/api/v1/broker-accounts/"),
    ("get", "/api/v1/broker-accounts/{id}/"),
    ("get", "/api/v1/broker-accounts/{id}/funds/"),
    ("post", "/api/v1/broker-accounts/{id}/test/"),
    ("get", "/api/v1/strategies/"),
    ("post", "/api/v1/strategies/"),
    ("get", "/api/v1/strategies/{id}/"),
    ("put", "/api/v1/strategies/{id}/"),
    ("get", "/api/v1/strategies/{id}/versions/"),
    ("post", "/api/v1/strategies/{id}/activate/"),
    ("post", "/api/v1/strategies/{id}/pause/"),
    ("post", "/api/v1/strategies/{id}/archive/"),
    ("post", "/api/v1/strategies/{id}/paper-test/"),
    ("get", "/api/v1/runs/"),
    ("get", "/api/v1/runs/{id}/"),
    ("post", "/api/v1/runs/{id}/exit/"),
    ("get", "/api/v1/positions/"),
    ("get", "/api/v1/kill-switch/"),
    ("post", "/api/v1/kill-switch/engage/"),
    ("post", "/api/v1/kill-switch/rearm/"),
    ("get", "/api/v1/marketplace/listings/"),
    ("post", "/api/v1/marketplace/listings/{id}/subscribe/"),
    ("get", "/api/v1/marketplace/subscriptions/"),
    ("get", "/api/v1/marketplace/subscriptions/{id}/"),
    ("post", "/api/v1/marketplace/subscriptions/{id}/pause/"),
    ("post", "/api/v1/marketplace/subscriptions/{id}/resume/"),
    ("post", "/api/v1/marketplace/subscriptions/{id}/cancel/"),
    ("post", "/api/v1/marketplace/subscriptions/{id}/deployments/"),
    ("put", "/api/v1/marketplace/deployments/{id}/"),
    ("post", "/api/v1/marketplace/deployments/{id}/stop/"),
    ("get", "/api/v1/analytics/timing/"),
    ("get", "/api/v1/analytics/brokers/"),
    ("get", "/api/v1/analytics/costs/"),
    ("get", "/api/v1/analytics/performance/"),
}


@pytest.fixture
def schema(db) -> dict:
    answer = Client().get("/api/schema/", {"format": "json"})
    assert answer.status_code == 200
    return answer.json()


def test_schema_lists_every_operation_with_a_description_and_examples(schema):
    assert schema["openapi"].startswith("3.")
    found = {(method, path) for path, ops in schema["paths"].items() for method in ops}
    assert found == OPERATIONS
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert op.get("description"), (method, path)
            for code, response in op["responses"].items():
                examples = response["content"]["application/json"].get("examples")
                assert examples, (method, path, code)
            assert {"ApiToken": []} in op["security"], (method, path)
            if "requestBody" in op:
                body = op["requestBody"]["content"]["application/json"]
                assert body.get("examples"), (method, path, "request")
    bearer = schema["components"]["securitySchemes"]["ApiToken"]
    assert bearer == {**bearer, "type": "http", "scheme": "bearer"}


@pytest.mark.django_db
def test_docs_page_has_no_inline_script_or_style_and_its_assets_are_ours():
    client = Client()
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.text
    assert "<style" not in html and not re.search(r"<script>\s*\S", html)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(src.startswith(("/static/", "/api/")) for src in sources), sources
    for src in sources:
        assert client.get(src).status_code == 200, src
    assert "script-src 'self'" in page["Content-Security-Policy"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium not installed at {CHROMIUM}")
@pytest.mark.skipif("FAKETIME" in os.environ, reason="browser check runs in `make test`")
def test_docs_page_renders_the_operations_in_a_browser_under_the_csp(browser_page, live_server):  # noqa: F811
    page = browser_page
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=20000)
    assert page.locator(".opblock").count() == len(OPERATIONS)
    assert not page.violations, page.violations
