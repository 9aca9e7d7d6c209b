"""The email providers' webhooks (newsletters.webhooks): only configured providers are routed,
every route proves its sender before anything is read, and an event changes a subscriber
only when it names a message Masthead sent to that subscriber.

Payloads follow each provider's real format, as django-anymail parses them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from anymail.backends.test import EmailBackend as AnymailTestBackend
from django.core import mail
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from masthead.newsletters.checks import check_email_webhooks
from masthead.newsletters.delivery import delivery_run, delivery_start
from masthead.newsletters.models import (
    ConsentRecord,
    ProviderEvent,
    SentMessage,
    Subscriber,
    Subscription,
)
from masthead.newsletters.tokens import make_unsubscribe_token

from .conftest import add_subscribers, subscription_of
from .esp import amazon_ses_bounce

pytestmark = pytest.mark.django_db

SECRET = "hook:a-long-random-s3cret"
MAILGUN_KEY = "key-mailgun-signing-0123456789"


class RecordingESP(AnymailTestBackend):
    """anymail's test backend, answering with provider-style message ids."""

    def get_esp_message_id(self, message):
        return f"esp-{uuid.uuid4()}"


def basic(credentials: str = SECRET) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}


def suppressed() -> set[str]:
    return {s.email for s in Subscriber.objects.filter(suppressed_at__isnull=False)}


def statuses() -> dict[str, str]:
    return {s.subscriber.email: s.status for s in Subscription.objects.select_related("subscriber")}


# --- each provider: settings, and an authentic hard bounce in its own format ----------------


def _sendgrid_keys():
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def sign(timestamp: str, body: bytes) -> str:
        return base64.b64encode(
            private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        ).decode()

    return base64.b64encode(public).decode(), sign


SENDGRID_PUBLIC, SENDGRID_SIGN = _sendgrid_keys()
_, SENDGRID_OTHER_SIGN = _sendgrid_keys()


def postmark_bounce(email, esp_id, event_id):
    body = {"RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1, "ID": event_id,
            "Email": email, "MessageID": esp_id, "BouncedAt": "2026-11-20T09:00:00Z",
            "Description": "The server was unable to deliver your message",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
            "Inactive": True, "CanActivate": True, "Subject": "This week"}
    return json.dumps(body).encode(), "application/json", {}


def brevo_bounce(email, esp_id, event_id):
    body = {"event": "hard_bounce", "email": email, "id": 1, "date": "2026-11-20 10:00:00",
            "ts": 1795000000, "message-id": esp_id, "ts_event": 1795000000 + event_id,
            "subject": "This week", "reason": "550 unknown user", "ts_epoch": 1795000000000}
    return json.dumps(body).encode(), "application/json", {}


def mailjet_bounce(email, esp_id, event_id):
    body = [{"event": "bounce", "time": 1795000000 + event_id, "MessageID": esp_id,
             "Message_GUID": str(uuid.uuid4()), "email": email, "mj_campaign_id": 0,
             "mj_contact_id": 0, "customcampaign": "", "CustomID": "", "Payload": "",
             "blocked": False, "hard_bounce": True, "error_related_to": "recipient",
             "error": "user unknown"}]
    return json.dumps(body).encode(), "application/json", {}


def sparkpost_bounce(email, esp_id, event_id):
    body = [{"msys": {"message_event": {
        "type": "bounce", "bounce_class": "10", "event_id": str(event_id),
        "transmission_id": esp_id, "message_id": "0001", "rcpt_to": email,
        "raw_rcpt_to": email, "timestamp": "1795000000",
        "raw_reason": "550 5.1.1 <reader0@example.org>: Recipient address rejected",
        "reason": "550 5.1.1 ...: Recipient address rejected"}}}]
    return json.dumps(body).encode(), "application/json", {}


def mailgun_signature(timestamp=None, key=MAILGUN_KEY):
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    token = uuid.uuid4().hex
    digest = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": digest}


def mailgun_bounce(email, esp_id, event_id, signature=None):
    body = {"signature": signature or mailgun_signature(),
            "event-data": {"event": "failed", "severity": "permanent", "id": f"mg-{event_id}",
                           "timestamp": 1795000000.5 + event_id, "recipient": email,
                           "reason": "bounce",
                           "message": {"headers": {"message-id": esp_id}},
                           "delivery-status": {"code": 550, "message": "no such user"}}}
    return json.dumps(body).encode(), "application/json", {}


def sendgrid_bounce(email, esp_id, event_id, timestamp=None, sign=None):
    body = json.dumps([{"email": email, "timestamp": 1795000000, "event": "bounce",
                        "sg_event_id": f"sg-{event_id}", "sg_message_id": "sg.filter.0",
                        "anymail_id": esp_id, "type": "bounce", "status": "5.1.1",
                        "reason": "550 5.1.1 unknown user"}]).encode()
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {"HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": timestamp,
               "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": (sign or SENDGRID_SIGN)(
                   timestamp, body)}
    return body, "application/json", headers


BASIC_AUTH = {"postmark": postmark_bounce, "brevo": brevo_bounce, "mailjet": mailjet_bounce,
              "sparkpost": sparkpost_bounce, "amazon_ses": amazon_ses_bounce}
SIGNED = {"mailgun": mailgun_bounce, "sendgrid": sendgrid_bounce}
ALL = {**BASIC_AUTH, **SIGNED}


def configure(settings, provider):
    settings.MASTHEAD_EMAIL_WEBHOOK_PROVIDERS = [provider]
    if provider == "mailgun":
        settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    elif provider == "sendgrid":
        settings.ANYMAIL = {"SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": SENDGRID_PUBLIC}
    else:
        settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}


def post(client, provider, built, auth=None, kind="tracking"):
    body, content_type, headers = built
    return client.post(f"/anymail/{provider}/{kind}/", body, content_type=content_type,
                       **headers, **(auth or {}))


def authentic(client, provider, email, esp_id, event_id=1):
    return post(client, provider, ALL[provider](email, esp_id, event_id),
                auth=basic() if provider in BASIC_AUTH else None)


@pytest.fixture(autouse=True)
def _boto3_stand_in(monkeypatch):
    """Amazon SES's views need boto3 only to confirm SNS subscriptions and fetch inbound mail
    from S3, neither of which these tests do; the test environment does not install it."""
    from anymail.webhooks import amazon_ses

    from masthead.newsletters import webhooks

    monkeypatch.setattr(amazon_ses, "_get_anymail_boto3_params", lambda kwargs: ({}, {}))
    monkeypatch.setattr(webhooks, "missing_package", lambda provider: False)


@pytest.fixture
def sent(newsletter, edition_factory, settings):
    """An edition really sent through an anymail backend to reader0…reader2: the ledger
    recorded each message's provider id. Returns {address: provider message id}."""
    settings.EMAIL_BACKEND = "tests.newsletters.test_email_webhooks.RecordingESP"
    add_subscribers(newsletter, 3)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    assert delivery_run(delivery.pk).finished
    ids = {m.to[0]: m.anymail_status.message_id for m in mail.outbox}
    assert SentMessage.objects.filter(kind="edition").count() == 3
    return ids


# --- routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "/anymail/postmark/tracking/", "/anymail/postmark/inbound/", "/anymail/mailgun/tracking/",
    "/anymail/amazon_ses/tracking/", "/anymail/sendgrid/tracking/", "/anymail/brevo/tracking/",
    "/anymail/mandrill/", "/anymail/resend/tracking/", "/anymail/nonsense/tracking/",
])
def test_with_default_settings_no_email_webhook_is_served(client, settings, url):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}  # a secret alone configures no provider
    assert settings.MASTHEAD_EMAIL_WEBHOOK_PROVIDERS == []
    assert client.post(url, b"{}", content_type="application/json", **basic()).status_code == 404


def test_only_the_configured_provider_is_routed(client, settings, sent):
    configure(settings, "postmark")
    for url in ("/anymail/mailgun/tracking/", "/anymail/amazon_ses/tracking/",
                "/anymail/sendgrid/tracking/", "/anymail/brevo/inbound/",
                "/anymail/postmark/other/", "/anymail/mandrill/tracking/"):
        response = client.post(url, b"{}", content_type="application/json", **basic())
        assert response.status_code == 404, url
    assert authentic(client, "postmark", "reader0@example.org",
                     sent["reader0@example.org"]).status_code == 200


@pytest.mark.parametrize("provider", ["postmark", "amazon_ses", "mailgun"])
def test_a_configured_provider_without_its_secret_is_not_served(client, settings, provider):
    settings.MASTHEAD_EMAIL_WEBHOOK_PROVIDERS = [provider]
    settings.ANYMAIL = {"MAILGUN_API_KEY": "key-api"} if provider == "mailgun" else {}
    built = ALL[provider]("reader0@example.org", "x", 1)
    assert post(client, provider, built).status_code == 404


# --- the deploy check -------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["postmark", "mailgun", "sendgrid", "amazon_ses"])
def test_check_deploy_fails_for_a_provider_without_a_secret(settings, provider):
    settings.MASTHEAD_EMAIL_WEBHOOK_PROVIDERS = [provider]
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET} if provider == "mailgun" else {}
    errors = check_email_webhooks()
    assert [e.id for e in errors] == ["newsletters.E002"]
    assert provider in errors[0].msg and errors[0].is_serious()
    with pytest.raises(SystemCheckError, match="newsletters.E002"):
        call_command("check", "--deploy", "--tag", "security")
    configure(settings, provider)
    assert check_email_webhooks() == []


def test_check_says_when_amazon_ses_lacks_boto3(settings, monkeypatch):
    from masthead.newsletters import webhooks

    monkeypatch.setattr(webhooks, "missing_package", lambda provider: bool(provider.needs))
    configure(settings, "amazon_ses")
    (error,) = check_email_webhooks()
    assert error.id == "newsletters.E003" and "boto3" in error.msg


def test_check_names_unknown_providers(settings):
    settings.MASTHEAD_EMAIL_WEBHOOK_PROVIDERS = ["pigeon"]
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    assert [e.id for e in check_email_webhooks()] == ["newsletters.E001"]


# --- no proof, no change ----------------------------------------------------------------------


@pytest.mark.parametrize("provider", sorted(BASIC_AUTH))
def test_unauthenticated_or_wrongly_authenticated_events_change_nothing(
    client, settings, sent, provider
):
    configure(settings, provider)
    email = "reader0@example.org"
    built = ALL[provider](email, sent[email], 1)
    assert post(client, provider, built).status_code == 401
    assert post(client, provider, built, auth=basic("hook:wrong")).status_code == 401
    assert post(client, provider, built,
                auth={"HTTP_AUTHORIZATION": "Basic %%%not-base64"}).status_code == 401
    assert post(client, provider, built,
                auth={"HTTP_AUTHORIZATION": "Bearer " + SECRET}).status_code == 401
    assert not suppressed() and not ProviderEvent.objects.exists()
    # the real thing still works
    assert post(client, provider, built, auth=basic()).status_code == 200
    assert suppressed() == {email}


def test_mailgun_unsigned_wrongly_signed_and_stale_events_change_nothing(client, settings, sent):
    configure(settings, "mailgun")
    email, esp_id = "reader0@example.org", sent["reader0@example.org"]
    unsigned = json.loads(mailgun_bounce(email, esp_id, 1)[0])
    del unsigned["signature"]
    cases = [
        (json.dumps(unsigned).encode(), "application/json", {}),
        mailgun_bounce(email, esp_id, 1, signature=mailgun_signature(key="key-someone-else")),
        mailgun_bounce(email, esp_id, 1, signature=mailgun_signature(time.time() - 3600)),
        mailgun_bounce(email, esp_id, 1, signature=mailgun_signature(time.time() + 3600)),
        mailgun_bounce(email, esp_id, 1, signature={"timestamp": "x", "token": 1}),
        (b"timestamp=1&token=2&signature=3&event=bounced", "application/x-www-form-urlencoded",
         {}),
    ]
    for built in cases:
        assert post(client, "mailgun", built).status_code == 400
    assert not suppressed() and not ProviderEvent.objects.exists()
    assert post(client, "mailgun", mailgun_bounce(email, esp_id, 1)).status_code == 200
    assert suppressed() == {email}


def test_sendgrid_unsigned_wrongly_signed_and_stale_events_change_nothing(
    client, settings, sent
):
    configure(settings, "sendgrid")
    email, esp_id = "reader0@example.org", sent["reader0@example.org"]
    body, content_type, headers = sendgrid_bounce(email, esp_id, 1)
    cases = [
        (body, content_type, {}),
        sendgrid_bounce(email, esp_id, 1, sign=SENDGRID_OTHER_SIGN),
        sendgrid_bounce(email, esp_id, 1, timestamp=int(time.time()) - 3600),
        (body, content_type, {**headers, "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": "!!"}),
        (body.replace(b"bounce", b"spamreport"), content_type, headers),  # body changed
    ]
    for built in cases:
        assert post(client, "sendgrid", built).status_code == 400
    assert not suppressed() and not ProviderEvent.objects.exists()
    assert post(client, "sendgrid", sendgrid_bounce(email, esp_id, 1)).status_code == 200
    assert suppressed() == {email}


@pytest.mark.parametrize("provider", sorted(ALL))
def test_replayed_events_change_nothing_the_second_time(client, settings, sent, provider):
    configure(settings, provider)
    email = "reader0@example.org"
    assert authentic(client, provider, email, sent[email], event_id=7).status_code == 200
    assert suppressed() == {email}
    Subscriber.objects.update(suppressed_at=None, suppression_reason="")  # an operator lifted it
    # the same event again (for Mailgun: newly signed, as a retry would be): seen before
    assert authentic(client, provider, email, sent[email], event_id=7).status_code == 200
    assert not suppressed()
    assert ProviderEvent.objects.count() == 1
    assert ConsentRecord.objects.filter(action="suppressed").count() == 1


@pytest.mark.parametrize("provider", sorted(SIGNED))
def test_a_signed_request_played_back_is_refused(client, settings, sent, provider):
    configure(settings, provider)
    email = "reader0@example.org"
    built = ALL[provider](email, sent[email], 7)
    assert post(client, provider, built).status_code == 200
    Subscriber.objects.update(suppressed_at=None, suppression_reason="")
    assert post(client, provider, built).status_code == 409  # the same signature again
    assert not suppressed() and ProviderEvent.objects.count() == 1
    # the window is kept only as long as the timestamp check needs it
    from datetime import timedelta

    from django.utils import timezone

    from masthead.core.replay import SignedDelivery
    from masthead.newsletters.webhooks import prune_webhook_deliveries

    assert prune_webhook_deliveries() == 0
    later = timezone.now() + timedelta(seconds=2 * 900 + 1)
    assert prune_webhook_deliveries(later) == 1
    assert not SignedDelivery.objects.filter(source__startswith="email:").exists()


# --- a reason the provider vouched for --------------------------------------------------------


@pytest.mark.parametrize("provider", sorted(ALL))
def test_an_authentic_event_about_a_message_we_sent_suppresses(client, settings, sent, provider):
    configure(settings, provider)
    email = "reader1@example.org"
    assert authentic(client, provider, email, sent[email]).status_code == 200
    assert suppressed() == {email}
    person = Subscriber.objects.get(suppressed_at__isnull=False)
    assert person.suppression_reason.startswith(f"{ProviderEvent.objects.get().esp_name} ")


@pytest.mark.parametrize("provider", sorted(ALL))
def test_an_authentic_event_about_an_unknown_message_is_recorded_and_ignored(
    client, settings, sent, provider
):
    configure(settings, provider)
    email = "reader0@example.org"
    assert authentic(client, provider, email, "never-sent-by-us", event_id=3).status_code == 200
    # someone else's message id: the address does not match the message's recipient
    assert authentic(client, provider, email, sent["reader1@example.org"],
                     event_id=4).status_code == 200
    assert not suppressed()
    assert statuses() == dict.fromkeys(sent, "confirmed")
    events = ProviderEvent.objects.all()
    assert len(events) == 2
    assert {e.outcome for e in events} == {"unknown message"}
    assert all(e.subscriber_id is None for e in events)


def test_an_edition_message_id_from_the_ledger_is_known(client, settings, newsletter,
                                                       edition_factory, smtp_server):
    """SMTP sends record no provider id: the Message-ID names the edition and subscription,
    and the ledger says whether that message went out."""
    smtp_server()
    add_subscribers(newsletter, 2)
    edition = edition_factory(newsletter)
    delivery = delivery_start(edition, enqueue=False)
    assert delivery_run(delivery.pk).finished
    configure(settings, "mailgun")
    sub = subscription_of("reader0@example.org")
    from urllib.parse import urlsplit

    host = urlsplit(settings.MASTHEAD_BASE_URL).hostname
    other = subscription_of("reader1@example.org")
    wrong = f"<edition-{edition.pk}.{other.pk}@{host}>"
    assert authentic(client, "mailgun", "reader0@example.org", wrong, 1).status_code == 200
    unsent = f"<edition-{edition.pk + 1}.{sub.pk}@{host}>"
    assert authentic(client, "mailgun", "reader0@example.org", unsent, 2).status_code == 200
    assert not suppressed()
    ours = f"<edition-{edition.pk}.{sub.pk}@{host}>"
    assert authentic(client, "mailgun", "reader0@example.org", ours, 3).status_code == 200
    assert suppressed() == {"reader0@example.org"}


def test_a_confirmation_email_is_a_message_we_sent(client, settings, newsletter, site):
    settings.EMAIL_BACKEND = "tests.newsletters.test_email_webhooks.RecordingESP"
    client.post("/newsletter/subscribe/", {"email": "new@example.org"})
    (message,) = mail.outbox
    record = SentMessage.objects.get(kind="confirm")
    assert record.esp_message_id == message.anymail_status.message_id
    assert record.message_id == message.extra_headers["Message-ID"].strip("<>")
    configure(settings, "postmark")
    assert authentic(client, "postmark", "new@example.org",
                     message.anymail_status.message_id).status_code == 200
    assert suppressed() == {"new@example.org"}


# --- verify before parse ----------------------------------------------------------------------


@pytest.mark.parametrize("provider", sorted(ALL))
def test_oversized_bodies_are_refused_before_anything_is_read(client, settings, provider):
    configure(settings, provider)
    settings.MASTHEAD_EMAIL_WEBHOOK_MAX_BYTES = 1000
    body = b'{"a": "' + b"x" * 2000 + b'"}'
    response = client.post(f"/anymail/{provider}/tracking/", body,
                           content_type="application/json", **basic())
    assert response.status_code == 413


@pytest.mark.parametrize("provider", sorted(BASIC_AUTH))
def test_hostile_bodies_without_the_secret_are_not_even_parsed(client, settings, provider):
    configure(settings, provider)
    deep = b"[" * 50000 + b"]" * 50000
    settings.MASTHEAD_EMAIL_WEBHOOK_MAX_BYTES = 200_000
    response = client.post(f"/anymail/{provider}/tracking/", deep,
                           content_type="application/json")
    assert response.status_code == 401


@pytest.mark.parametrize("provider", sorted(ALL))
@pytest.mark.parametrize("body", [
    b"", b"not json", b"[" * 50000 + b"]" * 50000, b"{}", b"[]", b"[1, 2]", b'{"RecordType": 5}',
    b'[{"msys": null}]', b'"string"', b"\xff\xfe\x00", b"null",
])
def test_malformed_bodies_to_a_configured_route_get_a_4xx(client, settings, provider, body):
    configure(settings, provider)
    settings.MASTHEAD_EMAIL_WEBHOOK_MAX_BYTES = 200_000
    headers = basic() if provider in BASIC_AUTH else {}
    if provider == "amazon_ses":
        headers.update(HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification",
                       HTTP_X_AMZ_SNS_MESSAGE_ID="x")
    if provider == "sendgrid":
        timestamp = str(int(time.time()))
        headers.update(HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP=timestamp,
                       HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE=SENDGRID_SIGN(timestamp, body))
    response = client.post(f"/anymail/{provider}/tracking/", body,
                           content_type="application/json", **headers)
    assert 200 <= response.status_code < 500, response.status_code
    if response.status_code == 200:  # understood, but about nothing: changes nothing
        assert not suppressed()


def test_amazon_ses_asks_sns_for_credentials_first(client, settings):
    configure(settings, "amazon_ses")
    built = amazon_ses_bounce("reader0@example.org", "x", 1)
    response = post(client, "amazon_ses", built)
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Basic")


# --- inbound: the List-Unsubscribe mailto -----------------------------------------------------


def postmark_inbound(subject: str) -> tuple[bytes, str, dict]:
    body = {"FromName": "Reader", "From": "reader0@example.org",
            "FromFull": {"Email": "reader0@example.org", "Name": "Reader"},
            "To": "unsubscribe@example.org",
            "ToFull": [{"Email": "unsubscribe@example.org", "Name": ""}],
            "Subject": subject, "MessageID": str(uuid.uuid4()),
            "Date": "Fri, 20 Nov 2026 09:00:00 +0000", "TextBody": "", "HtmlBody": "",
            "Headers": [], "Attachments": []}
    return json.dumps(body).encode(), "application/json", {}


def test_inbound_unsubscribe_needs_the_authenticated_route(client, settings, newsletter):
    add_subscribers(newsletter, 1)
    token = make_unsubscribe_token(subscription_of("reader0@example.org").pk)
    built = postmark_inbound(f"unsubscribe {token}")
    assert post(client, "postmark", built, kind="inbound").status_code == 404  # not configured
    configure(settings, "postmark")
    assert post(client, "postmark", built, kind="inbound").status_code == 401
    assert post(client, "postmark", built, auth=basic("x:y"), kind="inbound").status_code == 401
    assert subscription_of("reader0@example.org").status == "confirmed"
    assert post(client, "postmark", built, auth=basic(), kind="inbound").status_code == 200
    assert subscription_of("reader0@example.org").status == "unsubscribed"
