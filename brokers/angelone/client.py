"""A thin HTTP client for Angel One SmartAPI (reference: broker-apis.md §3).

It knows the paths and headers and nothing else; parsing.py decides what an answer means.
"""

from __future__ import annotations

from typing import Any

import requests

from brokers.httpclient import HttpClient

DEFAULT_BASE_URL = "https://apiconnect.angelone.in"
DEFAULT_LOGIN_URL = "https://smartapi.angelone.in/publisher-login"
DEFAULT_INSTRUMENTS_URL = (
    "https://margincalculator.angelbroking.com/OpenAPI_File/files/OpenAPIScripMaster.json"
)

LOGIN_PATH = "/rest/auth/angelbroking/user/v1/loginByPassword"
GENERATE_TOKENS = "/rest/auth/angelbroking/jwt/v1/generateTokens"
PLACE_ORDER = "/rest/secure/angelbroking/order/v1/placeOrder"
MODIFY_ORDER = "/rest/secure/angelbroking/order/v1/modifyOrder"
CANCEL_ORDER = "/rest/secure/angelbroking/order/v1/cancelOrder"
ORDER_BOOK = "/rest/secure/angelbroking/order/v1/getOrderBook"
ORDER_DETAILS = "/rest/secure/angelbroking/order/v1/details/{unique_order_id}"
POSITIONS = "/rest/secure/angelbroking/order/v1/getPosition"
RMS = "/rest/secure/angelbroking/user/v1/getRMS"
QUOTE = "/rest/secure/angelbroking/market/v1/quote/"


class AngelOneClient:
    """Angel One REST calls with the six `X-*` headers SmartAPI requires on every request."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        jwt_token: str = "",
        client_public_ip: str = "",
        client_local_ip: str = "",
        mac_address: str = "",
        http: HttpClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http or HttpClient()
        # Angel requires these headers but, per the reference, does not validate the values;
        # the official SDK sends placeholders. We send the account's egress IP when we know it.
        self.headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-UserType": "USER",
            "X-SourceID": "WEB",
            "X-ClientLocalIP": client_local_ip or "127.0.0.1",
            "X-ClientPublicIP": client_public_ip or "127.0.0.1",
            "X-MACAddress": mac_address or "00:00:00:00:00:00",
            "X-PrivateKey": api_key,
        }
        if jwt_token:
            self.headers["Authorization"] = f"Bearer {jwt_token}"

    def post(self, path: str, payload: dict[str, Any], *, write: bool) -> requests.Response:
        return self.http.send(
            "POST", self.base_url + path, write=write, json=payload, headers=self.headers
        )

    def get(self, path: str) -> requests.Response:
        return self.http.send("GET", self.base_url + path, write=False, headers=self.headers)

    def get_url(self, url: str) -> requests.Response:
        """A GET on another host (the instrument master), without the API headers."""
        return self.http.send("GET", url, write=False)
