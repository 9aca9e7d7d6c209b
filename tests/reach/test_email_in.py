"""Email as a way in (masthead.reach.inbound): a reader who reaches no site subscribes by
writing and replying, and gets the latest edition in full with the mirror list by writing.

Every message arrives as its provider posts it — Postmark's inbound JSON with the basic-auth
secret, Mailgun's signed inbound form — to the authenticated route, and is parsed by anymail.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.core import mail
from django.utils import timezone

from masthead.newsletters.models import ConsentRecord, Edition, Subscriber, Subscription
from masthead.newsletters.rendering import article_text
from masthead.newsletters.tokens import make_unsubscribe_token
from masthead.reach.inbound import REPLY_CODE, read_reply_code, reply_code
from masthead.reach.models import Mirror
from tests.newsletters import conftest as newsletter_fixtures
from tests.newsletters.conftest import add_subscribers, subscription_of
from tests.newsletters.test_email_webhooks import (
    MAILGUN_KEY,
    SECRET,
    basic,
    mailgun_signature,
)

pytestmark = pytest.mark.django_db

# the newsletter tests' fixtures: a newsletter (and a Russian one), editions of demo
# articles, and commit hooks run at once inside the test transaction
newsletter = newsletter_fixtures.newsletter
russian_newsletter = newsletter_fixtures.russian_newsletter
edition_factory = newsletter_fixtures.edition_factory
_on_commit_runs_at_once = newsletter_fixtures._on_commit_runs_at_once

SUBSCRIBE = "subscribe@lantern.example"
LATEST = "latest@lantern.example"
READER = "reader@mail.example.net"


@pytest.fixture(autouse=True)
def email_in(settings):
    settings.MASTHEAD_EMAIL_WEBHOOK_PROVIDERS = ["postmark"]
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    settings.MASTHEAD_REACH_SUBSCRIBE_EMAIL = SUBSCRIBE
    settings.MASTHEAD_REACH_AUTOREPLY_EMAIL = LATEST
    settings.MASTHEAD_PRIVACY_POLICY_VERSION = "2026-11"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return settings


def postmark(to, subject="", text="", sender=READER, headers=(), message_id=None):
    """Postmark's inbound webhook JSON (Return-Path first in Headers, as Postmark sends it)."""
    all_headers = [
        {"Name": "Return-Path", "Value": f"<{sender}>"},
        {"Name": "Message-ID", "Value": message_id or f"<{uuid.uuid4()}@mail.example.net>"},
        *({"Name": name, "Value": value} for name, value in headers),
    ]
    body = {
        "FromName": "A Reader", "From": sender, "FromFull": {"Email": sender, "Name": "A Reader"},
        "To": to, "ToFull": [{"Email": to, "Name": ""}], "Cc": "", "CcFull": [],
        "OriginalRecipient": to, "ReplyTo": "", "Subject": subject,
        "MessageID": str(uuid.uuid4()), "Date": "Tue, 1 Dec 2026 09:00:00 +0000",
        "MailboxHash": "", "TextBody": text, "HtmlBody": "", "StrippedTextReply": "",
        "Tag": "", "Headers": all_headers, "Attachments": [],
    }
    return json.dumps(body).encode()


def post_postmark(client, body, auth=True):
    return client.post("/anymail/postmark/inbound/", body, content_type="application/json",
                       **(basic() if auth else {}))


def write(client, to, **kwargs):
    response = post_postmark(client, postmark(to, **kwargs))
    assert response.status_code == 200, response.content
    return response


def header(message, name):
    return message.extra_headers.get(name)


# --- subscribe, then confirm by reply ---------------------------------------------------------


def test_subscribe_by_email_then_confirm_by_replying(client, newsletter):
    write(client, SUBSCRIBE, subject="subscribe", text="Please add me.")

    assert len(mail.outbox) == 1
    confirmation = mail.outbox[0]
    assert confirmation.to == [READER]
    assert "reply to this email" in confirmation.body
    code = REPLY_CODE.search(confirmation.subject)[0]
    assert code in confirmation.body
    assert "/newsletter/confirm/" in confirmation.body  # the link still works for who can
    assert confirmation.reply_to == [SUBSCRIBE]
    assert header(confirmation, "Auto-Submitted") == "auto-replied"
    subscription = subscription_of(READER)
    assert subscription.status == "pending"
    requested = ConsentRecord.objects.get(subscription=subscription)
    assert (requested.action, requested.source) == ("requested", "email")
    # stored like a web sign-up: the address only encrypted, found by its blind index
    subscriber = Subscriber.objects.get()
    assert subscriber.email == READER
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM newsletters_subscriber")
        assert READER not in cursor.fetchone()[0]

    # the reply: the same subject with "Re:", threaded to our message, the text quoted
    quoted = "\n".join("> " + line for line in confirmation.body.splitlines())
    write(client, SUBSCRIBE, subject="Re: " + confirmation.subject, text="Yes!\n\n" + quoted,
          headers=[("In-Reply-To", confirmation.extra_headers["Message-ID"])])

    subscription.refresh_from_db()
    assert subscription.status == "confirmed"
    confirmed = ConsentRecord.objects.get(subscription=subscription, action="confirmed")
    assert confirmed.source == "email"
    assert confirmed.policy_version == "2026-11"
    assert confirmed.at is not None
    assert len(mail.outbox) == 1  # confirming sends nothing


def test_the_code_in_the_quoted_text_confirms_when_the_subject_changed(client, newsletter):
    write(client, SUBSCRIBE, subject="hello")
    confirmation = mail.outbox[0]
    write(client, SUBSCRIBE, subject="my reply",
          text="ok\n\n> " + confirmation.body.replace("\n", "\n> "))
    assert subscription_of(READER).status == "confirmed"


def test_a_code_confirms_only_from_the_address_it_went_to(client, newsletter):
    write(client, SUBSCRIBE, subject="subscribe")
    subject = mail.outbox[0].subject
    write(client, SUBSCRIBE, subject="Re: " + subject, sender="someone-else@mail.example.net")
    assert subscription_of(READER).status == "pending"
    forged = subject.replace(REPLY_CODE.search(subject)[3], "0" * 20)
    write(client, SUBSCRIBE, subject="Re: " + forged)
    assert subscription_of(READER).status == "pending"
    assert not ConsentRecord.objects.filter(action="confirmed").exists()


def test_an_expired_code_confirms_nothing(settings, newsletter, monkeypatch):
    code = reply_code(7, READER)
    assert read_reply_code(f"Re: Confirm ({code})", READER) == 7
    assert read_reply_code(f"Re: Confirm ({code})", "other@example.org") is None
    later = time.time() + (settings.MASTHEAD_NEWSLETTER_CONFIRM_DAYS + 1) * 86400
    monkeypatch.setattr(time, "time", lambda: later)
    assert read_reply_code(f"Re: Confirm ({code})", READER) is None


def test_a_reply_without_its_code_starts_nothing(client, newsletter):
    """An auto-responder that ignores RFC 3834 and drops the code answers our confirmation:
    it is a reply to our mail, so it gets no second confirmation (no loop)."""
    write(client, SUBSCRIBE, subject="subscribe")
    ours = mail.outbox[0].extra_headers["Message-ID"]
    write(client, SUBSCRIBE, subject="I am away until Monday", headers=[("In-Reply-To", ours)])
    assert len(mail.outbox) == 1
    assert subscription_of(READER).status == "pending"


def test_web_confirmations_offer_the_reply_too(client, newsletter):
    response = client.post("/newsletter/subscribe/", {"email": READER,
                                                      "newsletters": [newsletter.pk]})
    assert response.status_code == 200
    confirmation = mail.outbox[0]
    assert "reply to this email" in confirmation.body
    assert confirmation.reply_to == [SUBSCRIBE]
    assert "Auto-Submitted" not in confirmation.extra_headers  # the reader asked on the web


def test_without_a_subscribe_address_the_confirmation_is_the_plain_one(client, newsletter,
                                                                      settings):
    settings.MASTHEAD_REACH_SUBSCRIBE_EMAIL = ""
    client.post("/newsletter/subscribe/", {"email": READER, "newsletters": [newsletter.pk]})
    confirmation = mail.outbox[0]
    assert "reply to this email" not in confirmation.body
    assert not confirmation.reply_to
    assert not REPLY_CODE.search(confirmation.subject)


def test_a_tag_picks_the_newsletter(client, newsletter, russian_newsletter):
    write(client, "subscribe+fonar@lantern.example", subject="subscribe")
    assert subscription_of(READER).newsletter == russian_newsletter
    assert "Или просто ответьте на это письмо" in mail.outbox[0].body  # in its language
    write(client, "latest+ru@lantern.example", subject="новости")
    assert mail.outbox[1].subject == "Фонарь по пятницам: где нас читать"
    assert "автоматический ответ" in mail.outbox[1].body


def test_mailgun_signed_inbound_form(client, newsletter, settings):
    settings.MASTHEAD_EMAIL_WEBHOOK_PROVIDERS = ["mailgun"]
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}

    def form(signature):
        return {
            "recipient": SUBSCRIBE, "sender": READER, "from": f"A Reader <{READER}>",
            "To": SUBSCRIBE, "subject": "subscribe", "body-plain": "please",
            "stripped-text": "please",
            "message-headers": json.dumps([
                ["From", f"A Reader <{READER}>"], ["To", SUBSCRIBE], ["Subject", "subscribe"],
                ["Message-Id", f"<{uuid.uuid4()}@mail.example.net>"],
                ["X-Mailgun-Sflag", "No"],
            ]),
            **signature,
        }

    bad = mailgun_signature(key="key-someone-else")
    assert client.post("/anymail/mailgun/inbound/", form(bad)).status_code == 400
    assert not Subscription.objects.exists() and not mail.outbox
    assert client.post("/anymail/mailgun/inbound/", form(mailgun_signature())).status_code == 200
    assert mail.outbox[0].to == [READER]
    assert subscription_of(READER).status == "pending"


# --- the auto-reply: the latest edition in full, and the mirrors -------------------------------


@pytest.fixture
def sent_edition(newsletter, edition_factory):
    older = edition_factory(newsletter, subject="Last month", count=1)
    latest = edition_factory(newsletter, subject="This week in the valley", count=3,
                             full_text_first=False)
    now = timezone.now()
    Edition.objects.filter(pk=older.pk).update(status="sent",
                                               sent_at=now - timezone.timedelta(days=30))
    Edition.objects.filter(pk=latest.pk).update(status="sent", sent_at=now)
    edition_factory(newsletter, subject="A draft nobody saw")
    return latest


@pytest.fixture
def mirrors(db):
    return [
        Mirror.objects.create(url="https://d111.cloudfront.example/", kind="cdn", status="ok"),
        Mirror.objects.create(url="http://lantern2examplexxxxxxxxxxxxxxxxxxxxxxx.onion/",
                              kind="onion"),
        Mirror.objects.create(url="https://dead-mirror.example/", kind="domain",
                              status="failing"),
    ]


def test_autoreply_sends_the_latest_edition_in_full_and_the_mirrors(client, sent_edition,
                                                                    mirrors):
    incoming = f"<{uuid.uuid4()}@mail.example.net>"
    write(client, LATEST, subject="news please", message_id=incoming)

    assert len(mail.outbox) == 1
    reply = mail.outbox[0]
    assert reply.to == [READER]
    assert "This week in the valley" in reply.subject
    for item in sent_edition.articles():
        assert item.article.title.upper() in reply.body
        body = article_text(item.article)
        assert body and body in reply.body  # every article in full, not only the first
    assert "https://d111.cloudfront.example/" in reply.body
    assert "lantern2examplexxxxxxxxxxxxxxxxxxxxxxx.onion" in reply.body
    assert "dead-mirror.example" not in reply.body
    assert "A draft nobody saw" not in reply.body and "Last month" not in reply.subject
    assert SUBSCRIBE in reply.body  # how to subscribe by email
    assert header(reply, "Auto-Submitted") == "auto-replied"
    assert header(reply, "In-Reply-To") == incoming
    assert not reply.reply_to and "Reply-To" not in reply.extra_headers
    # nothing about the writer is kept
    assert not Subscriber.objects.exists() and not ConsentRecord.objects.exists()


def test_autoreply_without_an_edition_still_lists_the_mirrors(client, newsletter, mirrors):
    write(client, LATEST, subject="hello")
    assert "https://d111.cloudfront.example/" in mail.outbox[0].body


# --- loops, abuse and authentication ----------------------------------------------------------


@pytest.mark.parametrize("sender,headers", [
    (READER, [("Auto-Submitted", "auto-replied")]),
    (READER, [("Auto-Submitted", "auto-generated; owner-email=x@example.org")]),
    (READER, [("Precedence", "bulk")]),
    (READER, [("Precedence", "junk")]),
    (READER, [("Precedence", "list")]),
    (READER, [("List-Id", "<news.example.org>")]),
    (READER, [("List-Unsubscribe", "<mailto:leave@example.org>")]),
    ("MAILER-DAEMON@mail.example.net", []),
    ("postmaster@mail.example.net", []),
    ("noreply@mail.example.net", []),
    ("no-reply@mail.example.net", []),
    (LATEST, []),  # ourselves
    ("not an address", []),
    ("a@b@example.org", []),
    ("reader@localhost", []),
])
@pytest.mark.parametrize("to", [SUBSCRIBE, LATEST])
def test_automatic_list_and_invalid_senders_get_no_answer(client, newsletter, sender, headers,
                                                          to):
    response = post_postmark(client, postmark(to, subject="subscribe", sender=sender,
                                              headers=headers))
    # 400: an address anymail itself cannot parse; either way, nothing happens
    assert response.status_code in (200, 400)
    assert mail.outbox == []
    assert not Subscriber.objects.exists()


def test_auto_submitted_no_is_a_person(client, newsletter):
    write(client, LATEST, subject="hi", headers=[("Auto-Submitted", "no")])
    assert len(mail.outbox) == 1


def test_replies_are_rate_limited_per_sender(client, newsletter, settings):
    settings.MASTHEAD_REACH_EMAIL_REPLIES_PER_SENDER = 3
    for _ in range(6):
        write(client, LATEST, subject="again")
    assert len(mail.outbox) == 3
    write(client, LATEST, subject="me too", sender="other@mail.example.net")
    assert len(mail.outbox) == 4  # another sender has its own budget
    assert [m.to for m in mail.outbox].count([READER]) == 3


def test_replies_are_rate_limited_per_sender_domain(client, newsletter, settings):
    settings.MASTHEAD_REACH_EMAIL_REPLIES_PER_DOMAIN = 2
    for n in range(4):
        write(client, LATEST, subject="hi", sender=f"victim{n}@target.example")
    write(client, LATEST, subject="hi", sender="someone@elsewhere.example")
    assert [m.to[0] for m in mail.outbox] == [
        "victim0@target.example", "victim1@target.example", "someone@elsewhere.example"]


def test_the_rate_limit_keys_never_hold_the_address(client, newsletter):
    from masthead.core.state import state_store

    write(client, LATEST, subject="hi")
    store = state_store()
    raw = getattr(store, "_cache", None)  # diskcache on one box (the test set-up)
    keys = [str(key) for key in raw] if raw is not None else []
    assert any(":reach:inbound:sender:" in key for key in keys)
    assert all(READER not in key and "mail.example.net" not in key for key in keys)


def test_a_retried_webhook_answers_once(client, newsletter):
    body = postmark(LATEST, subject="hi", message_id="<same-one@mail.example.net>")
    assert post_postmark(client, body).status_code == 200
    assert post_postmark(client, body).status_code == 200
    assert len(mail.outbox) == 1


def test_an_unauthenticated_inbound_post_changes_nothing(client, newsletter, settings):
    body = postmark(SUBSCRIBE, subject="subscribe")
    assert post_postmark(client, body, auth=False).status_code == 401
    response = client.post("/anymail/postmark/inbound/", body, content_type="application/json",
                           **basic("hook:wrong"))
    assert response.status_code == 401
    settings.MASTHEAD_EMAIL_WEBHOOK_PROVIDERS = []
    assert post_postmark(client, body).status_code == 404
    assert mail.outbox == [] and not Subscriber.objects.exists()


def test_mail_to_other_addresses_is_left_alone(client, newsletter):
    write(client, "editor@lantern.example", subject="subscribe")
    assert mail.outbox == [] and not Subscriber.objects.exists()


def test_the_unsubscribe_mailto_and_email_in_never_both_act(client, newsletter):
    """"unsubscribe <token>" sent to the subscribe address: the List-Unsubscribe receiver
    unsubscribes; email-in neither starts a sign-up nor answers."""
    add_subscribers(newsletter, 1)
    token = make_unsubscribe_token(subscription_of("reader0@example.org").pk)
    write(client, SUBSCRIBE, subject=f"unsubscribe {token}", sender="reader0@example.org")
    assert subscription_of("reader0@example.org").status == "unsubscribed"
    assert mail.outbox == []
    assert Subscription.objects.count() == 1
