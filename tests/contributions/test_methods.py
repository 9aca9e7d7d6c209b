"""The methods readers are shown (configured ones only, in their language, each with what it
costs in privacy), Stripe Checkout's methods as configuration with delayed settlement (SEPA),
and the neutral wording reaching Stripe and PayPal."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.urls import reverse

from masthead.contributions.models import Contribution, ContributionStatus

from .conftest import SANDBOX, WHSEC
from .standins import stripe_signature

pytestmark = pytest.mark.django_db

BANK = "masthead.contributions.providers.banktransfer.BankTransferProvider"
BTCPAY = "masthead.contributions.providers.btcpay.BTCPayProvider"


def test_give_page_shows_the_configured_methods_with_their_privacy_cost(client, site, settings):
    settings.MASTHEAD_PAYMENT_PROVIDERS = {
        "btcpay": {"BACKEND": BTCPAY},
        "banktransfer": {"BACKEND": BANK},
    }
    html = client.get("/support/").content.decode()
    assert 'data-method="btcpay"' in html and 'data-method="banktransfer"' in html
    assert 'data-method="sandbox"' not in html and 'data-method="stripe"' not in html
    assert "No card needed; your bank will see the payee." in html
    assert "Bitcoin payments are public, though not your name." in html
    assert '<span class="mark">Bitcoin</span>' in html
    russian = client.get("/ru/support/").content.decode()
    assert "Банковский перевод" in russian
    assert "Карта не нужна; ваш банк увидит получателя." in russian
    assert "Способы оплаты и что каждый из них раскрывает" in russian


def test_stripe_marks_follow_the_configured_payment_method_types(client, site, settings):
    settings.MASTHEAD_PAYMENT_PROVIDERS = {
        "stripe": {"BACKEND": "masthead.contributions.providers.stripe.StripeProvider"}
    }
    settings.MASTHEAD_STRIPE_PAYMENT_METHODS = ["card"]
    html = client.get("/support/").content.decode()
    assert '<span class="mark">Apple Pay</span>' in html
    assert "SEPA Direct Debit" not in html
    settings.MASTHEAD_STRIPE_PAYMENT_METHODS = ["card", "sepa_debit"]
    # (another URL: the give page is a cached public page, and settings change on restart)
    html = client.get("/support/?currency=EUR").content.decode()
    assert '<span class="mark">SEPA Direct Debit</span>' in html


def deliver(client, event: dict):
    body = json.dumps(event).encode()
    return client.post(
        reverse("contributions:webhook", args=["stripe"]),
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_signature(body, WHSEC),
    )


def sepa_checkout(client, stripe_api, settings):
    settings.MASTHEAD_STRIPE_PAYMENT_METHODS = ["card", "sepa_debit"]
    response = client.post(
        reverse("contributions:checkout"),
        {"frequency": "once", "amount": "2500", "currency": "EUR", "provider": "stripe"},
    )
    assert response.status_code == 303
    contribution = Contribution.objects.get()
    [create] = stripe_api.calls("POST", "/v1/checkout/sessions")
    assert create["body"]["payment_method_types[0]"] == "card"
    assert create["body"]["payment_method_types[1]"] == "sepa_debit"
    session = stripe_api.sessions[contribution.checkout_ref]
    session.update(
        status="complete",
        payment_status="unpaid",  # a SEPA debit: the money comes days later
        payment_intent="pi_sepa_1",
        customer_details={"email": "sepa@example.org", "name": "Sepa Payer"},
    )
    return contribution, session


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_sepa_is_pending_until_it_settles(client, site, stripe_api, settings, on_commit, outcome):
    contribution, session = sepa_checkout(client, stripe_api, settings)
    with on_commit():
        assert (
            deliver(client, stripe_api.event("checkout.session.completed", session)).status_code
            == 200
        )
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.PENDING
    assert contribution.donor.email == "sepa@example.org"
    assert mail.outbox == []
    session["payment_status"] = "paid" if outcome == "succeeded" else "unpaid"
    with on_commit():
        event = stripe_api.event(f"checkout.session.async_payment_{outcome}", session)
        assert deliver(client, event).status_code == 200
    contribution.refresh_from_db()
    assert contribution.status == outcome
    assert len(mail.outbox) == (1 if outcome == "succeeded" else 0)


def test_neutral_wording_reaches_stripe(client, site, stripe_api, settings):
    settings.MASTHEAD_RECEIPT_NEUTRAL = True
    client.post(
        reverse("contributions:checkout"),
        {"frequency": "once", "amount": "2500", "currency": "EUR", "provider": "stripe"},
    )
    client.post(
        reverse("contributions:checkout"),
        {"frequency": "monthly", "amount": "500", "currency": "USD", "provider": "stripe"},
    )
    once, monthly = (c["body"] for c in stripe_api.calls("POST", "/v1/checkout/sessions"))
    assert once["line_items[0][price_data][product_data][name]"] == "Online services"
    assert once["payment_intent_data[statement_descriptor_suffix]"] == "SERVICES"
    assert monthly["line_items[0][price_data][product_data][name]"] == "Online services"
    assert "Lantern" not in json.dumps([once, monthly])


def test_neutral_wording_reaches_paypal(client, site, paypal_api, settings):
    settings.MASTHEAD_RECEIPT_NEUTRAL = True
    for frequency in ("once", "monthly"):
        response = client.post(
            reverse("contributions:checkout"),
            {"frequency": frequency, "amount": "500", "currency": "USD", "provider": "paypal"},
        )
        assert response.status_code == 303
    sent = [r["body"] for r in paypal_api.requests if r["method"] == "POST"]
    assert "Lantern" not in json.dumps(sent, default=str)
    text = json.dumps(sent, default=str)
    assert "Online services" in text


def test_outlet_wording_without_neutral_receipts(client, site, stripe_api, settings):
    settings.MASTHEAD_PAYMENT_PROVIDERS["sandbox"] = {"BACKEND": SANDBOX}
    client.post(
        reverse("contributions:checkout"),
        {"frequency": "once", "amount": "2500", "currency": "EUR", "provider": "stripe"},
    )
    [create] = stripe_api.calls("POST", "/v1/checkout/sessions")
    body = create["body"]
    assert body["line_items[0][price_data][product_data][name]"] == "Contribution to The Lantern"
    assert "payment_intent_data[statement_descriptor_suffix]" not in body
