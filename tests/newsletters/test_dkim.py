"""DKIM for self-hosted SMTP (issue 12, item 5): editions delivered to a real SMTP server
(aiosmtpd) carry a DKIM signature that dkimpy verifies against the public key served by a
stand-in DNS lookup — RSA and Ed25519, 8bit bodies included — and a changed message fails;
``manage.py check`` refuses a malformed key."""

from __future__ import annotations

import dkim
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from masthead.newsletters.delivery import delivery_run, delivery_start
from masthead.newsletters.dkim import _signer, dns_record, load_private_key
from masthead.newsletters.rendering import GREETING, UNSUBSCRIBE, MessageTemplate, Recipient
from masthead.newsletters.senders import SMTPPipelineSender

from .conftest import RecordingHandler, add_subscribers, free_port

pytestmark = pytest.mark.django_db


def pem_of(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def dns_for(key, name=b"lantern2026._domainkey.localhost."):
    """A DNS TXT lookup that knows one record: the key's public half at ``name``."""
    record = dns_record(key).encode()

    def lookup(qname, timeout=5):
        return record if qname == name else None

    return lookup


@pytest.fixture
def dkim_settings(settings):
    def configure(key, selector="lantern2026", domain=""):
        _signer.cache_clear()
        keys = key if isinstance(key, list) else [key]
        pems = "".join(pem_of(one) for one in keys)
        settings.MASTHEAD_DKIM_PRIVATE_KEY = pems.replace("\n", "\\n")  # as in an env
        settings.MASTHEAD_DKIM_PRIVATE_KEY_FILE = ""
        settings.MASTHEAD_DKIM_SELECTOR = selector
        settings.MASTHEAD_DKIM_DOMAIN = domain

    yield configure
    _signer.cache_clear()


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_delivered_editions_carry_a_signature_that_verifies(
        kind, rsa_key, dkim_settings, smtp_server, russian_newsletter, newsletter,
        edition_factory):
    key = rsa_key if kind == "rsa" else ed25519.Ed25519PrivateKey.generate()
    dkim_settings(key)
    server = smtp_server()  # offers 8BITMIME: the Russian bodies go 8bit
    add_subscribers(russian_newsletter, 3, names=True)
    add_subscribers(newsletter, 2, prefix="en")
    for letter in (russian_newsletter, newsletter):
        delivery = delivery_start(edition_factory(letter), enqueue=False)
        assert delivery_run(delivery.pk).sent == delivery.total
    assert len(server.messages) == 5
    lookup = dns_for(key)
    eightbit = 0
    for _, data in server.messages:
        assert data.startswith(b"DKIM-Signature:")
        assert dkim.verify(data, dnsfunc=lookup), data[:600]
        eightbit += b"Content-Transfer-Encoding: 8bit" in data
        # Any change to what was signed breaks it: the body, or the recipient.
        assert not dkim.verify(data.replace(b"/unsubscribe/", b"/unsubscrib3/", 1),
                               dnsfunc=lookup)
        assert not dkim.verify(data.replace(b"To: ", b"To: x", 1), dnsfunc=lookup)
    assert eightbit >= 3  # the Russian ones at least (English has “quotes” and ·)
    # Another key of the same kind, published under the same name, does not vouch for it.
    other = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa"
             else ed25519.Ed25519PrivateKey.generate())
    assert not dkim.verify(server.messages[0][1], dnsfunc=dns_for(other))


class SevenBitHandler(RecordingHandler):
    """A server that offers neither 8BITMIME nor PIPELINING: bodies go quoted-printable or
    base64, one command at a time."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        responses = await super().handle_EHLO(server, session, envelope, hostname, responses)
        return [line for line in responses if "8BITMIME" not in line]


@pytest.fixture
def seven_bit_server(settings):
    handler = SevenBitHandler(pipelining=False)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER = False, ""
    yield handler
    controller.stop()


LONG_SUBJECT = ("Лёд на реке, открытые книги городского совета и последняя типография "
                "долины — выпуск номер сорок два")
DOT_INTRO = ("<p>.NET, .env and other names that start with a dot.</p>"
             "<p>Второй абзац: «кавычки», тире — и ёлки.</p>")


@pytest.mark.parametrize("kind,server_kind", [("ed25519", "8bit pipelined"),
                                              ("ed25519", "7bit one by one"),
                                              ("rsa", "7bit one by one")])
def test_folded_subjects_dotted_lines_and_7bit_bodies_verify(
        kind, server_kind, rsa_key, dkim_settings, smtp_server, seven_bit_server,
        russian_newsletter, edition_factory):
    """What the fast path must get right, delivered for real: a long Cyrillic subject (folded
    encoded words), Reply-To, names in the greeting, a text line that starts with a dot
    (dot-stuffed on the wire), Cyrillic bodies 8bit or, to a server without 8BITMIME,
    quoted-printable/base64, over the pipelined and the one-by-one paths."""
    key = rsa_key if kind == "rsa" else ed25519.Ed25519PrivateKey.generate()
    dkim_settings(key)
    server = smtp_server() if server_kind == "8bit pipelined" else seven_bit_server
    russian_newsletter.reply_to = "editors@example.org"
    russian_newsletter.save()
    add_subscribers(russian_newsletter, 3, names=True)
    edition = edition_factory(russian_newsletter, subject=LONG_SUBJECT)
    edition.intro = DOT_INTRO
    edition.save()
    delivery = delivery_start(edition, enqueue=False)
    assert delivery_run(delivery.pk).sent == 3
    lookup = dns_for(key)
    for _, data in server.messages:
        header = data[:data.index(b"\r\n\r\n")]
        assert b"Subject: =?utf-8?" in header and b"?=\r\n =?utf-8?" in header  # folded
        if server_kind == "8bit pipelined":
            assert b"Content-Transfer-Encoding: 8bit" in data
            assert b"\r\n.NET, .env" in data  # a line that starts with a dot, unstuffed
        else:
            assert b"Content-Transfer-Encoding: 8bit" not in data
            assert b"Content-Transfer-Encoding: base64" in data
        signature = header[:header.index(b"\r\nDate:")].replace(b"\r\n ", b" ")
        for name in (b"reply-to", b"subject", b"list-unsubscribe", b"list-unsubscribe-post",
                     b"to", b"from", b"content-type"):
            assert name in signature.split(b"h=")[1].split(b";")[0].split(b":"), name
        assert dkim.verify(data, dnsfunc=lookup), data[:800]
        assert not dkim.verify(data.replace(b"--\r\n", b"--\r\n\r\nx", 1), dnsfunc=lookup)
        assert not dkim.verify(data.replace(b"One-Click", b"One-Clack", 1), dnsfunc=lookup)


def test_the_sender_signs_what_the_generic_signer_signs(rsa_key, dkim_settings, newsletter):
    """The sender's per-edition signer (shared fields hashed once) and the generic one give
    signatures over the same bytes: both verify, on the message as the sender writes it."""
    key = ed25519.Ed25519PrivateKey.generate()
    dkim_settings(key)
    newsletter.reply_to = "editors@example.org"
    template = MessageTemplate(newsletter=newsletter, subject=LONG_SUBJECT,
                               html_body=f"<p>{GREETING}</p>\n<p>.dot</p>\n{UNSUBSCRIBE}\n\n",
                               text_body=f"{GREETING}\n.dot\n{UNSUBSCRIBE}\n\n\n",
                               message_id_prefix="edition-9")
    sender = SMTPPipelineSender(template)
    generic = _signer.__wrapped__(pem_of(key).encode(), "lantern2026", "localhost")
    for eightbit in (True, False):
        raw = template.raw(Recipient(1, 2, "reader@example.org", "Ёжик", "tok-2"), eightbit)
        fast, slow = sender.signer.sign(raw), generic.sign(raw)
        # The sender took the fast path: the shared fields first in h=, its own ones last.
        assert b"content-type:date:to:message-id:list-unsubscribe;" in fast
        assert b"h=from:to:subject:date:message-id:reply-to:list-id:" in slow
        for signed in (fast, slow):
            delivered = signed.replace(b"\r\n..", b"\r\n.")
            assert dkim.verify(delivered, dnsfunc=dns_for(key)), delivered[:800]


def test_rsa_and_ed25519_sign_twice(rsa_key, dkim_settings, smtp_server, russian_newsletter,
                                    edition_factory, tmp_path, settings):
    """Two keys (RSA and Ed25519, RFC 8463's advice while receivers check only RSA) give two
    DKIM-Signature fields, each verifying against its own selector's record; a key file
    works as the variable does."""
    ed = ed25519.Ed25519PrivateKey.generate()
    dkim_settings([rsa_key, ed], selector="rsa2026, ed2026")
    key_file = tmp_path / "dkim.pem"
    key_file.write_text(pem_of(rsa_key) + pem_of(ed))
    settings.MASTHEAD_DKIM_PRIVATE_KEY, settings.MASTHEAD_DKIM_PRIVATE_KEY_FILE = "", str(key_file)
    call_command("check")
    server = smtp_server()
    add_subscribers(russian_newsletter, 2, names=True)
    delivery = delivery_start(edition_factory(russian_newsletter), enqueue=False)
    assert delivery_run(delivery.pk).sent == 2
    records = {b"rsa2026._domainkey.localhost.": dns_record(rsa_key).encode(),
               b"ed2026._domainkey.localhost.": dns_record(ed).encode()}

    def lookup(qname, timeout=5):
        return records.get(qname)

    for _, data in server.messages:
        assert data.count(b"DKIM-Signature:") == 2
        assert b"a=rsa-sha256" in data and b"a=ed25519-sha256" in data
        checker = dkim.DKIM(data)
        assert checker.verify(idx=0, dnsfunc=lookup) and checker.verify(idx=1, dnsfunc=lookup)
        changed = dkim.DKIM(data.replace(b"One-Click", b"One-Clack", 1))
        assert not changed.verify(idx=0, dnsfunc=lookup)
        assert not changed.verify(idx=1, dnsfunc=lookup)
    # One selector for two keys is refused by the check, with what to do.
    settings.MASTHEAD_DKIM_SELECTOR = "rsa2026"
    with pytest.raises(SystemCheckError, match="one selector per key"):
        call_command("check")


def test_no_key_no_signature(smtp_server, newsletter, edition_factory, settings):
    settings.MASTHEAD_DKIM_PRIVATE_KEY = settings.MASTHEAD_DKIM_PRIVATE_KEY_FILE = ""
    server = smtp_server()
    add_subscribers(newsletter, 1)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    delivery_run(delivery.pk)
    assert b"DKIM-Signature" not in server.messages[0][1]


def test_check_refuses_a_malformed_key(settings, rsa_key, tmp_path):
    _signer.cache_clear()
    settings.MASTHEAD_DKIM_SELECTOR = "lantern2026"
    settings.MASTHEAD_DKIM_PRIVATE_KEY_FILE = ""
    truncated = pem_of(rsa_key)[:300] + "\n-----END PRIVATE KEY-----\n"
    for bad, words in [
        (truncated, "not a readable PEM private key"),
        ("lantern", "not a readable PEM private key"),
        (pem_of(ec.generate_private_key(ec.SECP256R1())), "RSA or Ed25519 keys only"),
    ]:
        settings.MASTHEAD_DKIM_PRIVATE_KEY = bad
        with pytest.raises(SystemCheckError) as caught:
            call_command("check")
        assert "newsletters.E004" in str(caught.value) and words in str(caught.value)
    settings.MASTHEAD_DKIM_PRIVATE_KEY = ""
    settings.MASTHEAD_DKIM_PRIVATE_KEY_FILE = str(tmp_path / "missing.pem")
    with pytest.raises(SystemCheckError, match="cannot be read"):
        call_command("check")
    settings.MASTHEAD_DKIM_PRIVATE_KEY_FILE = ""
    settings.MASTHEAD_DKIM_PRIVATE_KEY = pem_of(rsa_key)
    settings.MASTHEAD_DKIM_SELECTOR = ""
    with pytest.raises(SystemCheckError, match="MASTHEAD_DKIM_SELECTOR"):
        call_command("check")
    settings.MASTHEAD_DKIM_SELECTOR = "lantern2026"
    call_command("check")  # a good key and selector: no error
    assert load_private_key(pem_of(rsa_key).encode()).key_size == 2048
