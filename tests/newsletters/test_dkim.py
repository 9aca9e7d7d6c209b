"""DKIM for self-hosted SMTP (issue 12, item 5): editions delivered to a real SMTP server
(aiosmtpd) carry a DKIM signature that dkimpy verifies against the public key served by a
stand-in DNS lookup — RSA and Ed25519, 8bit bodies included — and a changed message fails;
``manage.py check`` refuses a malformed key."""

from __future__ import annotations

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from masthead.newsletters.delivery import delivery_run, delivery_start
from masthead.newsletters.dkim import _signer, dns_record, load_private_key

from .conftest import add_subscribers

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
        settings.MASTHEAD_DKIM_PRIVATE_KEY = pem_of(key).replace("\n", "\\n")  # as in an env
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
