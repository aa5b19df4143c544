"""Thin HTTP client for Upstox: Bearer auth, JSON, one pooled Session for both hosts (reads on
the API host, order writes on the HFT host), explicit timeouts, errors classified once in
parsing.error_for."""

from __future__ import annotations

from typing import Any

import requests

from brokers.base import BrokerError, WireAnswer
from brokers.httpclient import HttpClient, json_body, raise_on_failure
from brokers.upstox import parsing


class UpstoxClient:
    def __init__(
        self,
        *,
        base_url: str,
        order_base_url: str,
        access_token: str = "",
        http: HttpClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.order_base_url = order_base_url.rstrip("/")
        self.access_token = access_token
        self.http = http or HttpClient()

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        return headers

    def warm(self) -> None:
        """Open the pooled connection to the order host ahead of a timed burst; failures are
        left for the real call to report."""
        try:
            self.http.send("HEAD", self.order_base_url + "/", write=False, headers=self.headers())
        except BrokerError:
            return

    def send(
        self,
        method: str,
        path: str,
        *,
        write: bool = False,
        order_host: bool = False,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> Any:
        """The decoded body (flat for the token exchange, else its `data`), or the classified
        BrokerError. `headers` are added to the auth headers."""
        base = self.order_base_url if order_host else self.base_url
        response = self.http.send(
            method, base + path, write=write, headers={**self.headers(), **(headers or {})}, **kw
        )
        return self.read(response, write=write)

    def read(self, response: requests.Response | WireAnswer, *, write: bool) -> Any:
        """The decoded answer (a requests.Response or an order write's WireAnswer), or the
        classified BrokerError."""
        if isinstance(response, WireAnswer):
            raise_on_failure(response)
        body = json_body(response)
        if (
            response.status_code >= 400
            or not isinstance(body, dict)
            or body.get("status") == "error"
        ):
            raise parsing.error_for(response, body, write=write)
        return body.get("data", body) if "status" in body else body

    def get_raw(self, url: str) -> requests.Response:
        response = self.http.send("GET", url, write=False, headers=self.headers())
        if response.status_code >= 400:
            raise parsing.error_for(response, json_body(response), write=False)
        return response
