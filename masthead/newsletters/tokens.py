"""Signed links instead of reader accounts: confirmation (expiring) and unsubscribe (lasting).

No database row backs a token: each is the subscription's id signed with ``SECRET_KEY``
(keys listed in ``SECRET_KEY_FALLBACKS`` keep old links working through a key rotation).
A confirmation token also carries part of the address's blind index, so it only confirms the
address it was sent to, and expires after ``MASTHEAD_NEWSLETTER_CONFIRM_DAYS``.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing

CONFIRM_SALT = "masthead.newsletters.confirm"
UNSUBSCRIBE_SALT = "masthead.newsletters.unsubscribe"

_unsubscribe_signer = None


def confirm_max_age() -> int:
    return settings.MASTHEAD_NEWSLETTER_CONFIRM_DAYS * 86400


def make_confirm_token(subscription) -> str:
    signer = signing.TimestampSigner(salt=CONFIRM_SALT)
    return signer.sign_object(
        {"s": subscription.pk, "e": subscription.subscriber.email_index[:12]}, compress=False
    )


def read_confirm_token(token: str) -> tuple[int, str]:
    """(subscription id, blind-index prefix); raises signing.BadSignature (or its subclass
    SignatureExpired) for a forged, damaged or expired token."""
    signer = signing.TimestampSigner(salt=CONFIRM_SALT)
    data = signer.unsign_object(token, max_age=confirm_max_age())
    if not isinstance(data, dict) or not isinstance(data.get("s"), int):
        raise signing.BadSignature("malformed token")
    return data["s"], str(data.get("e", ""))


def _signer() -> signing.Signer:
    global _unsubscribe_signer
    if _unsubscribe_signer is None or _unsubscribe_signer.key != settings.SECRET_KEY:
        _unsubscribe_signer = signing.Signer(salt=UNSUBSCRIBE_SALT, sep=".")
    return _unsubscribe_signer


def make_unsubscribe_token(subscription_id: int) -> str:
    return _signer().sign(str(subscription_id))


def read_unsubscribe_token(token: str) -> int:
    value = _signer().unsign(token)
    if not value.isdigit():
        raise signing.BadSignature("malformed token")
    return int(value)
