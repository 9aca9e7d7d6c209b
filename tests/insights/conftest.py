"""A known dataset for Insights across January–April 2026 in New York time: payments in three
currencies and three frequencies, refunds and disputes, plans started and cancelled,
newsletter sign-ups, confirmations, unsubscribes, bounces and complaints after editions, and
campaign counters — with several events just either side of a month boundary (New York is
five hours behind UTC until 8 March 2026, then four).

The expected figures are worked out by hand in ``test_aggregates.py``."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from masthead.campaigns.counters import count_events
from masthead.campaigns.models import VariantCounter
from masthead.contributions.models import Contribution, Donor, RecurringPlan
from masthead.core.crypto import email_index
from masthead.newsletters.models import (
    ConsentRecord,
    Delivery,
    DeliveryRecipient,
    Edition,
    Newsletter,
    ProviderEvent,
    Subscriber,
    Subscription,
)
from tests.campaigns.factories import make_campaign

ZONE = "America/New_York"

# Personal data that must never reach an Insights page or CSV.
SECRETS = [
    "ada.lovelace@example.org", "Ada Lovelace", "grace.hopper@example.net", "Grace Hopper",
    "alan.turing@example.com", "Katherine Johnson", "katherine@example.org",
    "pending-reader@example.org",
]


def at(text: str) -> dt.datetime:
    """An instant written in UTC: ``at("2026-03-01 03:00")``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def donor(email: str, name: str = "") -> Donor:
    d = Donor(name=name)
    d.set_email(email)
    d.save()
    return d


def pay(donor, amount, currency, frequency, paid, *, plan=None, refunded=0, dispute="",
        source="", ref=None) -> Contribution:
    return Contribution.objects.create(
        donor=donor, plan=plan, frequency=frequency, amount=amount, currency=currency,
        provider="sandbox", payment_ref=ref, paid_at=at(paid) if paid else None,
        refunded_amount=refunded, dispute_status=dispute, source=source,
        created_at=at(paid) if paid else at("2026-02-12 10:00"),
    )


def plan(donor, frequency, amount, currency, *, activated=None, cancelled=None, **facts):
    return RecurringPlan.objects.create(
        donor=donor, provider="sandbox", frequency=frequency, amount=amount,
        currency=currency, activated_at=at(activated) if activated else None,
        cancelled_at=at(cancelled) if cancelled else None, **facts,
    )


def subscribe(email, newsletter, *, requested, confirmed=None, name="") -> Subscription:
    subscriber, _ = Subscriber.objects.get_or_create(
        email_index=email_index(email), defaults={"email": email, "name": name}
    )
    subscription = Subscription.objects.create(
        subscriber=subscriber, newsletter=newsletter, created_at=at(requested),
        requested_at=at(requested),
        status="confirmed" if confirmed else "pending",
        confirmed_at=at(confirmed) if confirmed else None,
    )
    consent(subscription, "requested", requested)
    if confirmed:
        consent(subscription, "confirmed", confirmed)
    return subscription


def consent(subscription, action, when):
    ConsentRecord.objects.create(subscription=subscription,
                                 newsletter=subscription.newsletter, action=action,
                                 at=at(when), source="test")


def send(newsletter, subject, when, outcomes) -> Edition:
    edition = Edition.objects.create(newsletter=newsletter, subject=subject, status="sent",
                                     sent_at=at(when))
    delivery = Delivery.objects.create(edition=edition, status="done", subject=subject,
                                       html="<p>x</p>", text="x", total=len(outcomes))
    for subscription, state in outcomes:
        DeliveryRecipient.objects.create(delivery=delivery, subscription=subscription,
                                         state=state,
                                         sent_at=at(when) if state == "sent" else None)
    return edition


def provider_event(subscription, outcome, when, n):
    ProviderEvent.objects.create(
        esp_name="test", event_id=f"event-{n}", event_type="bounced",
        subscriber=subscription.subscriber if subscription else None,
        received_at=at(when), outcome=outcome,
    )


@pytest.fixture
def known(site, settings):
    settings.TIME_ZONE = ZONE
    d1 = donor("ada.lovelace@example.org", "Ada Lovelace")
    d2 = donor("alan.turing@example.com")
    d3 = donor("katherine@example.org", "Katherine Johnson")
    d4 = donor("d4@example.org")
    d5 = donor("d5@example.org")

    campaign = make_campaign("appeal", variants=2, name="Spring appeal")
    variant_a, variant_b = campaign.variants.order_by("sort_order")
    VariantCounter.objects.create(variant=variant_a, impressions=1000, clicks=50,
                                  conversions=5)
    VariantCounter.objects.create(variant=variant_b, impressions=800, clicks=20,
                                  conversions=2)
    count_events([(variant_a.pk, "impression")] * 10)  # not yet flushed from the state store
    source_a = f"appeal:{campaign.pk}:{variant_a.pk}"
    source_b = f"appeal:{campaign.pk}:{variant_b.pk}"

    p1 = plan(d2, "monthly", 300, "USD", activated="2026-01-15 12:00",
              cancelled="2026-03-20 12:00")
    p2 = plan(d3, "annual", 12000, "EUR")  # started by its first payment (1 March, 01:00 NY)
    plan(None, "monthly", 500, "USD", activated="2025-11-01 12:00",
         last_failed_at=at("2026-02-01 12:00"), status="past_due")
    plan(d4, "monthly", 1000, "GBP", activated="2026-02-01 05:30",  # 00:30 on 1 Feb in NY
         cancelled="2026-02-20 12:00")
    plan(d5, "monthly", 700, "USD", abandoned_at=at("2026-01-03 12:00"), status="abandoned")
    plan(None, "monthly", 200, "USD", activated="2025-12-01 12:00",
         cancelled="2026-01-31 12:00")

    pay(d1, 1000, "USD", "once", "2026-01-10 12:00", source=source_a, ref="c1")
    pay(d1, 500, "USD", "once", "2026-02-05 12:00", source=source_a, ref="c2")
    pay(d2, 300, "USD", "monthly", "2026-01-15 12:00", plan=p1, ref="c3")
    pay(d2, 300, "USD", "monthly", "2026-02-15 12:00", plan=p1, ref="c4")
    pay(d2, 300, "USD", "monthly", "2026-03-01 03:00", plan=p1, ref="c5")  # 28 Feb in NY
    pay(d3, 2000, "EUR", "once", "2026-02-10 12:00", refunded=500, ref="c6")
    pay(d3, 12000, "EUR", "annual", "2026-03-01 06:00", plan=p2, ref="c7")  # 1 Mar in NY
    pay(d4, 1000, "GBP", "once", "2026-03-10 12:00", dispute="lost", ref="c8")
    pay(d4, 700, "GBP", "once", "2026-04-01 03:30", source=source_b, ref="c9")  # 31 Mar NY
    pay(d1, 5000, "USD", "once", None, ref=None)  # never paid
    pay(d1, 800, "USD", "once", "2026-04-10 12:00", refunded=800, ref="c11")
    pay(d5, 100, "USD", "once", "2025-12-20 12:00", ref="c12")  # before the period
    pay(d5, 100, "USD", "once", "2026-01-20 12:00", ref="c13", source="newsletter")
    pay(None, 100, "USD", "once", "2026-01-25 12:00", ref="c14")
    pay(d2, 900, "USD", "once", "2026-05-01 03:59", ref="c15")  # 30 Apr 23:59 in NY
    pay(d2, 900, "USD", "once", "2026-05-01 04:00", ref="c16")  # 1 May: after the period

    lantern = Newsletter.objects.create(name="The Friday Lantern", slug="friday-lantern")
    brief = Newsletter.objects.create(name="Morning Brief", slug="morning-brief",
                                      sort_order=1)
    s1 = subscribe("grace.hopper@example.net", lantern, requested="2025-12-01 12:00",
                   confirmed="2025-12-02 12:00", name="Grace Hopper")
    s2 = subscribe("s2@example.org", lantern, requested="2026-01-10 12:00",
                   confirmed="2026-01-11 12:00")
    subscribe("pending-reader@example.org", lantern, requested="2026-01-20 12:00")
    s4 = subscribe("s4@example.org", lantern, requested="2026-02-28 23:00",
                   confirmed="2026-03-01 04:30")  # 23:30 on 28 Feb in NY
    s5 = subscribe("s5@example.org", brief, requested="2026-02-02 12:00",
                   confirmed="2026-02-03 12:00")
    s6 = subscribe("s6@example.org", brief, requested="2026-01-05 12:00",
                   confirmed="2026-01-06 12:00")

    send(lantern, "December letter", "2025-12-15 12:00", [(s1, "sent")])
    e1 = send(lantern, "February letter", "2026-02-06 12:00", [(s1, "sent"), (s2, "sent")])
    e2 = send(lantern, "=March letter", "2026-03-04 12:00",
              [(s1, "sent"), (s2, "sent"), (s4, "failed")])
    e3 = send(brief, "Brief no. 9", "2026-03-08 12:00", [(s5, "sent"), (s6, "sent")])

    provider_event(s1, "soft", "2026-02-07 12:00", 1)  # after e1
    consent(s2, "unsubscribed", "2026-03-05 12:00")  # after e2, not e1
    s2.status, s2.unsubscribed_at = "unsubscribed", at("2026-03-05 12:00")
    s2.save()
    provider_event(s5, "hard", "2026-03-10 12:00", 2)  # after e3
    consent(s5, "suppressed", "2026-03-10 12:00")
    provider_event(s6, "complaint", "2026-04-02 12:00", 3)  # after e3
    consent(s6, "suppressed", "2026-04-02 12:00")
    provider_event(None, "unknown message", "2026-03-09 12:00", 4)

    return SimpleNamespace(lantern=lantern, brief=brief, e1=e1, e2=e2, e3=e3,
                           campaign=campaign, variant_a=variant_a, variant_b=variant_b)
