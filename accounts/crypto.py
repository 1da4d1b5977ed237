"""Encryption of mail credentials at rest.

Keys come from ``settings.CREDENTIALS_KEYS`` (Fernet keys). The first key
encrypts; every key decrypts, so a key is rotated by putting a new one in
front and running ``manage.py rotate_credentials``.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialError(Exception):
    """A stored credential cannot be decrypted with the configured keys."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FACTEUR_CREDENTIALS_KEYS must hold url-safe base64 Fernet keys."
        ) from exc


def _current() -> MultiFernet:
    return _fernet(tuple(settings.CREDENTIALS_KEYS))


def generate_key() -> str:
    return Fernet.generate_key().decode()


def encrypt(secret: str) -> str:
    return _current().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialError(
            "stored credential cannot be decrypted with the configured keys"
        ) from exc


def is_current(token: str) -> bool:
    """Whether the first (current) key encrypted ``token``."""
    try:
        Fernet(settings.CREDENTIALS_KEYS[0].encode()).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def rotate(token: str) -> str:
    """Re-encrypt ``token`` with the first key."""
    try:
        return _current().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialError(
            "stored credential cannot be decrypted with the configured keys"
        ) from exc
