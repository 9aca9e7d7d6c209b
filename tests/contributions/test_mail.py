"""Receipts through a real SMTP server (aiosmtpd): headers, both parts, no injection."""

from __future__ import annotations

import email
import email.policy
import socket

import pytest
from aiosmtpd.controller import Controller

from masthead.contributions import giving
from masthead.contributions.models import Donor
from masthead.contributions.providers import get_provider

from .standins import deliver

pytestmark = pytest.mark.django_db


class Collector:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's API
        self.messages.append((envelope.rcpt_tos, envelope.content))
        return "250 OK"


@pytest.fixture
def smtp(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    yield collector
    controller.stop()


def test_receipt_is_a_careful_email(site, on_commit, smtp):
    contribution, _ = giving.start_contribution(
        frequency="annual", amount=5000, currency="GBP", provider_key="sandbox"
    )
    with on_commit():
        signed = get_provider("sandbox").complete(
            contribution, "smtp@example.org", "Sam\r\nBcc: x@evil"
        )
        deliver(signed)
    [(rcpt, raw)] = smtp.messages
    assert rcpt == ["smtp@example.org"]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == "Receipt for your contribution — The Lantern"
    assert message["Date"] and message["Message-ID"]
    assert message["Bcc"] is None and "evil" not in str(message["To"])
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "£50" in text and "£50" in html and "Annual" in text
    assert "/support/manage/" in text and "/support/manage/" in html
    assert len(raw) < 20_000


def test_a_provider_address_that_is_not_an_address_is_never_mailed(site, on_commit, smtp):
    contribution, _ = giving.start_contribution(
        frequency="once", amount=500, currency="USD", provider_key="sandbox"
    )
    provider = get_provider("sandbox")
    with on_commit():
        signed = provider.webhook(
            "checkout.completed",
            {
                "contribution_id": contribution.pk,
                "payment_id": "sbx_pay_x",
                "email": "a@example.org\r\nBcc: victim@example.org",
            },
        )
        deliver(signed)
    contribution.refresh_from_db()
    assert contribution.status == "succeeded" and contribution.donor is None
    assert Donor.objects.count() == 0 and smtp.messages == []
