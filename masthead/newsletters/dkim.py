"""DKIM signatures on editions sent through the pipelined SMTP sender (self-hosted mail).

Configured from the environment (``docs/newsletters.md``): ``MASTHEAD_DKIM_PRIVATE_KEY`` (a
PEM key; ``\\n`` escapes allowed) or ``MASTHEAD_DKIM_PRIVATE_KEY_FILE``, an RSA (``rsa-sha256``,
RFC 6376) or Ed25519 (``ed25519-sha256``, RFC 8463) private key; ``MASTHEAD_DKIM_SELECTOR``;
``MASTHEAD_DKIM_DOMAIN`` (default: the newsletter sender's domain). Without a key nothing is
signed. :func:`dns_record` gives the TXT record to publish at ``<selector>._domainkey.<domain>``.

Signatures are ``c=relaxed/simple`` over From, To, Subject, Date, Message-ID, the List-*
headers, MIME-Version and Content-Type, and the whole body. dkimpy canonicalises the headers
and verifies (tests, ``manage.py check``); the signature itself is made by OpenSSL through
``cryptography``, because dkimpy's ``sign()`` does RSA in pure Python — about 9 ms a message on
a quiet core, a hundred times the cost of sending one — and re-parses the whole message.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from django.conf import settings
from dkim.canonicalization import Relaxed, Simple

SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
    b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type",
)
_HEADER_LINES = re.compile(rb"\r\n(?![ \t])")


class DKIMConfigError(ValueError):
    """The DKIM settings cannot sign (shown by ``manage.py check``)."""


def load_private_key(pem: bytes):
    """An RSA (≥ 1024 bits) or Ed25519 private key from PEM, or a clear DKIMConfigError."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise DKIMConfigError(
            f"not a readable PEM private key without a passphrase ({exc})".replace("\n", " ")
        ) from None
    except Exception as exc:  # noqa: BLE001 - e.g. an unsupported algorithm from OpenSSL
        raise DKIMConfigError(f"not a usable private key ({type(exc).__name__}: {exc})")
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 1024:
            raise DKIMConfigError(
                f"an RSA key of {key.key_size} bits: receivers ignore DKIM keys under 1024 "
                "bits (use 2048)"
            )
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise DKIMConfigError(f"a {type(key).__name__}: DKIM signs with RSA or Ed25519 keys only")


def configured_key_pem() -> bytes:
    """The configured key's PEM bytes, b"" when DKIM is off."""
    text = (settings.MASTHEAD_DKIM_PRIVATE_KEY or "").strip()
    if text:
        return text.replace("\\n", "\n").encode()
    path = settings.MASTHEAD_DKIM_PRIVATE_KEY_FILE
    if not path:
        return b""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DKIMConfigError(f"MASTHEAD_DKIM_PRIVATE_KEY_FILE cannot be read: {exc}") from None


@dataclass(frozen=True)
class Signer:
    key: object
    selector: bytes
    domain: bytes

    @property
    def algorithm(self) -> bytes:
        return b"ed25519-sha256" if isinstance(self.key, ed25519.Ed25519PrivateKey) else (
            b"rsa-sha256")

    def signature(self, message: bytes, *, stuffed: bool = True) -> bytes:
        """The ``DKIM-Signature:`` header (CRLF-terminated) for ``message`` (CRLF line ends;
        ``stuffed``: dot-stuffed for SMTP DATA, as the sender holds it)."""
        end = message.index(b"\r\n\r\n")
        body = message[end + 2:]
        if stuffed:
            body = body.replace(b"\r\n..", b"\r\n.")
        body_hash = base64.b64encode(
            hashlib.sha256(Simple.canonicalize_body(body[2:])).digest())
        fields = {}
        for line in _HEADER_LINES.split(message[:end]):
            name, _, value = line.partition(b":")
            fields.setdefault(name.strip().lower(), (name, value))
        names = [name for name in SIGNED_HEADERS if name in fields]
        tags = (
            b" v=1; a=" + self.algorithm + b"; c=relaxed/simple; d=" + self.domain
            + b"; s=" + self.selector + b"; t=" + str(int(time.time())).encode()
            + b";\r\n h=" + b":".join(names) + b";\r\n bh=" + body_hash + b";\r\n b="
        )
        canonical = Relaxed.canonicalize_headers(
            [fields[name] for name in names] + [(b"DKIM-Signature", tags)]
        )
        data = b"".join(name + b":" + value for name, value in canonical)[:-2]
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            signed = self.key.sign(hashlib.sha256(data).digest())
        else:
            signed = self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return b"DKIM-Signature:" + tags + base64.b64encode(signed) + b"\r\n"

    def sign(self, message: bytes, *, stuffed: bool = True) -> bytes:
        return self.signature(message, stuffed=stuffed) + message


def dns_record(key) -> str:
    """The TXT record for the public half of ``key``: ``v=DKIM1; k=…; p=…``."""
    public = key.public_key()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    der = public.public_bytes(serialization.Encoding.DER,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


@lru_cache(maxsize=8)
def _signer(pem: bytes, selector: str, domain: str) -> Signer:
    return Signer(load_private_key(pem), selector.encode("ascii"), domain.encode("idna"))


def signer_for(sender_domain: str) -> Signer | None:
    """The configured signer for mail from ``sender_domain``, or None when DKIM is off."""
    pem = configured_key_pem()
    if not pem:
        return None
    domain = settings.MASTHEAD_DKIM_DOMAIN or sender_domain
    return _signer(pem, settings.MASTHEAD_DKIM_SELECTOR, domain)


def check_settings() -> list[str]:
    """What is wrong with the DKIM settings, in words (empty: fine, or DKIM off)."""
    try:
        pem = configured_key_pem()
        if not pem:
            return []
        load_private_key(pem)
    except DKIMConfigError as exc:
        return [f"The DKIM private key is {exc}." if "cannot be read" not in str(exc)
                else f"{exc}."]
    problems = []
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*",
                        settings.MASTHEAD_DKIM_SELECTOR or ""):
        problems.append("MASTHEAD_DKIM_SELECTOR must be set to the selector of the DNS record "
                        "(letters, digits, hyphens, dots), e.g. 'lantern2026'.")
    return problems
