"""The delivery engine against a real SMTP server (aiosmtpd): every recipient once, the
ledger's states, retries with backoff, permanent failures, pipelining and its fallback,
atomic claims, rate limiting and pausing."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from masthead.newsletters.delivery import (
    RateLimiter,
    claim_batch,
    delivery_pause,
    delivery_progress,
    delivery_resume,
    delivery_run,
    delivery_start,
    recover_stalled,
)
from masthead.newsletters.models import Delivery, DeliveryRecipient, Edition, Subscriber

from .conftest import add_subscribers, subscription_of

pytestmark = pytest.mark.django_db


def LEASE(settings) -> timedelta:  # noqa: N802
    return timedelta(seconds=settings.MASTHEAD_NEWSLETTER_LEASE_SECONDS)


@pytest.mark.parametrize("pipelining", [True, False])
def test_every_confirmed_subscriber_gets_one_personalised_message(
    smtp_server, newsletter, edition_factory, settings, pipelining
):
    server = smtp_server(pipelining=pipelining)
    settings.MASTHEAD_NEWSLETTER_CONNECTIONS = 2
    settings.MASTHEAD_NEWSLETTER_BATCH = 40
    addresses = add_subscribers(newsletter, 120, names=True)
    edition = edition_factory(newsletter)
    delivery = delivery_start(edition, enqueue=False)
    assert delivery.total == 120
    report = delivery_run(delivery.pk)
    assert report.finished and report.sent == 120
    assert server.counts() == {address: 1 for address in addresses}
    assert server.connections <= 2  # connections are reused, not one per message
    edition.refresh_from_db()
    assert edition.status == Edition.Status.SENT and edition.sent_at
    progress = delivery_progress(Delivery.objects.get(pk=delivery.pk))
    assert progress["sent"] == 120 and progress["remaining"] == 0 and progress["status"] == "done"
    # Personalised: each message greets and unsubscribes its own reader.
    messages = server.parsed()
    by_to = {m["To"]: m for m in messages}
    one = by_to["reader7@example.org"]
    text = one.get_body(("plain",)).get_content()
    assert "Hello Name7," in text
    assert one["List-Unsubscribe"] != by_to["reader8@example.org"]["List-Unsubscribe"]


def test_lines_starting_with_a_dot_arrive_intact(smtp_server, newsletter, edition_factory):
    server = smtp_server()
    add_subscribers(newsletter, 1)
    newsletter.greeting = "{name}"
    newsletter.save()
    from masthead.newsletters.models import Subscriber

    Subscriber.objects.update(name=".Dot")
    edition = edition_factory(newsletter)
    edition.intro = "<p>.A paragraph that starts with a dot.</p><p>..and two.</p>"
    edition.save()
    assert delivery_run(delivery_start(edition, enqueue=False).pk).finished
    text = server.parsed()[0].get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "\n.Dot\n" in text
    assert "\n.A paragraph that starts with a dot.\n" in text and "\n..and two.\n" in text


def test_transient_failures_are_retried_with_backoff_and_permanent_ones_recorded(
    smtp_server, newsletter, edition_factory, settings
):
    server = smtp_server()
    settings.MASTHEAD_NEWSLETTER_RETRY_SECONDS = 1
    add_subscribers(newsletter, 10)
    server.refuse["reader3@example.org"] = ["451 4.3.0 Mailbox busy, try later"]
    server.refuse["reader5@example.org"] = ["550 5.1.1 No such user"]
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    started = time.monotonic()
    report = delivery_run(delivery.pk)
    assert report.finished
    assert time.monotonic() - started >= 0.9  # waited for the backoff
    counts = server.counts()
    assert counts["reader3@example.org"] == 1 and "reader5@example.org" not in counts
    assert len(counts) == 9
    failed = DeliveryRecipient.objects.get(state="failed")
    assert "550" in failed.error and failed.attempts == 1
    retried = DeliveryRecipient.objects.get(subscription=subscription_of("reader3@example.org"))
    assert retried.state == "sent" and retried.attempts == 2
    # A hard bounce at RCPT suppresses the address for every future send.
    assert Subscriber.objects.filter(suppressed_at__isnull=False).count() == 1


def test_gives_up_after_the_last_attempt(smtp_server, newsletter, edition_factory, settings):
    server = smtp_server()
    settings.MASTHEAD_NEWSLETTER_RETRY_SECONDS = 0
    settings.MASTHEAD_NEWSLETTER_MAX_ATTEMPTS = 3
    add_subscribers(newsletter, 3)
    server.refuse["reader1@example.org"] = ["421 4.7.0 Try again later"] * 5
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    assert delivery_run(delivery.pk).finished
    failed = DeliveryRecipient.objects.get(state="failed")
    assert failed.attempts == 3 and "gave up after 3 tries" in failed.error


def test_unsubscribed_meanwhile_is_skipped(smtp_server, newsletter, edition_factory):
    server = smtp_server()
    add_subscribers(newsletter, 5)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    from masthead.newsletters.models import Subscription

    gone = Subscription.objects.order_by("pk").first()
    gone.status = Subscription.Status.UNSUBSCRIBED
    gone.save()
    assert delivery_run(delivery.pk).finished
    assert "reader0@example.org" not in server.counts() and len(server.counts()) == 4
    assert DeliveryRecipient.objects.get(subscription=gone).state == "skipped"


def test_only_confirmed_unsuppressed_subscribers_are_in_the_ledger(newsletter, edition_factory):
    add_subscribers(newsletter, 4)
    add_subscribers(newsletter, 2, prefix="pending")
    from masthead.newsletters.models import Subscription

    Subscription.objects.filter(subscriber__in=Subscriber.objects.filter(
        pk__in=Subscription.objects.order_by("-pk").values("subscriber")[:2])).update(status="pending")
    Subscriber.objects.filter(pk=Subscriber.objects.order_by("pk").first().pk).update(
        suppressed_at=timezone.now())
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    assert delivery.total == 3


def test_claims_never_overlap_and_stale_claims_are_taken_over(
    newsletter, edition_factory, settings
):
    add_subscribers(newsletter, 30)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    first = claim_batch(delivery.pk, "worker-a", 10)
    second = claim_batch(delivery.pk, "worker-b", 10)
    assert len(first) == len(second) == 10 and not set(first) & set(second)
    # worker-a dies: after the lease its rows are claimable again, unlike worker-b's.
    DeliveryRecipient.objects.filter(claimed_by="worker-a").update(
        claimed_at=timezone.now() - LEASE(settings) - timedelta(seconds=1))
    third = claim_batch(delivery.pk, "worker-c", 30)
    assert set(first) <= set(third) and not set(second) & set(third)
    assert len(third) == 20


def test_the_ledger_is_made_once_and_an_edition_is_sent_once(newsletter, edition_factory):
    from masthead.newsletters.delivery import DeliveryError

    add_subscribers(newsletter, 3)
    edition = edition_factory(newsletter)
    delivery_start(edition, enqueue=False)
    with pytest.raises(DeliveryError):
        delivery_start(edition, enqueue=False)
    assert DeliveryRecipient.objects.count() == 3


def test_pause_and_resume(smtp_server, newsletter, edition_factory, settings):
    server = smtp_server()
    add_subscribers(newsletter, 6)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    delivery_pause(delivery)
    assert not delivery_run(delivery.pk).finished and not server.counts()
    delivery_resume(delivery)
    assert delivery_run(delivery.pk).finished and len(server.counts()) == 6


def test_rate_limit(smtp_server, newsletter, edition_factory, settings):
    smtp_server()
    settings.MASTHEAD_NEWSLETTER_RATE = 40
    add_subscribers(newsletter, 80)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    started = time.monotonic()
    assert delivery_run(delivery.pk).finished
    assert time.monotonic() - started >= 1.0  # 80 messages at 40/s, the first 40 at once


def test_rate_limiter_spreads_messages():
    limiter = RateLimiter(100)
    started = time.monotonic()
    for _ in range(30):
        limiter.acquire(10)
    assert 1.8 <= time.monotonic() - started <= 6.0


def test_recovery_job_reenqueues_a_stalled_delivery(newsletter, edition_factory, settings):
    from django_tasks_db.models import DBTaskResult

    add_subscribers(newsletter, 2)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    assert recover_stalled() == []
    Delivery.objects.filter(pk=delivery.pk).update(
        heartbeat_at=timezone.now() - LEASE(settings) - timedelta(seconds=5))
    assert recover_stalled() == [delivery.pk]
    assert recover_stalled() == []  # once per lease
    assert DBTaskResult.objects.filter(args_kwargs__args=[delivery.pk]).count() == 1


def test_an_esp_through_django_anymail(newsletter, edition_factory, settings):
    from django.core import mail

    from . import esp

    settings.EMAIL_BACKEND = "tests.newsletters.esp.FlakyESPBackend"
    settings.ANYMAIL = {}
    settings.MASTHEAD_NEWSLETTER_RETRY_SECONDS = 0
    esp._failed_once.clear()
    addresses = add_subscribers(newsletter, 5)
    delivery = delivery_start(edition_factory(newsletter), enqueue=False)
    assert delivery_run(delivery.pk).finished
    delivered = sorted(m.to[0] for m in mail.outbox if m.to[0] != esp.REJECTED)
    assert delivered == sorted(a for a in addresses if a != esp.REJECTED)  # flaky: once
    message = next(m for m in mail.outbox if m.to == [addresses[0]])
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.alternatives[0].mimetype == "text/html"
    rejected = DeliveryRecipient.objects.get(subscription=subscription_of(esp.REJECTED))
    assert rejected.state == "failed"
    assert Subscriber.objects.get(pk=rejected.subscription.subscriber_id).suppressed
    flaky = DeliveryRecipient.objects.get(subscription=subscription_of(esp.FLAKY))
    assert flaky.state == "sent" and flaky.attempts == 2
