"""ESP batch sending through Mailgun, Brevo and Postmark (issue 12, item 4): an edition goes
out in batches, one API call for many recipients, through django-anymail's real backends for
them to local HTTP stand-ins of their APIs (``esp.py``); for Postmark the edition is stored
as a template for the send and removed after it. Each recipient gets their own
greeting, unsubscribe link, List-Unsubscribe and Message-ID; the ledger keeps each one's
outcome and the provider's id; and a bounce from the provider's webhook reaches the right
reader — also from Mailgun, which gives the whole batch one message id."""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import html
import json
import time
import uuid

import pytest

from masthead.newsletters.batching import (
    StoredTemplateError,
    batch_message,
    batch_style,
    store_template,
    stored_template_alias,
)
from masthead.newsletters.delivery import delivery_run, delivery_start
from masthead.newsletters.models import (
    DeliveryRecipient,
    ProviderEvent,
    SentMessage,
    Subscriber,
    message_id_key,
)
from masthead.newsletters.rendering import GREETING, UNSUBSCRIBE, MessageTemplate
from masthead.newsletters.tokens import read_unsubscribe_token

from . import esp
from .conftest import add_subscribers, states, subscription_of

pytestmark = pytest.mark.django_db

MAILGUN_SIGNING_KEY = "key-mailgun-webhook-signing-42"
WEBHOOK_SECRET = "hook:another-long-s3cret"
PROVIDERS = ["mailgun", "brevo", "postmark"]


@pytest.fixture(params=PROVIDERS)
def provider(request, settings):
    """A running stand-in, with anymail's backend for it configured and its webhooks on."""
    name = request.param
    settings.MASTHEAD_NEWSLETTER_RETRY_SECONDS = 0
    settings.MASTHEAD_NEWSLETTER_CONNECTIONS = 2
    settings.MASTHEAD_EMAIL_WEBHOOK_PROVIDERS = [name]
    if name == "mailgun":
        standin = esp.MailgunStandIn()
        settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY}
        esp.mailgun_settings(settings, standin.start())
    elif name == "brevo":
        standin = esp.BrevoStandIn()
        settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
        esp.brevo_settings(settings, standin.start())
    else:
        standin = esp.PostmarkStandIn()
        settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
        esp.postmark_settings(settings, standin.start())
    standin.name = name
    yield standin
    standin.stop()


def header(message, name: str) -> str:
    return {key.lower(): value for key, value in message.headers.items()}[name.lower()]



def bounce(client, provider, address: str, esp_id: str, event_id: int):
    """An authentic hard bounce for ``address`` from the provider's webhook, in its format."""
    if provider.name == "mailgun":
        timestamp, token = str(int(time.time())), uuid.uuid4().hex
        signature = hmac.new(MAILGUN_SIGNING_KEY.encode(), f"{timestamp}{token}".encode(),
                             hashlib.sha256).hexdigest()
        body = {"signature": {"timestamp": timestamp, "token": token, "signature": signature},
                "event-data": {
                    "event": "failed", "severity": "permanent", "id": f"mg-{event_id}",
                    "timestamp": 1795000000.5 + event_id, "recipient": address,
                    "reason": "bounce", "message": {"headers": {"message-id": esp_id}},
                    "delivery-status": {"code": 550, "message": "no such user"}}}
        auth = {}
    elif provider.name == "postmark":
        body = {"RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1, "ID": event_id,
                "Email": address, "MessageID": esp_id, "BouncedAt": "2026-11-20T09:00:00Z",
                "Description": "The server was unable to deliver your message",
                "Details": "smtp;550 5.1.1 The email account does not exist",
                "Inactive": True, "CanActivate": True, "Subject": "This week"}
    else:
        body = {"event": "hard_bounce", "email": address, "id": 1,
                "date": "2026-11-20 10:00:00", "ts": 1795000000, "message-id": esp_id,
                "ts_event": 1795000000 + event_id, "subject": "This week",
                "reason": "550 unknown user", "ts_epoch": 1795000000000}
    if provider.name != "mailgun":
        auth = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(
            WEBHOOK_SECRET.encode()).decode()}
    response = client.post(f"/anymail/{provider.name}/tracking/", json.dumps(body),
                           content_type="application/json", **auth)
    assert response.status_code == 200
    return ProviderEvent.objects.order_by("-pk").first()


def test_an_edition_goes_out_in_batches_each_recipient_personalised(
        provider, settings, newsletter, edition_factory):
    settings.MASTHEAD_NEWSLETTER_ESP_BATCH = 4
    newsletter.greeting = "Hello {name},"
    newsletter.save()
    addresses = add_subscribers(newsletter, 11, names=True)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    report = delivery_run(delivery.pk)
    assert report.finished and report.sent == 11
    assert states(delivery) == {"sent": 11}
    # Batches, not one call per recipient: at most 4 in a call, 11 in all.
    assert sum(provider.call_sizes) == 11 and max(provider.call_sizes) <= 4
    assert len(provider.call_sizes) <= 4
    by_address = {d.to: d for d in provider.delivered}
    assert sorted(by_address) == sorted(addresses)
    tokens, esp_ids = set(), collections.Counter()
    for index, address in enumerate(addresses):
        message = by_address[address]
        subscription = subscription_of(address)
        assert f"Hello Name{index}," in message.text
        assert html.escape(f"Hello Name{index},") in message.html
        for part in (message.text, message.html):
            assert UNSUBSCRIBE not in part and GREETING not in part
            assert "%recipient" not in part and "params." not in part
        url = next(w for w in message.text.split() if "/unsubscribe/" in w)
        token = url.rstrip("/").rsplit("/", 1)[1]
        assert read_unsubscribe_token(token) == subscription.pk
        assert url in message.html
        assert header(message, "List-Unsubscribe").startswith(f"<{url}>, <mailto:")
        assert header(message, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
        assert header(message, "Message-ID") == (
            f"<edition-{delivery.edition_id}.{subscription.pk}@127.0.0.1>")
        tokens.add(token)
        sent = SentMessage.objects.get(subscription=subscription)
        assert sent.message_id == message_id_key(header(message, "Message-ID"))
        if provider.name != "mailgun":  # one id per recipient, the one answered for them
            assert sent.esp_message_id == message_id_key(provider.message_ids[address])
        esp_ids[sent.esp_message_id] += 1
    assert len(tokens) == 11
    if provider.name == "mailgun":  # Mailgun: one id a call, shared by the call's recipients
        assert sorted(esp_ids.values()) == sorted(provider.call_sizes)
    else:
        assert set(esp_ids.values()) == {1}
    if provider.name == "postmark":  # the edition was stored as one template, then removed
        assert len(provider.created) == 1 and provider.deleted == provider.created
        assert provider.templates == {}


def test_a_bounce_from_the_webhook_reaches_the_right_reader(
        provider, client, settings, newsletter, edition_factory):
    settings.MASTHEAD_NEWSLETTER_ESP_BATCH = 3
    addresses = add_subscribers(newsletter, 6)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    assert delivery_run(delivery.pk).sent == 6
    assert provider.call_sizes == [3, 3]
    esp_id = {
        address: SentMessage.objects.get(subscription=subscription_of(address)).esp_message_id
        for address in addresses
    }
    first = {a for a in addresses if esp_id[a] == esp_id[addresses[0]]}
    second = next(a for a in addresses if a not in first)
    # A reader in the middle of a batch: with Mailgun the id names three messages, and the
    # recipient address tells which.
    target = sorted(first)[1] if provider.name == "mailgun" else addresses[4]
    event = bounce(client, provider, target, esp_id[target], 1)
    assert event.outcome == "hard" and event.subscriber.email == target
    assert {s.email for s in Subscriber.objects.filter(suppressed_at__isnull=False)} == {target}
    # An id of a message another reader got does not vouch for this one.
    event = bounce(client, provider, second, esp_id[target], 2)
    assert event.outcome == "unknown message" and event.subscriber is None
    assert not subscription_of(second).subscriber.suppressed


def test_a_failed_batch_call_is_retried_and_nobody_is_lost_or_sent_twice(
        provider, settings, newsletter, edition_factory):
    settings.MASTHEAD_NEWSLETTER_ESP_BATCH = 5
    provider.fail_calls = 1  # the first call gets a 503
    addresses = add_subscribers(newsletter, 10)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    report = delivery_run(delivery.pk)
    assert report.finished and report.retried == 5 and report.sent == 10
    assert states(delivery) == {"sent": 10}
    counts = collections.Counter(d.to for d in provider.delivered)
    assert counts == {address: 1 for address in addresses}
    assert provider.calls == 3


def test_a_call_refused_for_one_bad_address_fails_only_that_address(
        provider, settings, newsletter, edition_factory):
    settings.MASTHEAD_NEWSLETTER_ESP_BATCH = 5
    settings.MASTHEAD_NEWSLETTER_MAX_ATTEMPTS = 1
    addresses = add_subscribers(newsletter, 10)
    provider.invalid = {addresses[3]}
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    report = delivery_run(delivery.pk)
    assert report.finished and report.sent == 9 and report.failed == 1
    bad = DeliveryRecipient.objects.get(subscription=subscription_of(addresses[3]))
    counts = collections.Counter(d.to for d in provider.delivered)
    assert counts == {address: 1 for address in addresses if address != addresses[3]}
    if provider.name == "postmark":  # Postmark answers per message: the others went
        assert bad.state == "failed" and bad.error == "provider: invalid"
        assert provider.call_sizes == [5, 5]
    else:  # the call was refused as a whole, and its recipients sent one by one
        assert bad.state == "failed" and "400" in bad.error
        assert sorted(provider.call_sizes) == [1, 1, 1, 1, 5]


def test_brevo_does_not_read_the_editions_own_braces_as_its_template_language(
        settings, newsletter, edition_factory):
    standin = esp.BrevoStandIn()
    settings.ANYMAIL = {}
    esp.brevo_settings(settings, standin.start())
    try:
        settings.MASTHEAD_NEWSLETTER_ESP_BATCH = 10
        newsletter.name = "Неделя"  # Brevo would send a non-ASCII header as raw 8-bit
        newsletter.save()
        add_subscribers(newsletter, 2)
        edition = edition_factory(newsletter)
        edition.intro = "<p>Type {{ params.masthead_greeting }} or {% if x %} to try.</p>"
        edition.save()
        delivery = delivery_start(edition, enqueue=False)
        assert delivery_run(delivery.pk).sent == 2
        assert standin.call_sizes == [2]
        for message in standin.delivered:
            shown = "Type {{ params.masthead_greeting }} or {% if x %} to try."
            assert shown in html.unescape(message.html)
            assert header(message, "List-Id") == f"<{newsletter.list_id}>"
    finally:
        standin.stop()


def test_mailgun_batches_carry_recipient_variables_for_every_recipient(
        settings, newsletter, edition_factory):
    """What anymail sends Mailgun: every ``to`` has its variables, the bodies and headers
    refer to them, so no recipient gets another's link or a bare placeholder."""
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = {"MAILGUN_API_KEY": "key", "MAILGUN_SENDER_DOMAIN": "example.org"}
    settings.MASTHEAD_NEWSLETTER_ESP_BATCH = 10
    add_subscribers(newsletter, 3)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    template = MessageTemplate.for_delivery(delivery)
    from masthead.newsletters.delivery import load_recipients

    rows = list(DeliveryRecipient.objects.filter(delivery=delivery).values_list(
        "pk", "subscription_id"))
    recipients, _ = load_recipients(rows, names=False)
    style = batch_style()
    message = batch_message(template, recipients, style)
    from anymail.backends.mailgun import EmailBackend

    payload = EmailBackend().build_message_payload(message, {})
    data = payload.serialize_data()
    variables = json.loads(data["recipient-variables"])
    assert sorted(variables) == sorted(data["to"]) == sorted(r.email for r in recipients)
    assert "%recipient.masthead_unsubscribe%" in data["text"]
    assert "%recipient.masthead_greeting_html%" in data["html"]
    assert data["h:List-Unsubscribe"] == "%recipient.h:List-Unsubscribe%"
    for recipient in recipients:
        mine = variables[recipient.email]
        assert mine["masthead_unsubscribe"] == template.unsubscribe_url(recipient.token)
        assert mine["h:Message-Id"] == template.message_id(recipient)


@pytest.fixture
def postmark(settings):
    standin = esp.PostmarkStandIn()
    settings.ANYMAIL = {}
    esp.postmark_settings(settings, standin.start())
    settings.MASTHEAD_NEWSLETTER_RETRY_SECONDS = 0
    settings.MASTHEAD_NEWSLETTER_ESP_BATCH = 10
    yield standin
    standin.stop()


def test_postmark_an_inactive_recipient_fails_alone_and_nobody_is_sent_twice(
        postmark, settings, newsletter, edition_factory):
    settings.MASTHEAD_NEWSLETTER_MAX_ATTEMPTS = 1
    addresses = add_subscribers(newsletter, 6)
    postmark.inactive = {addresses[2]}
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    report = delivery_run(delivery.pk)
    assert report.finished and report.sent == 5 and report.failed == 1
    assert postmark.call_sizes == [6]  # one call; Postmark answered for each message
    row = DeliveryRecipient.objects.get(subscription=subscription_of(addresses[2]))
    assert row.state == "failed" and row.error == "provider: rejected"
    assert subscription_of(addresses[2]).subscriber.suppressed
    assert collections.Counter(d.to for d in postmark.delivered) == {
        a: 1 for a in addresses if a != addresses[2]}


def test_postmark_template_is_stored_once_whatever_the_retries(
        postmark, newsletter, edition_factory):
    """A retry — another worker, or the same send after a crash — finds the template there
    (same edition, same content: same alias) and stores nothing twice; a changed edition
    gets a new one."""
    addresses = add_subscribers(newsletter, 4)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    template = MessageTemplate.for_delivery(delivery)
    style = batch_style()
    alias = store_template(template, style)
    again = MessageTemplate.for_delivery(delivery)  # as a second worker builds it
    assert store_template(again, style) == alias and postmark.created == [alias]
    assert delivery_run(delivery.pk).sent == 4
    assert postmark.created == [alias] and postmark.deleted == [alias]
    assert sorted(d.to for d in postmark.delivered) == sorted(addresses)
    changed = MessageTemplate(newsletter=newsletter, subject="A different subject",
                              html_body=template.html_body, text_body=template.text_body,
                              message_id_prefix=template.message_id_prefix)
    assert stored_template_alias(changed, style) != alias


def test_postmark_no_template_no_send(postmark, settings, newsletter, edition_factory):
    """If Postmark will not store the template (here: a wrong token), nothing is sent and
    every row is left for the stalled-send recovery to try again."""
    add_subscribers(newsletter, 3)
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_SERVER_TOKEN": "wrong"}
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    with pytest.raises(StoredTemplateError, match="401"):
        delivery_run(delivery.pk)
    assert states(delivery) == {"pending": 3}
    assert postmark.calls == 0 and postmark.created == []


def test_postmark_template_holds_the_edition_with_its_braces_inert(
        postmark, newsletter, edition_factory):
    add_subscribers(newsletter, 2, names=True)
    newsletter.greeting = "Hello {name},"
    newsletter.save()
    edition = edition_factory(newsletter)
    edition.intro = "<p>Type {{ masthead_greeting }} to try.</p>"
    edition.save()
    delivery = delivery_start(edition, enqueue=False)
    assert delivery_run(delivery.pk).sent == 2
    for message in postmark.delivered:
        assert "Type {{ masthead_greeting }} to try." in html.unescape(message.html)
        assert "Hello Name" in message.text and "{{{" not in message.text
