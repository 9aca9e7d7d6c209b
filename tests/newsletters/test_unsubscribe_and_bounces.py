"""Leaving: one-click unsubscribe (footer link and RFC 8058 POST), undo, the mailto: route,
and bounce/complaint webhooks (anymail's normalised events) suppressing addresses."""

from __future__ import annotations

import base64
import json

import pytest
from anymail.signals import AnymailInboundEvent, inbound
from django.core import mail

from masthead.newsletters.models import (
    ConsentRecord,
    ProviderEvent,
    SentMessage,
    Subscriber,
    Subscription,
)
from masthead.newsletters.tokens import make_unsubscribe_token

from .conftest import add_subscribers, subscription_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscribed(newsletter):
    add_subscribers(newsletter, 2)
    return subscription_of("reader0@example.org")


def test_rfc8058_one_click_post_unsubscribes_at_once(client, subscribed):
    url = f"/newsletter/unsubscribe/{make_unsubscribe_token(subscribed.pk)}/"
    response = client.post(url, "List-Unsubscribe=One-Click",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and response.content == b"Unsubscribed."
    assert not response.cookies
    subscribed.refresh_from_db()
    assert subscribed.status == "unsubscribed" and subscribed.unsubscribed_at
    record = ConsentRecord.objects.get(subscription=subscribed)
    assert record.action == "unsubscribed" and "List-Unsubscribe-Post" in record.source
    assert client.post(url, "List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded").status_code == 200
    assert ConsentRecord.objects.filter(subscription=subscribed).count() == 1  # idempotent
    assert subscription_of("reader1@example.org").status == "confirmed"


def test_footer_link_shows_one_button_and_its_post_unsubscribes_and_can_be_undone(
    client, subscribed
):
    url = f"/newsletter/unsubscribe/{make_unsubscribe_token(subscribed.pk)}/"
    # A mail scanner that follows the link (GET, HEAD) unsubscribes nobody.
    for _ in range(2):
        page = client.get(url)
        assert page.status_code == 200
        html = page.content.decode()
        assert "Yes, unsubscribe me" in html and 'name="action" value="unsubscribe"' in html
        assert "no-store" in page["Cache-Control"]
        assert "noindex" in page["X-Robots-Tag"] and '<meta name="robots" content="noindex' in html
        assert not page.cookies
    assert client.head(url).status_code == 200
    assert subscription_of("reader0@example.org").status == "confirmed"
    assert not ConsentRecord.objects.filter(subscription=subscribed).exists()

    done = client.post(url, {"action": "unsubscribe"})
    assert done.status_code == 200 and "You are unsubscribed" in done.content.decode()
    assert "no-store" in done["Cache-Control"]
    assert subscription_of("reader0@example.org").status == "unsubscribed"
    record = ConsentRecord.objects.get(subscription=subscribed)
    assert record.action == "unsubscribed" and "unsubscribe page" in record.source
    undo = client.post(url, {"action": "resubscribe"})
    assert undo.status_code == 200 and "You are subscribed" in undo.content.decode()
    assert subscription_of("reader0@example.org").status == "confirmed"
    assert subscription_of("reader1@example.org").status == "confirmed"


def test_the_unsubscribe_page_on_the_russian_site(client, subscribed):
    url = f"/ru/newsletter/unsubscribe/{make_unsubscribe_token(subscribed.pk)}/"
    page = client.get(url)
    assert page.status_code == 200 and "Да, отпишите меня" in page.content.decode()
    assert subscription_of("reader0@example.org").status == "confirmed"


def test_forged_or_unknown_unsubscribe_links(client, subscribed):
    token = make_unsubscribe_token(subscribed.pk)
    assert client.get(f"/newsletter/unsubscribe/{token[:-2]}xx/").status_code == 400
    assert client.post(f"/newsletter/unsubscribe/{token[:-2]}xx/").status_code == 400
    assert client.get("/newsletter/unsubscribe/%3Cscript%3E/").status_code == 400
    unknown = make_unsubscribe_token(999999)
    assert client.get(f"/newsletter/unsubscribe/{unknown}/").status_code == 404
    assert client.post(f"/newsletter/unsubscribe/{unknown}/",
                       {"action": "unsubscribe"}).status_code == 404
    assert subscription_of("reader0@example.org").status == "confirmed"


def test_the_mailto_route_unsubscribes_through_anymail_inbound(subscribed):
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = f"unsubscribe {make_unsubscribe_token(subscribed.pk)}"
    inbound.send(sender=None, event=AnymailInboundEvent(event_type="inbound", message=message),
                 esp_name="Postmark")
    assert subscription_of("reader0@example.org").status == "unsubscribed"
    forged = EmailMessage()
    forged["Subject"] = f"unsubscribe {subscription_of('reader1@example.org').pk}.forged"
    inbound.send(sender=None, event=AnymailInboundEvent(event_type="inbound", message=forged),
                 esp_name="Postmark")
    assert subscription_of("reader1@example.org").status == "confirmed"


def postmark(client, payload):
    auth = base64.b64encode(b"hook:s3cret").decode()
    return client.post("/anymail/postmark/tracking/", json.dumps(payload),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Basic {auth}")


@pytest.fixture
def webhook_settings(settings, subscribed):
    """Postmark's webhook configured with its secret, and an edition message sent (as the
    ledger records it) to every subscriber: only events about those change anything."""
    settings.MASTHEAD_EMAIL_WEBHOOK_PROVIDERS = ["postmark"]
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret"}
    settings.MASTHEAD_NEWSLETTER_SOFT_BOUNCE_LIMIT = 3
    for subscription in Subscription.objects.select_related("subscriber"):
        SentMessage.objects.create(
            message_id=f"edition-1.{subscription.pk}@example.org",
            esp_message_id=postmark_message_id(subscription.subscriber.email),
            subscription=subscription,
            kind="edition",
        )


def postmark_message_id(email):
    """The id Postmark gave the message we sent to ``email`` (a UUID in real life)."""
    return f"pm-{email.lower()}"


def bounce(event_id, email, kind="HardBounce", record="Bounce"):
    return {"RecordType": record, "Type": kind, "ID": event_id, "Email": email,
            "MessageID": postmark_message_id(email),
            "BouncedAt": "2026-11-20T09:00:00Z", "Description": "test", "Details": "test"}


def test_hard_bounce_and_complaint_suppress_replays_change_nothing(
    client, subscribed, webhook_settings
):
    assert postmark(client, bounce(1, "reader0@example.org")).status_code == 200
    person = Subscriber.objects.get(pk=subscribed.subscriber_id)
    assert person.suppressed and "Postmark bounced" in person.suppression_reason
    assert postmark(client, bounce(1, "reader0@example.org")).status_code == 200
    assert ProviderEvent.objects.count() == 1
    assert ConsentRecord.objects.filter(action="suppressed").count() == 1
    complaint = bounce(2, "READER1@example.org", kind="SpamComplaint", record="SpamComplaint")
    assert postmark(client, complaint).status_code == 200
    assert Subscriber.objects.filter(suppressed_at__isnull=False).count() == 2


def test_soft_bounces_suppress_at_the_threshold(client, subscribed, webhook_settings):
    for event_id in (10, 11):
        postmark(client, bounce(event_id, "reader0@example.org", kind="SoftBounce"))
    person = Subscriber.objects.get(pk=subscribed.subscriber_id)
    assert person.soft_bounces == 2 and not person.suppressed
    postmark(client, bounce(12, "reader0@example.org", kind="Transient"))
    person.refresh_from_db()
    assert person.suppressed and "3 soft bounces" in person.suppression_reason


def test_webhooks_need_the_secret_and_unknown_addresses_are_harmless(
    client, subscribed, webhook_settings
):
    payload = json.dumps(bounce(20, "reader0@example.org"))
    denied = client.post("/anymail/postmark/tracking/", payload, content_type="application/json")
    assert denied.status_code == 401
    assert not Subscriber.objects.filter(suppressed_at__isnull=False).exists()
    assert postmark(client, bounce(21, "stranger@example.org")).status_code == 200
    assert ProviderEvent.objects.get().outcome == "unknown message"


def test_a_suppressed_address_gets_no_mail_even_when_signing_up(
    client, subscribed, webhook_settings, site
):
    postmark(client, bounce(30, "reader0@example.org"))
    client.post("/newsletter/subscribe/", {"email": "reader0@example.org"})
    assert not mail.outbox
