"""Local stand-ins on 127.0.0.1 for what alerts talk to: Telegram's Bot API (getMe,
getUpdates, sendMessage, with tokens it knows and chats users opened), an HTTP receiver for
outgoing webhooks and a push service, each able to fail its next N requests."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


class LoopbackServer:
    """An aiohttp app in a daemon thread on an ephemeral loopback port."""

    def __init__(self, app: web.Application) -> None:
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app)
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.runner.setup())
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            self.loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        ready.wait(10)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class TelegramState:
    bots: dict[str, str] = field(default_factory=dict)  # token -> bot user name
    updates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    chats: set[int] = field(default_factory=set)
    fail_next: int = 0


def telegram_app(state: TelegramState) -> web.Application:
    """The Bot API's answers as documented: {"ok": true, "result": …} or {"ok": false,
    "error_code": N, "description": …} with that HTTP status."""

    def refuse(code: int, description: str) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": code, "description": description}, status=code
        )

    async def call(request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        if token not in state.bots:
            return refuse(401, "Unauthorized")
        if state.fail_next:
            state.fail_next -= 1
            return refuse(502, "Bad Gateway")
        payload = await request.json() if request.can_read_body else {}
        if method == "getMe":
            return web.json_response(
                {"ok": True, "result": {"id": 1, "is_bot": True, "username": state.bots[token]}}
            )
        if method == "getUpdates":
            return web.json_response({"ok": True, "result": state.updates.get(token, [])})
        if method == "sendMessage":
            chat_id = int(payload.get("chat_id", 0))
            if chat_id not in state.chats:
                return refuse(400, "Bad Request: chat not found")
            state.sent.append({"token": token, **payload})
            return web.json_response({"ok": True, "result": {"message_id": len(state.sent)}})
        return refuse(404, "Not Found")

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", call)
    return app


def user_presses_start(state: TelegramState, token: str, chat_id: int, text: str) -> None:
    """What Telegram holds after a user opened the bot's t.me link and pressed Start."""
    state.chats.add(chat_id)
    updates = state.updates.setdefault(token, [])
    updates.append(
        {
            "update_id": 1000 + len(updates),
            "message": {"message_id": 1, "chat": {"id": chat_id, "type": "private"}, "text": text},
        }
    )


@dataclass
class Receiver:
    """Records every POST (headers and raw body); answers `status`, after failing the next
    `fail_next` requests with 503."""

    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_next: int = 0
    status: int = 200


def receiver_app(receiver: Receiver) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        receiver.requests.append((dict(request.headers), await request.read()))
        if receiver.fail_next:
            receiver.fail_next -= 1
            return web.Response(status=503)
        return web.Response(status=receiver.status)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    return app
