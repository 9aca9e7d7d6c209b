"""Replays: a realistic stream of Stripe events, each delivered 2–3 times in shuffled order,
leaves contributions, plans and totals identical to one in-order delivery.

The stream covers one-off gifts (paid, refunded, disputed and lost), an abandoned checkout,
and two monthly plans: renewals, a renewal that fails twice and then succeeds on retry, an
amount change (with an older, stale update arriving late) and a cancellation. Hypothesis
picks the shuffles and the number of copies; the test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import random
import time

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from masthead.contributions import giving, ledger, reports
from masthead.contributions.models import Contribution, ProviderEvent, RecurringPlan

from .conftest import WHSEC
from .standins import StripeStandIn, history_summary, stripe_signature

pytestmark = pytest.mark.django_db


def build_stream(standin: StripeStandIn) -> list[dict]:
    """Create the pending records (through the real checkout path) and the events Stripe
    would send for them, in the order it would send them."""
    clock = iter(range(int(time.time()) - 100_000, int(time.time()), 60))
    events: list[dict] = []

    def start(frequency, amount, currency):
        contribution, _url = giving.start_contribution(
            frequency=frequency,
            amount=amount,
            currency=currency,
            provider_key="stripe",
            base_url="http://testserver",
        )
        return contribution

    gift_paid = start("once", 2500, "EUR")
    gift_refunded = start("once", 1000, "USD")
    gift_disputed = start("once", 5000, "GBP")
    gift_abandoned = start("once", 700, "USD")
    plan_a = start("monthly", 500, "USD")
    plan_b = start("monthly", 1000, "EUR")

    events += standin.pay(gift_paid.checkout_ref, "a@example.org", "A", created=next(clock))
    events += standin.pay(gift_refunded.checkout_ref, "b@example.org", created=next(clock))
    events += standin.pay(gift_disputed.checkout_ref, "c@example.org", created=next(clock))
    events += standin.pay(plan_a.checkout_ref, "d@example.org", "D", created=next(clock))
    events += standin.pay(plan_b.checkout_ref, "e@example.org", created=next(clock))
    session = standin.sessions[gift_abandoned.checkout_ref]
    session["status"] = "expired"
    events.append(standin.event("checkout.session.expired", session, next(clock)))

    refunded_pi = standin.sessions[gift_refunded.checkout_ref]["payment_intent"]
    events.append(
        standin.event(
            "charge.refunded",
            {"id": "ch_r1", "payment_intent": refunded_pi, "amount_refunded": 400},
            next(clock),
        )
    )
    events.append(
        standin.event(
            "charge.refunded",
            {"id": "ch_r1", "payment_intent": refunded_pi, "amount_refunded": 1000},
            next(clock),
        )
    )
    disputed_pi = standin.sessions[gift_disputed.checkout_ref]["payment_intent"]
    events.append(
        standin.event(
            "charge.dispute.created",
            {"id": "dp_1", "payment_intent": disputed_pi, "status": "needs_response"},
            next(clock),
        )
    )
    events.append(
        standin.event(
            "charge.dispute.closed",
            {"id": "dp_1", "payment_intent": disputed_pi, "status": "lost"},
            next(clock),
        )
    )

    sub_a = standin.sessions[plan_a.checkout_ref]["subscription"]
    sub_b = standin.sessions[plan_b.checkout_ref]["subscription"]
    events.append(standin.renewal(sub_a, 2, created=next(clock)))
    events.append(standin.renewal(sub_a, 3, created=next(clock)))
    events.append(standin.renewal(sub_b, 2, paid=False, attempt=1, created=next(clock)))
    events.append(standin.renewal(sub_b, 2, paid=False, attempt=2, created=next(clock)))
    events.append(standin.renewal(sub_b, 2, paid=True, attempt=3, created=next(clock)))

    stale_time, fresh_time = next(clock), next(clock)
    sub = standin.subscriptions[sub_b]
    sub["items"]["data"][0]["price"]["unit_amount"] = 1500
    stale = standin.event("customer.subscription.updated", sub, stale_time)
    sub["items"]["data"][0]["price"]["unit_amount"] = 2000
    fresh = standin.event("customer.subscription.updated", sub, fresh_time)
    events += [stale, fresh]
    events.append(standin.renewal(sub_b, 3, created=next(clock)))
    sub["status"] = "canceled"
    sub["canceled_at"] = next(clock)
    events.append(standin.event("customer.subscription.deleted", sub, sub["canceled_at"]))
    return events


def deliver_all(events: list[dict]) -> None:
    """Deliver each event as Stripe would: every copy of an event is its own transmission,
    signed at its own time (an exact replay of one transmission is refused)."""
    now = int(time.time())
    copies: dict[str, int] = {}
    for event in events:
        body = json.dumps(event).encode()
        copy = copies[event["id"]] = copies.get(event["id"], -1) + 1
        ledger.receive_webhook(
            "stripe", body, {"Stripe-Signature": stripe_signature(body, WHSEC, now + copy)}
        )


def snapshot() -> dict:
    contributions = sorted(
        (
            c.checkout_ref or "",
            c.payment_ref or "",
            c.status,
            c.amount,
            c.currency,
            c.frequency,
            c.is_renewal,
            bool(c.paid_at),
            c.refunded_amount,
            c.dispute_status,
            c.attempts,
            c.donor.email if c.donor else None,
            c.plan.provider_ref if c.plan else None,
        )
        for c in Contribution.objects.select_related("donor", "plan")
    )
    plans = sorted(
        (
            p.provider_ref or "",
            p.status,
            p.amount,
            p.currency,
            p.frequency,
            p.failed_attempts,
            p.donor.email if p.donor else None,
            p.payments.count(),
        )
        for p in RecurringPlan.objects.select_related("donor")
    )
    totals = reports.totals_by_currency(Contribution.objects.all())
    return {
        "contributions": contributions,
        "plans": plans,
        "totals": totals,
        "history": history_summary(),
    }


def run_in_savepoint(func):
    sid = transaction.savepoint()
    try:
        func()
        return snapshot()
    finally:
        transaction.savepoint_rollback(sid)


@hsettings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rng=st.randoms(use_true_random=False))
def test_shuffled_duplicated_delivery_equals_in_order(stripe_api, site, rng: random.Random):
    with transaction.atomic():
        events = build_stream(stripe_api)
        expected = run_in_savepoint(lambda: deliver_all(events))
        # Sanity: the in-order result is the story we told.
        statuses = sorted(c[2] for c in expected["contributions"])
        assert statuses.count("succeeded") == 7, expected
        assert {"refunded", "disputed", "abandoned"} <= set(statuses)
        assert sorted(p[1] for p in expected["plans"]) == ["active", "cancelled"]
        assert any(p[2] == 2000 and p[1] == "cancelled" for p in expected["plans"])
        assert all(all(row[2:6]) for row in expected["history"]), expected["history"]

        stream = [e for e in events for _ in range(rng.randint(2, 3))]
        rng.shuffle(stream)

        def replay():
            deliver_all(stream)
            assert ProviderEvent.objects.count() == len(events)

        assert run_in_savepoint(replay) == expected
        transaction.set_rollback(True)
