"""Personal data at rest: encrypted model fields and blind indexes for lookups.

Emails and names of donors and subscribers are stored encrypted with Fernet (AES-128-CBC +
HMAC-SHA256) under keys from ``MASTHEAD_DATA_KEYS``; the first key encrypts and all of them
decrypt, so keys can be rotated. Because ciphertext cannot be searched, a model that must find
a row by email also stores :func:`blind_index` of the normalised address: an HMAC keyed by a
key derived from the data key, so a stolen database alone reveals neither the addresses nor
a way to test guesses against them.

Without ``MASTHEAD_DATA_KEYS`` (development, the demo) a key is generated once into the data
folder; production refuses to start without one (see ``checks.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=1)
def _keys() -> tuple[bytes, ...]:
    raw = settings.MASTHEAD_DATA_KEYS
    if not raw:
        if settings.PRODUCTION:
            raise ImproperlyConfigured("MASTHEAD_DATA_KEYS must be set in production")
        path = settings.DATA_DIR / "data_key"
        if not path.exists():
            _create_key_file(path)
        raw = path.read_text().strip()
    return tuple(k.strip().encode() for k in raw.split(",") if k.strip())


def _create_key_file(path) -> None:
    """Write a new key to ``path`` unless one is there: written whole to a private temporary
    file, then linked into place, so a thread or process that reads concurrently never sees
    a half-written (empty) key and two first users never end up with different keys."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another first user won: use its key
    finally:
        tmp.unlink(missing_ok=True)


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in _keys()])


@lru_cache(maxsize=1)
def _index_key() -> bytes:
    # Derived from the first key; rotating that key means re-indexing (``masthead rekey``).
    return hashlib.sha256(b"masthead-blind-index:" + base64.urlsafe_b64decode(_keys()[0])).digest()


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError) as exc:
        raise ValueError("cannot decrypt: wrong MASTHEAD_DATA_KEYS?") from exc


def normalise_email(email: str) -> str:
    return email.strip().lower()


def blind_index(value: str) -> str:
    """A stable, keyed digest of ``value`` for equality lookups on encrypted data."""
    return hmac.new(_index_key(), value.encode(), hashlib.sha256).hexdigest()


def email_index(email: str) -> str:
    return blind_index(normalise_email(email))


class EncryptedTextField(models.TextField):
    """A text field stored encrypted; reads decrypt transparently. Not searchable."""

    description = "Text encrypted at rest"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(str(value))
