"""ESP batch sending through Amazon SES (issue 12, item 4): SES's bulk API (SESv2
``SendBulkEmail``) personalises only stored templates, so the edition is stored as an SES
email template for the send and deleted after it; anymail's real Amazon SES backend (boto3,
``endpoint_url`` pointed at the local stand-in of SESv2's REST API in ``esp.py``) sends it
with each destination's replacement data and headers, at most 50 destinations a call. Each
recipient keeps their own ledger row and SES message id, a destination SES fails fails
alone, and a bounce from SES (SNS to anymail's amazon_ses tracking webhook) reaches the
right reader by message id and address."""

from __future__ import annotations

import base64
import collections
import html
import json

import boto3  # noqa: F401 - django-anymail[amazon-ses]: these tests need the real backend
import pytest

from masthead.newsletters.batching import (
    StoredTemplateError,
    batch_style,
    remove_template,
    store_template,
    stored_template_alias,
)
from masthead.newsletters.delivery import delivery_run, delivery_start, load_recipients
from masthead.newsletters.models import (
    DeliveryRecipient,
    ProviderEvent,
    SentMessage,
    Subscriber,
    message_id_key,
)
from masthead.newsletters.rendering import GREETING, UNSUBSCRIBE, MessageTemplate, greeting_text
from masthead.newsletters.tokens import read_unsubscribe_token

from . import esp
from .conftest import add_subscribers, states, subscription_of

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "hook:ses-long-s3cret"


@pytest.fixture
def ses(settings):
    standin = esp.AmazonSESStandIn()
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
    standin.url = standin.start()
    esp.amazon_ses_settings(settings, standin.url)
    settings.MASTHEAD_EMAIL_WEBHOOK_PROVIDERS = ["amazon_ses"]
    settings.MASTHEAD_NEWSLETTER_RETRY_SECONDS = 0
    settings.MASTHEAD_NEWSLETTER_CONNECTIONS = 2
    yield standin
    standin.stop()



def headers_of(entry: dict) -> dict[str, str]:
    return {h["Name"].lower(): h["Value"] for h in entry.get("ReplacementHeaders", [])}


def test_an_edition_goes_out_in_calls_of_at_most_50_each_destination_personalised(
        ses, settings, newsletter, edition_factory):
    newsletter.greeting = "Hello {name},"
    newsletter.save()
    addresses = add_subscribers(newsletter, 120, names=True)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    template = MessageTemplate.for_delivery(delivery)
    report = delivery_run(delivery.pk)
    assert report.finished and report.sent == 120
    assert states(delivery) == {"sent": 120}
    # One SendBulkEmail call per batch of at most 50 destinations (SES's limit; the
    # project's default batch is 500): 120 = 50 + 50 + 20, in three calls.
    assert sorted(ses.call_sizes) == [20, 50, 50] and ses.calls == 3
    # The edition was stored once as an SES template, named for it, and deleted after.
    name = stored_template_alias(template, batch_style())
    assert ses.created == [name] and ses.create_calls == 1
    assert ses.deleted == [name] and ses.templates == {}
    entries = {e["Destination"]["ToAddresses"][0]: e for e in ses.entries}
    delivered = {d.to: d for d in ses.delivered}
    assert sorted(entries) == sorted(delivered) == sorted(addresses)
    esp_ids = set()
    for index, address in enumerate(addresses):
        subscription = subscription_of(address)
        entry, message = entries[address], delivered[address]
        data = json.loads(
            entry["ReplacementEmailContent"]["ReplacementTemplate"]["ReplacementTemplateData"])
        url = next(w for w in message.text.split() if "/unsubscribe/" in w)
        token = url.rstrip("/").rsplit("/", 1)[1]
        assert read_unsubscribe_token(token) == subscription.pk
        greeting = greeting_text(newsletter, f"Name{index}")
        assert data == {"masthead_unsubscribe": url, "masthead_greeting": greeting,
                        "masthead_greeting_html": html.escape(greeting)}
        assert f"Hello Name{index}," in message.text
        assert html.escape(f"Hello Name{index},") in message.html and url in message.html
        for part in (message.text, message.html, message.subject):
            assert UNSUBSCRIBE not in part and GREETING not in part and "{{" not in part
        headers = headers_of(entry)  # per-destination ReplacementHeaders
        assert headers["list-unsubscribe"].startswith(f"<{url}>, <mailto:")
        assert headers["list-unsubscribe-post"] == "List-Unsubscribe=One-Click"
        assert headers["list-id"] == template.list_id
        assert "message-id" not in headers  # SES would put its own in its place
        sent = SentMessage.objects.get(subscription=subscription)
        assert sent.esp_message_id == message_id_key(ses.message_ids[address])
        esp_ids.add(sent.esp_message_id)
    assert len(esp_ids) == 120  # one SES message id each, the one answered for them
    assert {d.custom_args["FromEmailAddress"] for d in ses.delivered} == {template.sender}


def test_a_destination_ses_rejects_fails_alone(ses, settings, newsletter, edition_factory):
    settings.MASTHEAD_NEWSLETTER_MAX_ATTEMPTS = 1
    addresses = add_subscribers(newsletter, 6)
    ses.rejected = {addresses[2]}
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    report = delivery_run(delivery.pk)
    assert report.finished and report.sent == 5 and report.failed == 1
    assert ses.call_sizes == [6]  # one call; SES answered for each destination
    bad = DeliveryRecipient.objects.get(subscription=subscription_of(addresses[2]))
    assert bad.state == "failed" and bad.error.endswith("provider: failed")
    assert collections.Counter(d.to for d in ses.delivered) == {
        a: 1 for a in addresses if a != addresses[2]}
    assert SentMessage.objects.filter(kind="edition").count() == 5


def test_a_destination_that_failed_for_now_is_retried_alone(
        ses, newsletter, edition_factory):
    addresses = add_subscribers(newsletter, 6)
    ses.flaky = {addresses[4]}  # TRANSIENT_FAILURE the first time
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    report = delivery_run(delivery.pk)
    assert report.finished and report.sent == 6 and report.retried == 1
    assert states(delivery) == {"sent": 6}
    # The batch, then the one retried on its own (a single SendEmail): nobody twice.
    assert ses.call_sizes == [6, 1]
    assert collections.Counter(d.to for d in ses.delivered) == {a: 1 for a in addresses}
    sent = SentMessage.objects.get(subscription=subscription_of(addresses[4]))
    assert sent.esp_message_id == message_id_key(ses.message_ids[addresses[4]])


def test_a_failed_call_is_retried_and_nobody_is_lost_or_sent_twice(
        ses, settings, newsletter, edition_factory):
    settings.MASTHEAD_NEWSLETTER_ESP_BATCH = 5
    ses.fail_calls = 1  # the first call gets a 503
    addresses = add_subscribers(newsletter, 10)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    report = delivery_run(delivery.pk)
    assert report.finished and report.retried == 5 and report.sent == 10
    assert collections.Counter(d.to for d in ses.delivered) == {a: 1 for a in addresses}
    assert ses.calls == 3 and ses.create_calls == 1


def sns_bounce(client, address: str, esp_id: str, event_id: int):
    """An SES bounce notification for ``address``, posted as SNS posts it to anymail."""
    body, content_type, headers = esp.amazon_ses_bounce(address, esp_id, event_id)
    response = client.post(
        "/anymail/amazon_ses/tracking/", body, content_type=content_type, **headers,
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode())
    assert response.status_code == 200
    return ProviderEvent.objects.order_by("-pk").first()


def test_a_bounce_from_ses_reaches_the_right_reader(
        ses, client, settings, newsletter, edition_factory):
    settings.MASTHEAD_NEWSLETTER_ESP_BATCH = 3
    addresses = add_subscribers(newsletter, 6)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    assert delivery_run(delivery.pk).sent == 6
    assert ses.call_sizes == [3, 3]
    esp_id = {a: ses.message_ids[a] for a in addresses}
    target, other = addresses[4], addresses[1]  # the middle of the second batch
    event = sns_bounce(client, target, esp_id[target], 1)
    assert event.outcome == "hard" and event.subscriber.email == target
    assert {s.email for s in Subscriber.objects.filter(suppressed_at__isnull=False)} == {target}
    # An id of a message another reader got does not vouch for this one.
    event = sns_bounce(client, other, esp_id[target], 2)
    assert event.outcome == "unknown message" and event.subscriber is None
    assert not subscription_of(other).subscriber.suppressed


def test_the_template_is_created_once_whatever_the_retries(ses, newsletter, edition_factory):
    """A retry — another worker, or the same send after a crash — finds the template (same
    edition, same content: same name); a create that lost a race to another worker (SES says
    AlreadyExists) looks it up again and goes on; a changed edition gets a new name."""
    addresses = add_subscribers(newsletter, 4)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    template = MessageTemplate.for_delivery(delivery)
    style = batch_style()
    name = store_template(template, style)
    again = MessageTemplate.for_delivery(delivery)  # as a second worker builds it
    assert store_template(again, style) == name
    assert ses.created == [name] and ses.create_calls == 1
    # The race: the lookup says NotFound, the create says AlreadyExists, the lookup again
    # finds it.
    ses.miss_lookups = 1
    third = MessageTemplate.for_delivery(delivery)
    assert store_template(third, style) == name
    assert ses.created == [name] and ses.create_calls == 2
    assert delivery_run(delivery.pk).sent == 4
    assert ses.created == [name] and ses.deleted == [name]
    assert sorted(d.to for d in ses.delivered) == sorted(addresses)
    assert remove_template(template, style)  # already gone: fine
    changed = MessageTemplate(newsletter=newsletter, subject="A different subject",
                              html_body=template.html_body, text_body=template.text_body,
                              message_id_prefix=template.message_id_prefix)
    assert stored_template_alias(changed, style) != name


def test_no_template_no_send(ses, settings, newsletter, edition_factory):
    """If SES will not store the template (here: credentials it does not know), nothing is
    sent and every row is left for the stalled-send recovery to try again."""
    add_subscribers(newsletter, 3)
    esp.amazon_ses_settings(settings, ses.url, access_key="AKIDUNKNOWN")
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    with pytest.raises(StoredTemplateError, match="security token"):
        delivery_run(delivery.pk)
    assert states(delivery) == {"pending": 3}
    assert ses.calls == 0 and ses.created == []


def test_the_template_holds_the_edition_with_its_braces_literal(
        ses, newsletter, edition_factory):
    """SES templates are Handlebars: the edition's own "{{" is kept from it and shows as
    written; a non-ASCII list name stays out of the headers SES takes only as ASCII."""
    newsletter.name = "Неделя"
    newsletter.greeting = "Hello {name},"
    newsletter.save()
    add_subscribers(newsletter, 2, names=True)
    edition = edition_factory(newsletter)
    edition.intro = "<p>Type {{masthead_greeting}} or {{{masthead_unsubscribe}}} to try.</p>"
    edition.save()
    delivery = delivery_start(edition, enqueue=False)
    assert delivery_run(delivery.pk).sent == 2
    assert ses.call_sizes == [2]
    for message in ses.delivered:
        shown = "Type {{masthead_greeting}} or {{{masthead_unsubscribe}}} to try."
        assert shown in html.unescape(message.html)
        assert "Hello Name" in message.text and "{{{" not in message.text
        assert message.headers["List-Id"] == f"<{newsletter.list_id}>"


def test_the_batch_is_what_anymail_sends_ses(ses, settings, newsletter, edition_factory):
    """What anymail's SES backend makes of a batch: one SendBulkEmail naming the stored
    template, one entry per recipient with their data and their List-Unsubscribe."""
    from anymail.backends.amazon_ses import EmailBackend

    from masthead.newsletters.batching import batch_message

    add_subscribers(newsletter, 3)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    template = MessageTemplate.for_delivery(delivery)
    rows = list(DeliveryRecipient.objects.filter(delivery=delivery).values_list(
        "pk", "subscription_id"))
    recipients, _ = load_recipients(rows, names=False)
    style = batch_style()
    assert style.max_size == 50
    payload = EmailBackend().build_message_payload(batch_message(template, recipients, style),
                                                   {})
    payload.finalize_payload()
    assert payload.api_name == "send_bulk_email"
    params = payload.params
    assert params["DefaultContent"]["Template"]["TemplateName"] == stored_template_alias(
        template, style)
    assert [e["Destination"]["ToAddresses"] for e in params["BulkEmailEntries"]] == [
        [r.email] for r in recipients]
    for recipient, entry in zip(recipients, params["BulkEmailEntries"], strict=True):
        url = template.unsubscribe_url(recipient.token)
        assert json.loads(entry["ReplacementEmailContent"]["ReplacementTemplate"][
            "ReplacementTemplateData"])["masthead_unsubscribe"] == url
        assert headers_of(entry)["list-unsubscribe"].startswith(f"<{url}>")
