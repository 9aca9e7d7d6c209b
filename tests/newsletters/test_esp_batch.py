"""ESP batch sending (issue 12, item 4): an edition goes to an ESP in batches, one API call
for many recipients, through django-anymail's real SendGrid backend and a local HTTP
stand-in of SendGrid's API; each recipient still gets their own greeting, unsubscribe link,
List-Unsubscribe and Message-ID, and the ledger keeps each one's outcome. A call refused as a
whole, or failed, loses nobody and sends nobody twice."""

from __future__ import annotations

import collections
import html

import pytest
from django.core import mail

from masthead.newsletters.delivery import delivery_run, delivery_start
from masthead.newsletters.models import (
    DeliveryRecipient,
    SentMessage,
    Subscriber,
    message_id_key,
)
from masthead.newsletters.rendering import GREETING, UNSUBSCRIBE
from masthead.newsletters.tokens import read_unsubscribe_token

from . import esp
from .conftest import add_subscribers, states, subscription_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def sendgrid(settings):
    standin = esp.SendGridStandIn()
    esp.sendgrid_settings(settings, standin.start())
    settings.MASTHEAD_NEWSLETTER_RETRY_SECONDS = 0
    settings.MASTHEAD_NEWSLETTER_CONNECTIONS = 2
    yield standin
    standin.stop()



def test_an_edition_goes_out_in_batches_each_recipient_personalised(
        sendgrid, settings, newsletter, edition_factory):
    settings.MASTHEAD_NEWSLETTER_ESP_BATCH = 4
    newsletter.greeting = "Hello {name},"
    newsletter.save()
    addresses = add_subscribers(newsletter, 11, names=True)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    report = delivery_run(delivery.pk)
    assert report.finished and report.sent == 11
    assert states(delivery) == {"sent": 11}
    # Batches, not one call per recipient: at most 4 in a call, 11 in all.
    assert sum(sendgrid.call_sizes) == 11 and max(sendgrid.call_sizes) <= 4
    assert len(sendgrid.call_sizes) <= 4
    by_address = {d.to: d for d in sendgrid.delivered}
    assert sorted(by_address) == sorted(addresses)
    tokens = set()
    for index, address in enumerate(addresses):
        message = by_address[address]
        subscription = subscription_of(address)
        assert f"Hello Name{index}," in message.text
        assert html.escape(f"Hello Name{index},") in message.html
        for part in (message.text, message.html):
            assert UNSUBSCRIBE not in part and GREETING not in part and "%%" not in part
        url = next(w for w in message.text.split() if "/unsubscribe/" in w)
        token = url.rstrip("/").rsplit("/", 1)[1]
        assert read_unsubscribe_token(token) == subscription.pk
        assert url in message.html
        assert message.headers["List-Unsubscribe"].startswith(f"<{url}>, <mailto:")
        assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.headers["Message-ID"] == f"<edition-{delivery.edition_id}." \
            f"{subscription.pk}@127.0.0.1>"
        tokens.add(token)
        # The provider's own per-recipient id is kept, so its bounce events can be matched.
        sent = SentMessage.objects.get(subscription=subscription)
        assert sent.esp_message_id == message.custom_args["anymail_id"]
        assert sent.message_id == message_id_key(message.headers["Message-ID"])
    assert len(tokens) == 11


def test_a_failed_batch_call_is_retried_and_nobody_is_lost_or_sent_twice(
        sendgrid, settings, newsletter, edition_factory):
    settings.MASTHEAD_NEWSLETTER_ESP_BATCH = 5
    sendgrid.fail_calls = 1  # the first call gets a 503
    addresses = add_subscribers(newsletter, 10)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    report = delivery_run(delivery.pk)
    assert report.finished and report.retried == 5 and report.sent == 10
    assert states(delivery) == {"sent": 10}
    counts = collections.Counter(d.to for d in sendgrid.delivered)
    assert counts == {address: 1 for address in addresses}
    attempts = collections.Counter(
        DeliveryRecipient.objects.filter(delivery=delivery).values_list("attempts", flat=True))
    assert attempts == {1: 5, 2: 5}
    assert sendgrid.calls == 3


def test_a_call_refused_for_one_bad_address_fails_only_that_address(
        sendgrid, settings, newsletter, edition_factory):
    settings.MASTHEAD_NEWSLETTER_ESP_BATCH = 5
    settings.MASTHEAD_NEWSLETTER_MAX_ATTEMPTS = 1
    addresses = add_subscribers(newsletter, 10)
    sendgrid.invalid = {addresses[3]}
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    report = delivery_run(delivery.pk)
    assert report.finished and report.sent == 9 and report.failed == 1
    bad = DeliveryRecipient.objects.get(subscription=subscription_of(addresses[3]))
    assert bad.state == "failed" and "400" in bad.error
    counts = collections.Counter(d.to for d in sendgrid.delivered)
    assert counts == {address: 1 for address in addresses if address != addresses[3]}
    # The spoilt batch went again one by one; the other batch in one call.
    assert sorted(sendgrid.call_sizes) == [1, 1, 1, 1, 5]


def test_each_recipients_status_in_a_batch_reaches_their_ledger_row(
        settings, newsletter, edition_factory):
    settings.EMAIL_BACKEND = "tests.newsletters.esp.PerRecipientStatusESP"
    settings.ANYMAIL = {}
    settings.MASTHEAD_NEWSLETTER_ESP_BATCH = 10
    settings.MASTHEAD_NEWSLETTER_MAX_ATTEMPTS = 1
    add_subscribers(newsletter, 6)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    delivery_run(delivery.pk)
    assert len(mail.outbox) == 1 and len(mail.outbox[0].to) == 6  # one call for all six
    row = {
        address: DeliveryRecipient.objects.get(subscription=subscription_of(address))
        for address in (esp.REJECTED, esp.FAILING, "reader0@example.org")
    }
    assert row[esp.REJECTED].state == "failed" and row[esp.REJECTED].error == "provider: rejected"
    assert Subscriber.objects.get(pk=row[esp.REJECTED].subscription.subscriber_id).suppressed
    assert row[esp.FAILING].state == "failed" and "provider: failed" in row[esp.FAILING].error
    assert row["reader0@example.org"].state == "sent"
    assert SentMessage.objects.get(
        subscription=subscription_of("reader0@example.org")).esp_message_id == (
        "id-reader0@example.org")
    assert states(delivery) == {"sent": 4, "failed": 2}


def test_esps_without_batch_personalisation_still_get_one_call_per_recipient(
        settings, newsletter, edition_factory):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.ANYMAIL = {}
    add_subscribers(newsletter, 3)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    assert delivery_run(delivery.pk).sent == 3
    assert sorted(len(m.to) for m in mail.outbox) == [1, 1, 1]
