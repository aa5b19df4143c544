"""A thin HTTP client for Fyers API v3 (reference: broker-apis.md §4).

Trading and auth live under `/api/v3` and market data under `/data`, both on one host.
"""

from __future__ import annotations

from typing import Any

import requests

from brokers.httpclient import HttpClient

DEFAULT_BASE_URL = "https://api-t1.fyers.in"
DEFAULT_LOGIN_URL = "https://api-t1.fyers.in/api/v3/generate-authcode"
DEFAULT_INSTRUMENTS_URL = "https://public.fyers.in/sym_details/{segment}.csv"

VALIDATE_AUTHCODE = "/api/v3/validate-authcode"
ORDERS = "/api/v3/orders"
ORDER_SYNC = "/api/v3/orders/sync"
POSITIONS = "/api/v3/positions"
FUNDS = "/api/v3/funds"
QUOTES = "/data/quotes"


class FyersClient:
    def __init__(
        self, *, base_url: str, app_id: str, access_token: str = "", http: HttpClient | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http or HttpClient()
        self.headers = {"Content-Type": "application/json", "version": "3"}
        if access_token:
            # Fyers wants `<APP_ID>:<access_token>`, without "Bearer".
            self.headers["Authorization"] = f"{app_id}:{access_token}"

    def request(
        self,
        method: str,
        path: str,
        *,
        write: bool,
        payload: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        return self.http.send(
            method,
            self.base_url + path,
            write=write,
            json=payload,
            params=params,
            headers=self.headers,
        )

    def get_url(self, url: str) -> requests.Response:
        return self.http.send("GET", url, write=False)
