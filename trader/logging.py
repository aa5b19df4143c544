"""Logging filters: a request id on every record, and secrets never reach the output."""

from __future__ import annotations

import contextvars
import logging
import re

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# Values after these names are replaced, in plain text, query strings, JSON and headers alike.
_REDACTED_FIELDS = (
    r"access[_-]?token|refresh[_-]?token|request[_-]?token|api[_-]?secret|client[_-]?secret|"
    r"secret[_-]?key|password|passwd|pin|totp|checksum|authorization|access-token|jwt|code|"
    # One-time values of the brokers' OAuth callbacks (Kite, Upstox, Fyers, Dhan, Angel One).
    r"state|auth[_-]?code|token[_-]?id|token[_-]?request|tokenid|feed[_-]?token"
)
# "=" may come percent-encoded (%3D), e.g. in the `next=` of a login redirect, and then "&" as %26.
_SECRET_PATTERN = re.compile(
    rf"""(?P<key>["']?(?:{_REDACTED_FIELDS})["']?\s*(?:[:=]|%3D)\s*["']?)"""
    rf"""(?P<value>(?:token\s+|bearer\s+)?(?:(?!%26)[^\s"'&,;}}])+)""",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """Replace the value of anything that looks like a credential with ***."""
    return _SECRET_PATTERN.sub(lambda m: f"{m.group('key')}***", text)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is logged as it is
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
