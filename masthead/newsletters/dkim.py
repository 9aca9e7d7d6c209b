"""DKIM signatures on editions sent through the pipelined SMTP sender (self-hosted mail).

Configured from the environment (``docs/newsletters.md``): ``MASTHEAD_DKIM_PRIVATE_KEY`` (a
PEM key; ``\\n`` escapes allowed) or ``MASTHEAD_DKIM_PRIVATE_KEY_FILE``, an RSA (``rsa-sha256``,
RFC 6376) or Ed25519 (``ed25519-sha256``, RFC 8463) private key — or both, one after the
other, to sign twice (:class:`DualSigner`); ``MASTHEAD_DKIM_SELECTOR`` (one per key,
comma-separated); ``MASTHEAD_DKIM_DOMAIN`` (default: the newsletter sender's domain). Without
a key nothing is signed. :func:`dns_record` gives the TXT record to publish at
``<selector>._domainkey.<domain>``.

Signatures are ``c=relaxed/simple`` over From, To, Subject, Date, Message-ID, Reply-To, the
List-* headers (List-Unsubscribe and List-Unsubscribe-Post must be signed, RFC 8058),
MIME-Version and Content-Type, and the whole body.

Cost: one signature per message is unavoidable (the List-Unsubscribe URL is per recipient),
everything else is made cheap. :meth:`Signer.for_head` prepares, once per edition, the
header fields that every recipient's message shares (``MessageTemplate.head``): their
canonical form and a SHA-256 state that has hashed them (they come first in ``h=``, so each
message only copies the state and adds its few own fields). Canonicalisation is done here
by small functions (:func:`relaxed_header`, :func:`simple_body_end`) rather than dkimpy's
generic parser: ~20 µs a message instead of ~200; ``tests/newsletters/test_dkim_canonical.py``
compares them with dkimpy's on generated messages, and every signature in the tests is
checked by dkimpy's ``dkim.verify``. The body is hashed once per message (it holds the
recipient's unsubscribe URL, so no two bodies are alike), straight from the bytes the sender
writes (undoing SMTP dot-stuffing only where a line starts with a dot). The signature is made
by OpenSSL through ``cryptography`` (dkimpy's ``sign()`` does RSA in pure Python, ~9 ms a
message): Ed25519 ~40–60 µs, RSA-2048 ~0.9 ms on this machine's loaded cores.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from django.conf import settings

try:  # optional: a faster Ed25519 (see Signer)
    from nacl.bindings import crypto_sign as _sodium_sign
    from nacl.bindings import crypto_sign_seed_keypair as _sodium_keypair
except ImportError:  # pragma: no cover - PyNaCl not installed: OpenSSL signs
    _sodium_sign = _sodium_keypair = None

SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
    b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type",
)
_SIGNED = frozenset(SIGNED_HEADERS)
_WSP_RUN = re.compile(rb"[\t ]+")
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")  # printable, no space or colon


class DKIMConfigError(ValueError):
    """The DKIM settings cannot sign (shown by ``manage.py check``)."""


# --- Canonicalisation (RFC 6376 3.4), checked against dkimpy's --------------------------------


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """One header field in "relaxed" form, CRLF-terminated: the name lower-cased, the value
    unfolded, runs of spaces and tabs made one space, and stripped (RFC 6376 3.4.2).
    ``value``: everything after the colon, folding included. Same bytes as dkimpy's
    ``Relaxed.canonicalize_headers`` (which removes ``\\r?\\n`` when unfolding)."""
    if b"\n" in value:
        value = value.replace(b"\r\n", b"").replace(b"\n", b"")
    if b"\t" in value or b"  " in value:
        value = _WSP_RUN.sub(b" ", value)
    return name.lower().rstrip() + b":" + value.strip() + b"\r\n"


def simple_body_end(data: bytes, start: int = 0) -> tuple[int, bytes]:
    """The "simple" canonical form (RFC 6376 3.4.3) of the body ``data[start:]``, as (where
    it ends in ``data``, bytes to add): empty lines at its end ignored, a missing final CRLF
    added, without copying the body. Same as dkimpy's ``Simple.canonicalize_body``:
    ``data[start:end] + extra``."""
    end = len(data)
    if not data.endswith(b"\r\n", start):
        return end, b"\r\n"
    while data.endswith(b"\r\n\r\n", start, end):
        end -= 2
    return end, b""


def header_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """(name, value) of each field in a CRLF header block (``value``: after the colon, with
    its folding; no final CRLF). A line that is no field (no colon) ends the parse with a
    clear error, as a message we cannot sign correctly must not go out signed wrongly."""
    fields: list[tuple[bytes, bytes]] = []
    for line in block.split(b"\r\n"):
        if not line:
            continue
        if line[0] in (0x20, 0x09):
            if not fields:
                raise ValueError("a header block that starts with a continuation line")
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
            continue
        name, colon, value = line.partition(b":")
        if not colon or not (name.replace(b"-", b"").isalnum() or _FIELD_NAME.fullmatch(name)):
            raise ValueError(f"not a header field: {line[:80]!r}")
        fields.append((name, value))
    return fields


def body_hash(message: bytes, start: int, stuffed: bool = True) -> bytes:
    """``bh=``: base64 SHA-256 of the simple-canonical body of ``message``, which starts at
    ``start`` (after the blank line). ``stuffed``: the message is dot-stuffed for SMTP DATA (a
    line that starts with "." was doubled), which is undone first — with no copy of the body
    when no line starts with a dot, the usual case."""
    data = message
    if stuffed and (message.startswith(b"..", start) or message.find(b"\r\n..", start) >= 0):
        data, start = message[start - 2:].replace(b"\r\n..", b"\r\n."), 2
    end, extra = simple_body_end(data, start)
    state = hashlib.sha256(memoryview(data)[start:end])
    if extra:
        state.update(extra)
    return base64.b64encode(state.digest())


def _signed_fields(fields: list[tuple[bytes, bytes]]) -> tuple[list[bytes], bytes]:
    """The ``h=`` names and the canonical bytes to hash for ``fields``: each signed field
    present, every instance of a repeated one, bottom-up (the order verifiers select them in,
    RFC 6376 5.4.2)."""
    by_name: dict[bytes, list[bytes]] = {}
    for name, value in fields:
        key = name.lower()
        if key in _SIGNED:
            by_name.setdefault(key, []).append(relaxed_header(name, value))
    names, canonical = [], []
    for name in SIGNED_HEADERS:
        for line in reversed(by_name.get(name, ())):
            names.append(name)
            canonical.append(line)
    return names, b"".join(canonical)


# --- Keys ---------------------------------------------------------------------------------------


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


# --- Signing ------------------------------------------------------------------------------------


class Signer:
    """Signs with one key for one selector and domain. :meth:`sign` takes any message;
    :meth:`for_head` gives the faster signer for the messages of one edition."""

    def __init__(self, key, selector: bytes, domain: bytes):
        self.key = key
        self.selector = selector
        self.domain = domain
        self.ed25519 = isinstance(key, ed25519.Ed25519PrivateKey)
        self.algorithm = b"ed25519-sha256" if self.ed25519 else b"rsa-sha256"
        self._tags = (b" v=1; a=" + self.algorithm + b"; c=relaxed/simple; d=" + domain
                      + b"; s=" + selector + b"; t=")
        # The same tags in relaxed form, as hashed (with an empty b=); what each message adds
        # after "t=" (digits, names, base64) has no spaces to squeeze.
        self._canonical_tags = relaxed_header(b"DKIM-Signature", self._tags)[:-2]
        self._time = (0, b"")
        self.backend = "OpenSSL"
        if self.ed25519:
            self._sign = key.sign  # RFC 8463: Ed25519 over the SHA-256 hash
            if _sodium_sign is not None:
                # libsodium (PyNaCl) signs Ed25519 ~30 % faster than OpenSSL; Ed25519 is
                # deterministic, so the signature is the same bytes either way (tested).
                seed = key.private_bytes(serialization.Encoding.Raw,
                                         serialization.PrivateFormat.Raw,
                                         serialization.NoEncryption())
                secret = _sodium_keypair(seed)[1]
                self._sign = lambda digest: _sodium_sign(digest, secret)[:64]
                self.backend = "libsodium"
        else:
            pkcs1, prehashed = padding.PKCS1v15(), Prehashed(hashes.SHA256())
            self._sign = lambda digest: key.sign(digest, pkcs1, prehashed)

    def _timestamp(self) -> bytes:
        now = int(time.time())
        if self._time[0] != now:
            self._time = (now, str(now).encode())
        return self._time[1]

    def _finish(self, state, names: bytes, bh: bytes) -> bytes:
        """The ``DKIM-Signature:`` field (CRLF-terminated), ``state``: a SHA-256 that has
        hashed the canonical signed fields named in ``names`` (``h=``), in that order."""
        now = self._timestamp()
        # The signature field itself, relaxed, with an empty b= and no final CRLF (RFC 6376
        # 3.7) — what relaxed_header(b"DKIM-Signature", tags)[:-2] gives, built directly.
        state.update(self._canonical_tags + now + b"; h=" + names + b"; bh=" + bh + b"; b=")
        tags = self._tags + now + b";\r\n h=" + names + b";\r\n bh=" + bh + b";\r\n b="
        signed = self._sign(state.digest())
        return b"DKIM-Signature:" + tags + base64.b64encode(signed) + b"\r\n"

    def signature(self, message: bytes, *, stuffed: bool = True) -> bytes:
        """The ``DKIM-Signature:`` field (CRLF-terminated) for ``message`` (CRLF line ends;
        ``stuffed``: dot-stuffed for SMTP DATA, as the sender holds it). Each signed field
        present is signed, every instance of a repeated one (bottom-up, as verifiers pick
        them)."""
        end = message.find(b"\r\n\r\n")
        if end < 0:
            raise ValueError("a message without the blank line that ends its header")
        names, canonical = _signed_fields(header_fields(message[:end]))
        state = hashlib.sha256(canonical)
        return self._finish(state, b":".join(names), body_hash(message, end + 4, stuffed))

    def sign(self, message: bytes, *, stuffed: bool = True) -> bytes:
        return self.signature(message, stuffed=stuffed) + message

    def for_head(self, head: bytes) -> PreparedSigner:
        """A signer for messages whose header ends with ``head`` (the fields every
        recipient's message shares, and the blank line), e.g. ``MessageTemplate.head``."""
        return PreparedSigner(self, head)


class PreparedSigner:
    """Signs the messages of one edition: ``<the recipient's own fields><head><body>``.

    The shared fields are canonicalised and hashed once, here, and signed first (``h=`` lists
    them first); each message adds only its own fields (Date, To, Message-ID,
    List-Unsubscribe) and the body. A message of another shape is signed by the generic
    :meth:`Signer.signature`, so this is never wrong, only sometimes not faster."""

    def __init__(self, signer: Signer, head: bytes):
        if not head.endswith(b"\r\n\r\n") or b"\r\n\r\n" in head[:-4]:
            raise ValueError("the shared head must be header fields and the blank line")
        self.signer = signer
        self.head = head
        self.shared_names, canonical = _signed_fields(header_fields(head[:-4]))
        self.state = hashlib.sha256(canonical)
        self._shared = frozenset(self.shared_names)
        self._names: dict[tuple[bytes, ...], bytes] = {}

    def signature(self, message: bytes, *, stuffed: bool = True) -> bytes:
        head = self.head
        start = message.find(b"\r\n\r\n") + 4
        at = start - len(head)
        if start < 4 or at < 0 or not message.startswith(head, at) or (
                at and message[at - 2:at] != b"\r\n"):
            return self.signer.signature(message, stuffed=stuffed)
        own = []
        own_names = []
        for name, value in header_fields(message[:at]) if at else ():
            key = name.lower()
            if key in _SIGNED:
                if key in self._shared:  # a signed field repeated: the generic path signs both
                    return self.signer.signature(message, stuffed=stuffed)
                own_names.append(key)
                own.append(relaxed_header(name, value))
        if len(set(own_names)) != len(own_names):
            return self.signer.signature(message, stuffed=stuffed)
        names_key = tuple(own_names)
        names = self._names.get(names_key)
        if names is None:
            names = self._names[names_key] = b":".join([*self.shared_names, *own_names])
        state = self.state.copy()
        state.update(b"".join(own))
        return self.signer._finish(state, names, body_hash(message, start, stuffed))

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


class DualSigner:
    """Signs with two keys or more, one DKIM-Signature each (RFC 8463 section 1: an
    Ed25519 signature beside an RSA one, for receivers that check only RSA — most do today)."""

    def __init__(self, signers: list[Signer]):
        self.signers = signers

    def for_head(self, head: bytes) -> DualSigner:
        return DualSigner([signer.for_head(head) for signer in self.signers])

    def sign(self, message: bytes, *, stuffed: bool = True) -> bytes:
        return b"".join(s.signature(message, stuffed=stuffed) for s in self.signers) + message


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.S)
_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*")


def configured_keys() -> list[tuple[bytes, str]]:
    """(PEM, selector) of each configured key; [] when DKIM is off. The key setting may hold
    several PEM keys (e.g. RSA and Ed25519, to sign twice) and ``MASTHEAD_DKIM_SELECTOR`` then
    names their selectors, comma-separated, in the same order."""
    pem = configured_key_pem()
    if not pem:
        return []
    pems = [match.group(0) for match in _PEM_BLOCK.finditer(pem)] or [pem]
    selectors = [s.strip() for s in (settings.MASTHEAD_DKIM_SELECTOR or "").split(",")]
    if len(selectors) != len(pems):
        raise DKIMConfigError(
            f"{len(pems)} DKIM private keys and {len(selectors)} selectors in "
            "MASTHEAD_DKIM_SELECTOR: give one selector per key, comma-separated, in the "
            "keys' order")
    return list(zip(pems, selectors, strict=True))


@lru_cache(maxsize=8)
def _signer(pem: bytes, selector: str, domain: str) -> Signer:
    return Signer(load_private_key(pem), selector.encode("ascii"), domain.encode("idna"))


def signer_for(sender_domain: str) -> Signer | DualSigner | None:
    """The configured signer for mail from ``sender_domain``, or None when DKIM is off."""
    keys = configured_keys()
    if not keys:
        return None
    domain = settings.MASTHEAD_DKIM_DOMAIN or sender_domain
    signers = [_signer(pem, selector, domain) for pem, selector in keys]
    return signers[0] if len(signers) == 1 else DualSigner(signers)


def check_settings() -> list[str]:
    """What is wrong with the DKIM settings, in words (empty: fine, or DKIM off)."""
    try:
        pem = configured_key_pem()
        if not pem:
            return []
        pems = [match.group(0) for match in _PEM_BLOCK.finditer(pem)] or [pem]
        for one in pems:
            load_private_key(one)
    except DKIMConfigError as exc:
        return [f"The DKIM private key is {exc}." if "cannot be read" not in str(exc)
                else f"{exc}."]
    selectors = [s.strip() for s in (settings.MASTHEAD_DKIM_SELECTOR or "").split(",")]
    if not all(_SELECTOR.fullmatch(selector) for selector in selectors):
        return ["MASTHEAD_DKIM_SELECTOR must be set to the selector of the DNS record "
                "(letters, digits, hyphens, dots), e.g. 'lantern2026' — with two keys, two "
                "selectors, comma-separated, e.g. 'rsa2026,ed2026'."]
    try:
        configured_keys()
    except DKIMConfigError as exc:
        return [f"{exc}."]
    return []
