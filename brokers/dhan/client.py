"""A thin HTTP client for DhanHQ v2 (reference: broker-apis.md §5).

Trading calls go to `api.dhan.co/v2`; the consent login to `auth.dhan.co`.
"""

from __future__ import annotations

from typing import Any

import requests

from brokers.httpclient import HttpClient

DEFAULT_BASE_URL = "https://api.dhan.co"
DEFAULT_AUTH_URL = "https://auth.dhan.co"
DEFAULT_LOGIN_URL = "https://auth.dhan.co/login/consentApp-login"
DEFAULT_INSTRUMENTS_URL = "https://images.dhan.co/api-data/api-scrip-master.csv"

GENERATE_CONSENT = "/app/generate-consent"
CONSUME_CONSENT = "/app/consumeApp-consent"
TOTP_LOGIN = "/app/generateAccessToken"
ORDERS = "/v2/orders"
ORDER = "/v2/orders/{order_id}"
ORDER_BY_CORRELATION = "/v2/orders/external/{correlation_id}"
POSITIONS = "/v2/positions"
FUNDS = "/v2/fundlimit"
LTP = "/v2/marketfeed/ltp"


class DhanClient:
    def __init__(
        self,
        *,
        base_url: str,
        auth_url: str,
        client_id: str,
        access_token: str = "",
        http: HttpClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth_url = auth_url.rstrip("/")
        self.http = http or HttpClient()
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if access_token:
            self.headers["access-token"] = access_token
            # The official SDK sends the client id too; the market-feed endpoints require it.
            self.headers["client-id"] = client_id

    def request(
        self, method: str, path: str, *, write: bool, payload: Any = None
    ) -> requests.Response:
        return self.http.send(
            method, self.base_url + path, write=write, json=payload, headers=self.headers
        )

    def auth(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str],
        app_id: str = "",
        app_secret: str = "",
    ) -> requests.Response:
        headers = {"Accept": "application/json"}
        if app_id:
            headers.update(app_id=app_id, app_secret=app_secret)
        return self.http.send(
            method, self.auth_url + path, write=False, params=params, headers=headers
        )

    def get_url(self, url: str) -> requests.Response:
        return self.http.send("GET", url, write=False)
