"""RFC 6238 TOTP (30-second steps, six digits, HMAC-SHA1), as broker logins check it.

The emulators that log in with a PIN and a TOTP (Angel One, Dhan) keep the account's base32
secret in ``Account.extra["totp_secret"]``; tests compute the code with :func:`totp`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from datetime import datetime

STEP_SECONDS = 30


def totp(secret: str, at: datetime, *, digits: int = 6) -> str:
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int(at.timestamp()) // STEP_SECONDS
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp_valid(secret: str, code: str, at: datetime) -> bool:
    """The current code or the one just before it (a login typed at a step boundary)."""
    if not secret or not code:
        return False
    earlier = datetime.fromtimestamp(at.timestamp() - STEP_SECONDS, tz=at.tzinfo)
    return any(hmac.compare_digest(totp(secret, t), code) for t in (at, earlier))
