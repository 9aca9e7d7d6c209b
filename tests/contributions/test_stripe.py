"""Stripe through the real ``stripe`` SDK against a local stand-in of Stripe's API, with
webhooks signed exactly as Stripe signs them."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from masthead.contributions.models import (
    Contribution,
    ContributionStatus,
    PlanStatus,
    ProviderEvent,
    RecurringPlan,
)
from masthead.contributions.tasks import reconcile

from .conftest import WHSEC, manage_link_from
from .standins import stripe_signature

pytestmark = pytest.mark.django_db


def deliver(client, event: dict, *, secret: str = WHSEC, timestamp: int | None = None):
    body = json.dumps(event).encode()
    return client.post(
        reverse("contributions:webhook", args=["stripe"]),
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_signature(body, secret, timestamp),
    )


def start(client, **fields):
    data = {"frequency": "once", "amount": "2500", "currency": "EUR", "provider": "stripe"}
    data.update(fields)
    return client.post(reverse("contributions:checkout"), data)


def test_one_time_gift_via_checkout_session(client, site, stripe_api, on_commit):
    response = start(client)
    assert response.status_code == 303
    assert response["Location"].startswith(stripe_api.url + "/pay/cs_test_")
    contribution = Contribution.objects.get()
    [create] = stripe_api.calls("POST", "/v1/checkout/sessions")
    assert create["headers"]["Idempotency-Key"] == f"masthead-checkout-{contribution.pk}"
    form = create["body"]
    assert form["mode"] == "payment" and form["submit_type"] == "donate"
    assert form["line_items[0][price_data][unit_amount]"] == "2500"
    assert form["line_items[0][price_data][currency]"] == "eur"
    assert form["metadata[contribution_id]"] == str(contribution.pk)
    assert form["success_url"].endswith("/thanks/")
    assert contribution.checkout_ref == create_session_id(stripe_api)

    events = stripe_api.pay(contribution.checkout_ref, "reader@example.net", "Rea Der")
    with on_commit():
        for event in events:
            assert deliver(client, event).status_code == 200
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.SUCCEEDED
    assert contribution.payment_ref.startswith("pi_")
    assert contribution.donor.email == "reader@example.net"
    assert len(mail.outbox) == 1 and "€25" in mail.outbox[0].body

    # Stripe retries (a new transmission, signed later): the same event again changes
    # nothing and sends nothing.
    with on_commit():
        again = deliver(client, events[0], timestamp=int(time.time()) + 5)
    assert again.status_code == 200 and again.json()["status"] == "processed"
    assert len(mail.outbox) == 1
    assert ProviderEvent.objects.filter(provider="stripe").count() == 2

    # A refund recorded from Stripe's webhook.
    refund = stripe_api.event(
        "charge.refunded",
        {"id": "ch_1", "payment_intent": contribution.payment_ref, "amount_refunded": 2500},
    )
    assert deliver(client, refund).status_code == 200
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.REFUNDED


def create_session_id(stripe_api) -> str:
    return next(iter(stripe_api.sessions))


def test_monthly_plan_renewals_dunning_and_cancel(client, site, stripe_api, on_commit, settings):
    settings.MASTHEAD_DUNNING_MAX_TRIES = 3
    response = start(client, frequency="monthly", amount="500", currency="USD")
    assert response.status_code == 303
    plan = RecurringPlan.objects.get()
    first = Contribution.objects.get()
    form = stripe_api.calls("POST", "/v1/checkout/sessions")[0]["body"]
    assert form["mode"] == "subscription"
    assert form["line_items[0][price_data][recurring][interval]"] == "month"
    assert form["subscription_data[metadata][plan_id]"] == str(plan.pk)

    now = int(time.time())
    events = stripe_api.pay(first.checkout_ref, "monthly@example.org", created=now - 100)
    with on_commit():
        for event in events:
            assert deliver(client, event).status_code == 200
    plan.refresh_from_db()
    first.refresh_from_db()
    assert plan.status == PlanStatus.ACTIVE and plan.provider_ref.startswith("sub_")
    assert first.status == ContributionStatus.SUCCEEDED and first.payment_ref.endswith("_1")
    assert Contribution.objects.count() == 1  # invoice.paid for the first payment is the same
    assert len(mail.outbox) == 1

    sub = plan.provider_ref
    with on_commit():
        deliver(client, stripe_api.renewal(sub, 2, created=now - 50))
    assert Contribution.objects.filter(is_renewal=True, status="succeeded").count() == 1
    assert len(mail.outbox) == 2  # a receipt for each payment

    with on_commit():
        deliver(client, stripe_api.renewal(sub, 3, paid=False, attempt=1, created=now - 10))
    plan.refresh_from_db()
    assert plan.status == PlanStatus.PAST_DUE and plan.failed_attempts == 1
    dunning = mail.outbox[-1]
    assert "did not go through" in dunning.subject
    assert f"{stripe_api.url}/portal/" in dunning.body  # the fix-payment link
    assert stripe_api.calls("POST", "/v1/billing_portal/sessions")

    # The donor asks for a manage link and cancels in one step, at Stripe too.
    with on_commit():
        client.post(reverse("contributions:manage_request"), {"email": "MONTHLY@example.org"})
    link = manage_link_from(mail.outbox[-1].body).replace("http://testserver", "")
    with on_commit():
        response = client.post(link, {"plan": plan.pk, "action": "cancel", "confirm": "yes"})
    assert response.status_code == 200
    [cancel] = stripe_api.calls("DELETE", f"/v1/subscriptions/{sub}")
    assert cancel["headers"]["Idempotency-Key"] == f"masthead-cancel-{plan.pk}"
    plan.refresh_from_db()
    assert plan.status == PlanStatus.CANCELLED


def test_change_amount_and_frequency_at_stripe(client, site, stripe_api, on_commit):
    start(client, frequency="monthly", amount="1000", currency="GBP")
    first = Contribution.objects.get()
    with on_commit():
        for event in stripe_api.pay(first.checkout_ref, "change@example.org"):
            deliver(client, event)
    plan = RecurringPlan.objects.get()
    from masthead.contributions import giving

    giving.change_plan(plan, amount=2000, frequency="annual")
    [update] = stripe_api.calls("POST", f"/v1/subscriptions/{plan.provider_ref}")
    assert update["body"]["items[0][price_data][unit_amount]"] == "2000"
    assert update["body"]["items[0][price_data][recurring][interval]"] == "year"
    assert update["body"]["proration_behavior"] == "none"
    plan.refresh_from_db()
    assert (plan.amount, plan.frequency) == (2000, "annual")
    # Stripe's own customer.subscription.updated, arriving later, agrees; an older one loses.
    sub = stripe_api.subscriptions[plan.provider_ref]
    old = stripe_api.event("customer.subscription.updated", sub, created=int(time.time()) - 3600)
    old["data"]["object"]["items"]["data"][0]["price"]["unit_amount"] = 1000
    deliver(client, old)
    plan.refresh_from_db()
    assert plan.amount == 2000


def test_forged_old_and_malformed_webhooks_change_nothing(client, site, stripe_api):
    start(client)
    contribution = Contribution.objects.get()
    [event] = stripe_api.pay(contribution.checkout_ref, "x@example.org")[:1]
    url = reverse("contributions:webhook", args=["stripe"])
    body = json.dumps(event).encode()
    wrong = deliver(client, event, secret="whsec_wrong")
    assert wrong.status_code == 400 and "Signature" in wrong.json()["error"]
    stale = deliver(client, event, timestamp=int(time.time()) - 3600)
    assert stale.status_code == 400
    missing = client.post(url, body, content_type="application/json")
    assert missing.status_code == 400
    tampered = client.post(
        url,
        body.replace(b"x@example.org", b"y@example.org"),
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_signature(body, WHSEC),
    )
    assert tampered.status_code == 400
    garbage = b"{not json"
    bad_json = client.post(
        url,
        garbage,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_signature(garbage, WHSEC),
    )
    assert bad_json.status_code == 400
    live = dict(event, livemode=True)  # a live-mode event sent to a test-mode site
    assert deliver(client, live).status_code == 400
    unknown = client.post(
        reverse("contributions:webhook", args=["nosuch"]), body, content_type="application/json"
    )
    assert unknown.status_code == 404
    assert client.get(url).status_code == 405
    assert ProviderEvent.objects.count() == 0
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.PENDING


def test_stripe_refusal_shows_the_form_again_and_charges_nothing(client, site, stripe_api):
    stripe_api.fail_next["/v1/checkout/sessions"] = 10
    response = start(client)
    assert response.status_code == 503
    assert "could not reach the payment provider" in response.content.decode()
    contribution = Contribution.objects.get()
    assert contribution.status == ContributionStatus.FAILED and not contribution.paid_at


def test_reconcile_asks_stripe_about_stuck_pending(client, site, stripe_api, on_commit):
    start(client)
    contribution = Contribution.objects.get()
    stripe_api.pay(contribution.checkout_ref, "late@example.org")  # webhooks never arrive
    Contribution.objects.filter(pk=contribution.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=2)
    )
    with on_commit():
        report = reconcile()
    assert report["checked"] == 1 and report["updated"] == 1
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.SUCCEEDED
    assert len(mail.outbox) == 1
    assert stripe_api.calls("GET", f"/v1/checkout/sessions/{contribution.checkout_ref}")


def test_thanks_page_while_stripe_has_not_confirmed_yet(client, site, stripe_api):
    from masthead.contributions.tokens import checkout_token

    start(client, frequency="monthly", amount="500", currency="USD")
    contribution = Contribution.objects.get()
    thanks = client.get(reverse("contributions:thanks", args=[checkout_token(contribution)]))
    html = thanks.content.decode()
    assert "We are confirming your contribution of $5" in html
    assert '<meta http-equiv="refresh" content="5">' in html  # until the webhook arrives
    assert 'data-frequency="monthly"' in html
    assert "no-store" in thanks["Cache-Control"] and thanks["Referrer-Policy"] == "no-referrer"


def test_reconcile_fetches_renewals_whose_webhooks_never_came(client, site, stripe_api, on_commit):
    """A renewal Stripe charged (and a later failure, and the end of the subscription) that
    no webhook reported: reconciliation asks about the overdue plan and the ledger applies
    what Stripe answers, with a receipt, in the history, once."""
    start(client, frequency="monthly", amount="500", currency="USD")
    first = Contribution.objects.get()
    now = int(time.time())
    with on_commit():
        paid = stripe_api.pay(first.checkout_ref, "quiet@example.org", created=now - 41 * 86400)
        for event in paid:
            deliver(client, event)
    plan = RecurringPlan.objects.get()
    sub = plan.provider_ref
    RecurringPlan.objects.filter(pk=plan.pk).update(
        last_paid_at=timezone.now() - dt.timedelta(days=40)
    )
    stripe_api.renewal(sub, 2, created=now - 9 * 86400, payment_intent="pi_quiet_2")
    receipts = len(mail.outbox)
    with on_commit():
        report = reconcile()
    assert report["plans checked"] == 1 and report["updated"] == 1
    [listing] = stripe_api.calls("GET", "/v1/invoices")
    assert listing["query"]["subscription"] == sub
    renewal = Contribution.objects.get(is_renewal=True)
    assert renewal.status == ContributionStatus.SUCCEEDED and renewal.charge_ref == "pi_quiet_2"
    assert renewal.history.get().cause == "reconcile"
    assert len(mail.outbox) == receipts + 1 and mail.outbox[-1].subject.startswith("Receipt")
    plan.refresh_from_db()
    assert plan.status == PlanStatus.ACTIVE and reconcile()["plans checked"] == 0  # not due

    # Later: Stripe ended the subscription after failed payments; no webhook came either.
    stripe_api.subscriptions[sub]["status"] = "canceled"
    stripe_api.subscriptions[sub]["canceled_at"] = now - 3600
    RecurringPlan.objects.filter(pk=plan.pk).update(
        last_paid_at=timezone.now() - dt.timedelta(days=40), last_checked_at=None
    )
    with on_commit():
        reconcile()
    plan.refresh_from_db()
    assert plan.status == PlanStatus.CANCELLED
    assert plan.history.last().cause == "reconcile"
    # Asking again finds the same answers: nothing new is applied or sent.
    RecurringPlan.objects.filter(pk=plan.pk).update(last_checked_at=None)
    sent = len(mail.outbox)
    with on_commit():
        reconcile()
    assert len(mail.outbox) == sent and Contribution.objects.filter(is_renewal=True).count() == 1
