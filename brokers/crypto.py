"""Encryption at rest for broker credentials and tokens.

MultiFernet over `settings.FIELD_ENCRYPTION_KEYS` (newest first): values are encrypted with the
first key and decrypted with any, so a key is rotated by prepending a new key, running
`manage.py rotate_broker_secrets` (re-encrypts every value with the new key), then dropping the
old key from the setting.
"""

from __future__ import annotations

import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class DecryptionError(Exception):
    """A stored value cannot be decrypted with any configured key (key removed too early?)."""


@functools.lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        # Never echo the key itself: say which position is wrong.
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)."
        ) from exc


def fernet() -> MultiFernet:
    # Cached per key list, so tests that override the setting get a matching instance.
    return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    """The Fernet token (text) for a value; the empty string stays empty."""
    if plaintext == "":
        return ""
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    if ciphertext == "":
        return ""
    try:
        return fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            "A stored broker credential cannot be decrypted with the configured keys."
        ) from exc


def needs_rotation(ciphertext: str) -> bool:
    """True when the value is not encrypted with the first (current) key."""
    if ciphertext == "":
        return False
    primary = Fernet(settings.FIELD_ENCRYPTION_KEYS[0].encode())
    try:
        primary.decrypt(ciphertext.encode())
    except InvalidToken:
        return True
    return False


def rotate(ciphertext: str) -> str:
    """Re-encrypt a stored value with the current key (readable with any configured key)."""
    if ciphertext == "":
        return ""
    try:
        return fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            "A stored broker credential cannot be decrypted with the configured keys."
        ) from exc


# Every Fernet token starts with version byte 0x80, which is "gAAAAA" in url-safe base64.
_FERNET_PREFIX = "gAAAAA"


class EncryptedTextField(models.TextField):
    """A text column holding a Fernet token; Python code only ever sees the plaintext.

    Not searchable or orderable by value, by design. Raw SQL and `dumpdata` see ciphertext
    only: dumpdata serialises through `value_to_string`, which we keep encrypted.
    """

    description = "Text encrypted at rest with MultiFernet"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None:
            return value
        return decrypt(value)

    def to_python(self, value: Any) -> Any:
        # `loaddata` hands back what `value_to_string` wrote: a token under one of our keys.
        if isinstance(value, str) and value.startswith(_FERNET_PREFIX):
            try:
                return fernet().decrypt(value.encode()).decode()
            except InvalidToken:
                return value
        return value

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None:
            return value
        return encrypt(str(value))

    def value_to_string(self, obj: models.Model) -> str:
        # Fixtures and dumps carry ciphertext, never the secret.
        return encrypt(str(self.value_from_object(obj) or ""))
