"""DKIM's fast path (issue 12, item 5) against dkimpy, on generated input: the relaxed header
and simple body canonicalisation, the header parse and the body hash (dot-stuffed as the
sender holds messages) give dkimpy's bytes, and messages of varied shape — folded and
repeated fields, raw 8bit and encoded-word subjects, Cyrillic bodies, lines that start with a
dot, trailing blank lines, no final CRLF — signed by the generic and the per-edition signer
verify with ``dkim.verify``; a divergence fails here before any receiver sees it."""

from __future__ import annotations

import base64
import hashlib

import dkim
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim.canonicalization import Relaxed, Simple
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masthead.newsletters.dkim import (
    Signer,
    body_hash,
    dns_record,
    header_fields,
    relaxed_header,
    simple_body_end,
)
from masthead.newsletters.rendering import dot_stuff

ED25519 = ed25519.Ed25519PrivateKey.generate()
RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)

# Header names dkimpy parses ([\x21-\x7e] but the colon), signed ones among them.
names = st.one_of(
    st.sampled_from([b"From", b"to", b"SUBJECT", b"Date", b"Message-ID", b"List-Unsubscribe",
                     b"List-Unsubscribe-Post", b"List-Id", b"Reply-To", b"X-Mailer",
                     b"Content-Type", b"MIME-Version"]),
    st.binary(min_size=1, max_size=12).map(
        lambda b: bytes(0x21 + c % 94 for c in b).replace(b":", b"x")),
)
# Value pieces: words, runs of spaces and tabs, folds, encoded words, raw UTF-8 (8bit).
pieces = st.sampled_from([
    b"a", b"Zz", b" ", b"  ", b"\t", b" \t ", b"\r\n ", b"\r\n\t", b"\r\n  \t", b",", b":",
    b"<https://example.org/u/tok?x=1>", b"=?utf-8?b?0JvRkdC0?=", "Лёд на реке".encode(),
    b"\xe2\x80\x9cq\xe2\x80\x9d", b"\x0b", b"\x0c", b"\r",
])


def folded_value():
    """A header value as it follows the colon: no line starts empty or ends the field."""
    return st.lists(pieces, max_size=12).map(b"".join).filter(
        lambda v: not v.endswith((b"\r\n ", b"\r\n\t", b"\r\n  \t", b"\r"))
        and b"\r\n\r\n" not in v and not v.startswith(b"\r\n"))


@given(name=names, value=folded_value())
def test_relaxed_header_is_dkimpys(name, value):
    ours = relaxed_header(name, value)
    # dkimpy's parse keeps the field's final CRLF in the value; with or without, the same.
    for theirs_value in (value, value + b"\r\n"):
        [(n, v)] = Relaxed.canonicalize_headers([(name, theirs_value)])
        assert ours == n + b":" + v


lines = st.sampled_from([
    b"", b"", b"a", b" ", b"\t", b".", b"..", b".hidden", b"text ", "Привет, мир".encode(),
    b"--=_boundary", b"\xd0", b"x\ry", b"end.",
])


def bodies():
    """Bodies of CRLF lines, trailing blank lines included, with or without a final CRLF."""
    return st.tuples(st.lists(lines, max_size=12), st.sampled_from([b"", b"\r\n",
                                                                    b"\r\n\r\n\r\n"])).map(
        lambda t: b"\r\n".join(t[0]) + t[1])


@given(prefix=st.binary(max_size=8), body=bodies())
def test_simple_body_is_dkimpys(prefix, body):
    data = prefix + body
    end, extra = simple_body_end(data, len(prefix))
    assert data[len(prefix):end] + extra == Simple.canonicalize_body(body)


@given(body=bodies())
def test_body_hash_undoes_dot_stuffing(body):
    message = b"From: a@example.org\r\n\r\n" + body
    start = message.index(b"\r\n\r\n") + 4
    expected = base64.b64encode(hashlib.sha256(Simple.canonicalize_body(body)).digest())
    assert body_hash(message, start, stuffed=False) == expected
    stuffed = dot_stuff(message)
    assert body_hash(stuffed, start, stuffed=True) == expected


@given(fields=st.lists(st.tuples(names, folded_value()), min_size=1, max_size=10))
def test_header_parse_is_dkimpys(fields):
    block = b"".join(n + b":" + v + b"\r\n" for n, v in fields)
    theirs, _ = dkim.rfc822_parse(block + b"\r\nbody\r\n")
    assert [(n, v + b"\r\n") for n, v in header_fields(block)] == [tuple(h) for h in theirs]


def lookup_for(key):
    record = dns_record(key).encode()

    def lookup(qname, timeout=5):
        return record if qname == b"lantern2026._domainkey.example.org." else None

    return lookup


def message_parts():
    """(own fields, shared fields, body) of a message as the sender builds them."""
    own = st.lists(st.sampled_from([
        (b"Date", b" Tue, 01 Dec 2026 21:00:00 -0000"),
        (b"To", b" reader1@example.org"),
        (b"Message-ID", b" <edition-1.7@example.org>"),
        (b"List-Unsubscribe", b" <https://example.org/u/tok/>,\r\n <mailto:u@example.org?x>"),
        (b"X-Recipient", b" 7"),
    ]), max_size=5)
    shared = st.lists(st.tuples(names, folded_value()), max_size=6).map(
        lambda f: [(b"From", b' "Lantern" <news@example.org>'), *f])
    return st.tuples(own, shared, bodies())


def block(fields):
    return b"".join(n + b":" + v + b"\r\n" for n, v in fields)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=message_parts(), use_rsa=st.booleans())
def test_signed_messages_verify_with_dkimpy(parts, use_rsa):
    own, shared, body = parts
    key = RSA if use_rsa else ED25519
    signer = Signer(key, b"lantern2026", b"example.org")
    head = block(shared) + b"\r\n"
    message = block(own) + head + body
    stuffed = dot_stuff(message)
    for sign in (signer.sign, signer.for_head(head).sign):
        delivered = sign(stuffed).replace(b"\r\n..", b"\r\n.")  # what the server unstuffs
        if delivered.startswith(b".."):
            delivered = delivered[1:]
        assert dkim.verify(delivered, dnsfunc=lookup_for(key)), delivered
        # A changed body, or a changed signed field, does not verify.
        assert not dkim.verify(delivered + b"x\r\n", dnsfunc=lookup_for(key))
        assert not dkim.verify(delivered.replace(b"news@", b"n3ws@"), dnsfunc=lookup_for(key))


@pytest.mark.parametrize("key", [ED25519, RSA], ids=["ed25519", "rsa"])
def test_prepared_signer_signs_every_shape(key):
    """The per-edition signer on messages it was not prepared for (another head, a signed
    field repeated across its own and the shared part) falls back to the generic path, which
    signs every instance; all verify."""
    signer = Signer(key, b"lantern2026", b"example.org")
    head = b'From: "Lantern" <news@example.org>\r\nSubject: Week\r\n\r\n'
    prepared = signer.for_head(head)
    body = "Здравствуйте!\r\n.dot\r\n\r\n\r\n".encode()
    cases = [
        b"To: a@example.org\r\n" + head + body,
        head + body,  # no own fields
        b"Subject: Another\r\nTo: a@example.org\r\n" + head + body,  # subject twice
        b"To: a@example.org\r\nTo: b@example.org\r\n" + head + body,
        b'From: "Other" <x@example.org>\r\nSubject: Other\r\n\r\n' + body,  # another head
    ]
    for message in cases:
        signed = prepared.sign(dot_stuff(message)).replace(b"\r\n..", b"\r\n.")
        assert dkim.verify(signed, dnsfunc=lookup_for(key)), signed
    # The repeated Subject is signed twice: adding, removing or swapping one breaks it.
    signed = prepared.sign(dot_stuff(cases[2])).replace(b"\r\n..", b"\r\n.")
    assert b"h=from:to:subject:subject;" in signed.replace(b"\r\n ", b" ").replace(b" ", b"")
    assert not dkim.verify(signed.replace(b"Subject: Another\r\n", b""),
                           dnsfunc=lookup_for(key))


def test_libsodium_and_openssl_sign_the_same_bytes():
    """Ed25519 is deterministic: the faster libsodium path (PyNaCl, in the test extras) makes
    exactly OpenSSL's signature."""
    signer = Signer(ED25519, b"lantern2026", b"example.org")
    assert signer.backend == "libsodium"
    for data in (b"\0" * 32, hashlib.sha256(b"edition").digest()):
        assert signer._sign(data) == ED25519.sign(data)
