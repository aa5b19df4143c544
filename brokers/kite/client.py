"""Thin HTTP client for Kite Connect v3: auth headers, one pooled Session, explicit timeouts,
and error classification (once, in parsing.error_for) on every non-success answer."""

from __future__ import annotations

from typing import Any

import requests

from brokers.base import BrokerError, WireAnswer
from brokers.httpclient import HttpClient, json_body, raise_on_failure
from brokers.kite import parsing


class KiteClient:
    def __init__(
        self, *, base_url: str, api_key: str, access_token: str = "", http: HttpClient | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.access_token = access_token
        self.http = http or HttpClient()

    def headers(self) -> dict[str, str]:
        headers = {"X-Kite-Version": "3"}
        if self.access_token:
            headers["Authorization"] = f"token {self.api_key}:{self.access_token}"
        return headers

    def warm(self) -> None:
        """Open the pooled connection ahead of a timed burst (TCP setup off the hot path).
        Any answer will do; a failure here is not an error (the real call will report it)."""
        try:
            self.http.send("HEAD", self.base_url + "/", write=False, headers=self.headers())
        except BrokerError:
            return

    def send(self, method: str, path: str, *, write: bool = False, **kwargs: Any) -> Any:
        """The answer's `data`, or the classified BrokerError."""
        response = self.http.send(
            method, self.base_url + path, write=write, headers=self.headers(), **kwargs
        )
        return self.read(response, write=write)

    def read(self, response: requests.Response | WireAnswer, *, write: bool) -> Any:
        """The `data` of an answer (a requests.Response or an order write's WireAnswer), or
        the classified BrokerError."""
        if isinstance(response, WireAnswer):
            raise_on_failure(response)
        body = json_body(response)
        if (
            response.status_code >= 400
            or not isinstance(body, dict)
            or (body.get("status") == "error" or "error_type" in body)
        ):
            raise parsing.error_for(response, body, write=write)
        return body.get("data")

    def send_raw(self, method: str, path: str) -> requests.Response:
        response = self.http.send(method, self.base_url + path, write=False, headers=self.headers())
        if response.status_code >= 400:
            raise parsing.error_for(response, json_body(response), write=False)
        return response
