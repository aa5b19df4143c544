"""The emulator's control plane (``/_emulator/…``): not part of any broker's API.

Tests and benchmarks use it (through :mod:`brokers.emulator.handle`) to create accounts, mint
tokens, move the clock, queue faults, plan faults per order tag and read the order log, the
same way for an emulator in a thread or in a subprocess. Handlers run on the server's event
loop, so they touch the state without locks.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from brokers.emulator.core import Account, BrokerEmulator

ACCOUNT_FIELDS = {
    "api_key",
    "api_secret",
    "user_id",
    "user_name",
    "email",
    "redirect_uri",
    "registered_ip",
    "cash",
    "client_id",
    "extra",
}
OPTION_FIELDS = {
    "latency_ms",
    "fail_rate",
    "fault",
    "registered_ip",
    "fill_delay_ms",
    "book_lag_ms",
    "book_fails",
}


def account_json(account: Account) -> dict[str, Any]:
    return {
        "api_key": account.api_key,
        "user_id": account.user_id,
        "client_id": account.client_id,
        "redirect_uri": account.redirect_uri,
        "registered_ip": account.registered_ip,
        "cash": str(account.cash),
    }


def control_routes(emulator: BrokerEmulator) -> list[web.RouteDef]:
    state = emulator.state

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"broker": emulator.name, "now": state.clock().isoformat()})

    async def add_account(request: web.Request) -> web.Response:
        body = await request.json()
        unknown = set(body) - ACCOUNT_FIELDS
        if unknown:
            return web.json_response({"error": f"unknown fields {sorted(unknown)}"}, status=400)
        account = state.add_account(**body)
        return web.json_response(account_json(account))

    async def issue_token(request: web.Request) -> web.Response:
        body = await request.json()
        account = state.accounts.get(body.get("api_key", ""))
        if account is None:
            return web.json_response({"error": "unknown api_key"}, status=404)
        session = state.issue_token(account)
        return web.json_response(
            {"access_token": session.token, "expires_at": session.expires_at.isoformat()}
        )

    async def revoke(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"revoked": state.revoke(body.get("access_token", ""))})

    async def clock(request: web.Request) -> web.Response:
        body = await request.json()
        if "now" in body:
            state.clock.set(datetime.fromisoformat(body["now"]))
        if "advance" in body:
            state.clock.advance(float(body["advance"]))
        return web.json_response({"now": state.clock().isoformat()})

    async def faults(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            state.faults.push(*body.get("queue", []))
            changes = {k: v for k, v in body.items() if k in OPTION_FIELDS}
            if "fault" in changes:
                changes["fault"] = tuple(changes["fault"])
            options = dataclasses.replace(emulator.options, **changes)
        except (TypeError, ValueError) as err:
            return web.json_response({"error": str(err)}, status=400)
        for key in changes:
            setattr(emulator.options, key, getattr(options, key))
        return web.json_response({"queued": list(state.faults._queue)})

    async def tag_faults(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            state.tag_faults.set(body.get("tags", {}), body.get("down", []))
        except (TypeError, ValueError) as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response(
            {"tags": len(state.tag_faults.planned), "down": sorted(state.tag_faults.down)}
        )

    async def instruments(request: web.Request) -> web.Response:
        rows = await request.json()
        for row in rows:
            symbol = row["tradingsymbol"]
            state.instrument_keys[row["key"]] = (
                row["exchange"],
                symbol,
                row.get("broker_symbol") or symbol,
            )
        return web.json_response({"instruments": len(state.instrument_keys)})

    async def master(request: web.Request) -> web.Response:
        from brokers.emulator.master import Contract

        if request.method == "POST":
            body = await request.json()
            mode = body.get("mode", "ok")
            if mode not in state.master.MODES:
                return web.json_response({"error": f"unknown mode {mode}"}, status=400)
            state.master.mode = mode
            if "contracts" in body:
                rows = body["contracts"]
                state.master.set(None if rows is None else [Contract.from_json(r) for r in rows])
        contracts = [c.to_json() for c in state.master_contracts()]
        return web.json_response({"mode": state.master.mode, "contracts": contracts})

    async def order_log(request: web.Request) -> web.Response:
        return web.json_response(state.order_log)

    async def traffic(request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since_ns", "0"))
            until = int(request.query.get("until_ns", str(2**63)))
        except ValueError:
            return web.json_response({"error": "since_ns and until_ns are integers"}, status=400)
        return web.json_response(state.traffic_between(since, until))

    async def orders(request: web.Request) -> web.Response:
        account = state.accounts.get(request.query.get("api_key", ""))
        if account is None:
            return web.json_response({"error": "unknown api_key"}, status=404)
        return web.json_response(
            [
                {
                    "order_id": o.order_id,
                    "tag": o.spec.tag,
                    "state": o.state.value,
                    "quantity": o.spec.quantity,
                    "filled_quantity": o.filled_quantity,
                }
                for o in state.settle_all(account)
            ]
        )

    return [
        web.get("/_emulator/health", health),
        web.post("/_emulator/accounts", add_account),
        web.post("/_emulator/tokens", issue_token),
        web.post("/_emulator/revoke", revoke),
        web.post("/_emulator/clock", clock),
        web.post("/_emulator/faults", faults),
        web.post("/_emulator/tag-faults", tag_faults),
        web.post("/_emulator/instruments", instruments),
        web.get("/_emulator/order-log", order_log),
        web.get("/_emulator/master", master),
        web.post("/_emulator/master", master),
        web.get("/_emulator/orders", orders),
        web.get("/_emulator/traffic", traffic),
    ]
