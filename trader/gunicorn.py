"""Gunicorn's access log with the same redaction as every other log line.

Gunicorn writes its access log itself, outside Django's logging, so the request line, query
string and referrer of a broker's OAuth callback (`request_token`, `code`, `state`…) would reach
it in clear. `gunicorn.conf.py` at the project root selects this logger class.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from trader.logging import redact


class RedactingLogger(Logger):
    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        values = super().atoms(resp, req, environ, request_time)
        return {
            key: redact(value) if isinstance(value, str) else value for key, value in values.items()
        }
