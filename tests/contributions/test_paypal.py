"""PayPal through PayPal's official ``paypal-server-sdk`` against a local stand-in of its API
(OAuth, Orders v2, Catalog products, Billing plans, Subscriptions v1, its signing
certificate), with webhooks RSA-signed the way PayPal signs them."""

from __future__ import annotations

import datetime as dt
import json
import time
from urllib.parse import urlsplit

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
from masthead.contributions.tokens import checkout_token

from .conftest import WEBHOOK_ID, manage_link_from
from .standins import PayPalStandIn, _iso

pytestmark = pytest.mark.django_db


def deliver(client, standin, event, *, webhook_id=WEBHOOK_ID, when=None, headers=None):
    body, signed = standin.signed(event, webhook_id, when)
    extra = {f"HTTP_{k.replace('-', '_')}": v for k, v in (headers or signed).items()}
    return client.post(
        reverse("contributions:webhook", args=["paypal"]),
        body,
        content_type="application/json",
        **extra,
    )


def start(client, **fields):
    data = {"frequency": "once", "amount": "2500", "currency": "USD", "provider": "paypal"}
    data.update(fields)
    return client.post(reverse("contributions:checkout"), data)


def test_one_time_gift_via_orders(client, site, paypal_api, on_commit):
    response = start(client)
    assert response.status_code == 303
    contribution = Contribution.objects.get()
    assert response["Location"] == f"{paypal_api.url}/checkoutnow/{contribution.checkout_ref}"
    [create] = paypal_api.calls("POST", "/v2/checkout/orders")
    assert create["headers"]["PayPal-Request-Id"] == f"masthead-order-{contribution.pk}"
    unit = create["body"]["purchase_units"][0]
    assert unit["amount"] == {"currency_code": "USD", "value": "25.00"}
    assert unit["custom_id"] == f"c{contribution.pk}"
    assert paypal_api.calls("POST", "/v1/oauth2/token")

    paypal_api.approve_order(contribution.checkout_ref, "payer@example.com", "Pat Payer")
    token = checkout_token(contribution)
    with on_commit():
        back = client.get(
            reverse("contributions:return", args=[token]),
            {"token": contribution.checkout_ref, "PayerID": "PAYER1"},
        )
    assert back.status_code == 302 and back["Location"].endswith("/thanks/")
    [capture] = paypal_api.calls("POST", f"/v2/checkout/orders/{contribution.checkout_ref}/capture")
    assert capture["headers"]["PayPal-Request-Id"] == f"masthead-capture-{contribution.pk}"
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.SUCCEEDED
    assert contribution.payment_ref.startswith("CAPTURE")
    assert contribution.donor.name == "Pat Payer"
    assert len(mail.outbox) == 1 and "$25" in mail.outbox[0].body

    # PayPal's own webhook for the same capture, twice: nothing doubles.
    event = paypal_api.capture_event(contribution.checkout_ref)
    with on_commit():
        assert deliver(client, paypal_api, event).status_code == 200
        assert deliver(client, paypal_api, event).status_code == 200
    assert Contribution.objects.count() == 1 and len(mail.outbox) == 1
    assert ProviderEvent.objects.filter(event_id=event["id"]).count() == 1
    # Verified here with PayPal's certificate, fetched once and kept.
    assert len(paypal_api.calls("GET", "/v1/notifications/certs/")) == 1


def test_monthly_via_subscriptions_renewal_failure_and_cancel(client, site, paypal_api, on_commit):
    response = start(client, frequency="monthly", amount="500")
    assert response.status_code == 303
    plan = RecurringPlan.objects.get()
    first = Contribution.objects.get()
    assert plan.provider_ref == first.checkout_ref and plan.provider_ref.startswith("I-")
    assert urlsplit(response["Location"]).path == f"/subscribe/{plan.provider_ref}"
    [product] = paypal_api.calls("POST", "/v1/catalogs/products")
    [billing_plan] = paypal_api.calls("POST", "/v1/billing/plans")
    cycle = billing_plan["body"]["billing_cycles"][0]
    assert cycle["frequency"]["interval_unit"] == "MONTH"
    assert cycle["pricing_scheme"]["fixed_price"] == {"value": "5.00", "currency_code": "USD"}
    assert billing_plan["body"]["product_id"].startswith("PROD-")
    [subscription] = paypal_api.calls("POST", "/v1/billing/subscriptions")
    assert subscription["body"]["custom_id"] == f"p{plan.pk}"
    assert subscription["headers"]["PayPal-Request-Id"] == f"masthead-subscription-{plan.pk}"

    activated, sale = paypal_api.approve_subscription(plan.provider_ref, "sub@example.com")
    with on_commit():
        client.get(reverse("contributions:return", args=[checkout_token(first)]))
        assert deliver(client, paypal_api, activated).status_code == 200
        assert deliver(client, paypal_api, sale).status_code == 200
    plan.refresh_from_db()
    first.refresh_from_db()
    assert plan.status == PlanStatus.ACTIVE and plan.donor.email == "sub@example.com"
    assert (
        first.status == ContributionStatus.SUCCEEDED and first.payment_ref == sale["resource"]["id"]
    )

    price = {"value": "5.00", "currency_code": "USD"}
    with on_commit():
        deliver(client, paypal_api, paypal_api.sale(plan.provider_ref, price, 2))
    assert (
        Contribution.objects.filter(plan=plan, is_renewal=True, paid_at__isnull=False).count() == 1
    )

    failed = paypal_api.event(
        "BILLING.SUBSCRIPTION.PAYMENT.FAILED",
        {
            "id": plan.provider_ref,
            "custom_id": f"p{plan.pk}",
            "status": "ACTIVE",
            "billing_info": {
                "failed_payments_count": 1,
                "last_failed_payment": {
                    "amount": {"currency_code": "USD", "value": "5.00"},
                    "time": _iso(time.time() + 5),
                },
            },
        },
    )
    with on_commit():
        deliver(client, paypal_api, failed)
    plan.refresh_from_db()
    assert plan.status == PlanStatus.PAST_DUE
    assert "did not go through" in mail.outbox[-1].subject

    # Another reader giving the same amount monthly reuses the billing plan.
    start(client, frequency="monthly", amount="500")
    assert len(paypal_api.calls("POST", "/v1/billing/plans")) == 1
    assert len(paypal_api.calls("POST", "/v1/catalogs/products")) == 1
    assert product

    with on_commit():
        client.post(reverse("contributions:manage_request"), {"email": "sub@example.com"})
    link = manage_link_from(mail.outbox[-1].body).replace("http://testserver", "")
    with on_commit():
        done = client.post(link, {"plan": plan.pk, "action": "cancel", "confirm": "yes"})
    assert done.status_code == 200
    assert paypal_api.calls("POST", f"/v1/billing/subscriptions/{plan.provider_ref}/cancel")
    assert paypal_api.subscriptions[plan.provider_ref]["status"] == "CANCELLED"
    plan.refresh_from_db()
    assert plan.status == PlanStatus.CANCELLED


def test_forged_and_replayed_paypal_webhooks_are_refused(client, site, paypal_api):
    start(client)
    contribution = Contribution.objects.get()
    paypal_api.approve_order(contribution.checkout_ref, "x@example.com")
    # Capture at the stand-in without telling us, to get a realistic capture event.
    paypal_api.dispatch(
        "POST",
        f"/v2/checkout/orders/{contribution.checkout_ref}/capture",
        {"Authorization": "Bearer A21-standin"},
        b"",
    )
    event = paypal_api.capture_event(contribution.checkout_ref)

    other = PayPalStandIn()  # another key: a forger's signature
    try:
        _body, forged_headers = other.signed(event, WEBHOOK_ID)
    finally:
        other.close()
    assert deliver(client, paypal_api, event, headers=forged_headers).status_code == 400
    assert deliver(client, paypal_api, event, webhook_id="WH-someone-else").status_code == 400
    old = _iso(time.time() - 3600)
    assert deliver(client, paypal_api, event, when=old).status_code == 400
    missing = client.post(
        reverse("contributions:webhook", args=["paypal"]),
        json.dumps(event),
        content_type="application/json",
    )
    assert missing.status_code == 400
    assert ProviderEvent.objects.count() == 0
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.PENDING


def test_change_amount_and_frequency_revises_the_paypal_subscription(
    client, site, paypal_api, on_commit
):
    from masthead.contributions import giving

    start(client, frequency="monthly", amount="500")
    plan = RecurringPlan.objects.get()
    first = Contribution.objects.get()
    activated, sale = paypal_api.approve_subscription(plan.provider_ref, "rev@example.com")
    with on_commit():
        deliver(client, paypal_api, activated)
        deliver(client, paypal_api, sale)
    plan.refresh_from_db()
    assert plan.status == PlanStatus.ACTIVE and first.pk
    giving.change_plan(plan, amount=1200, frequency="annual")
    plans = paypal_api.calls("POST", "/v1/billing/plans")
    assert len(plans) == 2
    cycle = plans[1]["body"]["billing_cycles"][0]
    assert cycle["frequency"]["interval_unit"] == "YEAR"
    assert cycle["pricing_scheme"]["fixed_price"]["value"] == "12.00"
    [revise] = paypal_api.calls("POST", f"/v1/billing/subscriptions/{plan.provider_ref}/revise")
    assert revise["body"]["plan_id"] == paypal_api.subscriptions[plan.provider_ref]["plan_id"]
    plan.refresh_from_db()
    assert (plan.amount, plan.frequency) == (1200, "annual")


def test_reconcile_fetches_paypal_renewals_whose_webhooks_never_came(
    client, site, paypal_api, on_commit
):
    """PayPal charged a renewal and then failed the next one; no webhook reached us. The
    overdue plan is asked about (transactions and the subscription's billing info), and the
    renewal, the failure and its one dunning notice follow through the ledger."""
    start(client, frequency="monthly", amount="500")
    plan = RecurringPlan.objects.get()
    first = Contribution.objects.get()
    activated, sale = paypal_api.approve_subscription(plan.provider_ref, "quiet@example.com")
    with on_commit():
        deliver(client, paypal_api, activated)
        deliver(client, paypal_api, sale)
    now = time.time()
    RecurringPlan.objects.filter(pk=plan.pk).update(
        last_paid_at=timezone.now() - dt.timedelta(days=40)
    )
    paypal_api.sales[plan.provider_ref][0]["time"] = _iso(now - 40 * 86400)  # as paid then
    price = {"value": "5.00", "currency_code": "USD"}
    paypal_api.sale(plan.provider_ref, price, 2, when=now - 9 * 86400)
    paypal_api.payment_failed(plan.provider_ref, price, 1, now - 3600)
    with on_commit():
        report = reconcile()
    assert report["plans checked"] == 1 and report["updated"] == 1
    assert paypal_api.calls("GET", f"/v1/billing/subscriptions/{plan.provider_ref}/transactions")
    renewal = Contribution.objects.get(payment_ref=f"SALE-{plan.provider_ref}-2")
    assert renewal.status == ContributionStatus.SUCCEEDED and renewal.is_renewal
    first.refresh_from_db()
    assert first.status == ContributionStatus.SUCCEEDED  # the first sale stays the first
    plan.refresh_from_db()
    assert plan.status == PlanStatus.PAST_DUE
    assert [c.cause for c in plan.history.all()][-1] == "reconcile"
    dunning = [m for m in mail.outbox if "did not go through" in m.subject]
    assert len(dunning) == 1
    # Asked again: the same answers, nothing applied or sent twice.
    RecurringPlan.objects.filter(pk=plan.pk).update(
        last_paid_at=timezone.now() - dt.timedelta(days=40), last_checked_at=None
    )
    sent = len(mail.outbox)
    with on_commit():
        reconcile()
    assert len(mail.outbox) == sent
