"""Payment webhooks prove who sent them before anything is read or changed (issue 14).

For every payment provider — the sandbox, Stripe and PayPal — forged, unsigned, replayed,
stale, oversized and hostile deliveries get a 4xx and leave contributions, plans, donors
and stored events exactly as they were; a real signed delivery still works; a provider
without its webhook secret has no webhook route at all, and the system check fails.
"""

from __future__ import annotations

import json
import time

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import reverse

from masthead.contributions import giving
from masthead.contributions.models import (
    Contribution,
    Donor,
    ProviderEvent,
    RecurringPlan,
)
from masthead.contributions.providers import sandbox
from masthead.core.replay import SignedDelivery

from .conftest import WEBHOOK_ID, WHSEC
from .standins import PayPalStandIn, _iso, stripe_signature

pytestmark = pytest.mark.django_db
DEEP = b'{"id": "evt_deep", "type": "x", "data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"


def state() -> tuple:
    """Everything a webhook could change."""
    return (
        sorted(Contribution.objects.values_list("pk", "status", "refunded_amount")),
        sorted(RecurringPlan.objects.values_list("pk", "status", "amount")),
        Donor.objects.count(),
        ProviderEvent.objects.count(),
    )


def post(client, provider: str, body: bytes, headers: dict[str, str]):
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    return client.post(
        reverse("contributions:webhook", args=[provider]),
        body,
        content_type="application/json",
        **meta,
    )


# --- one signer per provider: (provider key, event for a pending gift, sign(body, when)) ---


def _sandbox_event(contribution) -> dict:
    return {
        "id": f"evt_sbx_{contribution.pk}",
        "type": "checkout.completed",
        "created": time.time(),
        "data": {
            "contribution_id": contribution.pk,
            "checkout_id": contribution.checkout_ref,
            "payment_id": f"sbx_pay_{contribution.pk}",
            "amount": contribution.amount,
            "currency": contribution.currency,
            "email": "forged@example.org",
        },
    }


def _sandbox_sign(body: bytes, when: int | None = None, forged: bool = False) -> dict:
    if forged:
        return {sandbox.SIGNATURE_HEADER: stripe_signature(body, "not-our-secret", when)}
    return {sandbox.SIGNATURE_HEADER: sandbox.sign(body, when)}


@pytest.fixture(params=["sandbox", "stripe", "paypal"])
def provider(request, settings):
    """(key, make_event(contribution), sign(body, when=None, forged=False))."""
    if request.param == "sandbox":
        yield "sandbox", _sandbox_event, _sandbox_sign
        return
    if request.param == "stripe":
        standin = request.getfixturevalue("stripe_api")

        def stripe_event(contribution):
            return standin.pay(contribution.checkout_ref, "forged@example.org")[0]

        def stripe_sign(body, when=None, forged=False):
            secret = "whsec_forger" if forged else WHSEC
            return {"Stripe-Signature": stripe_signature(body, secret, when)}

        yield "stripe", stripe_event, stripe_sign
        return
    standin = request.getfixturevalue("paypal_api")
    forger = PayPalStandIn()  # another key, serving its own certificate

    def paypal_event(contribution):
        standin.approve_order(contribution.checkout_ref, "forged@example.org")
        order = standin.orders[contribution.checkout_ref]
        unit = order["purchase_units"][0]
        return standin.event(
            "PAYMENT.CAPTURE.COMPLETED",
            {
                "id": f"CAPTURE-{contribution.pk}",
                "status": "COMPLETED",
                "amount": unit["amount"],
                "custom_id": unit.get("custom_id"),
                "supplementary_data": {"related_ids": {"order_id": order["id"]}},
            },
        )

    def paypal_sign(body, when=None, forged=False):
        signer = forger if forged else standin
        when_text = _iso(time.time() if when is None else when)
        headers = _paypal_headers_for(signer, body, when_text)  # exactly these bytes
        if forged:  # the forger names PayPal's certificate URL, but signs with its own key
            headers["PAYPAL-CERT-URL"] = f"{standin.url}/v1/notifications/certs/CERT-standin"
        return headers

    try:
        yield "paypal", paypal_event, paypal_sign
    finally:
        forger.close()


def _paypal_headers_for(signer, body: bytes, when_text: str) -> dict:
    import base64
    import zlib

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    transmission_id = f"tx-raw-{next(signer.counter)}"
    message = f"{transmission_id}|{when_text}|{WEBHOOK_ID}|{zlib.crc32(body)}".encode()
    signature = signer.key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return {
        "PAYPAL-TRANSMISSION-ID": transmission_id,
        "PAYPAL-TRANSMISSION-TIME": when_text,
        "PAYPAL-TRANSMISSION-SIG": base64.b64encode(signature).decode(),
        "PAYPAL-CERT-URL": f"{signer.url}/v1/notifications/certs/CERT-standin",
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
    }


@pytest.fixture
def pending(site, provider):
    key = provider[0]
    contribution, _url = giving.start_contribution(
        frequency="once", amount=700, currency="USD", provider_key=key
    )
    return contribution


def test_a_real_signed_delivery_works_and_its_exact_replay_is_refused(
    client, provider, pending, on_commit
):
    key, make_event, sign = provider
    body = json.dumps(make_event(pending)).encode()
    headers = sign(body)
    with on_commit():
        response = post(client, key, body, headers)
    assert response.status_code == 200, response.content
    pending.refresh_from_db()
    assert pending.status == "succeeded"
    after = state()

    replay = post(client, key, body, headers)  # the same captured request, played back
    assert replay.status_code == 409
    assert "replay" in replay.json()["error"]
    assert state() == after
    assert SignedDelivery.objects.filter(source=f"payment:{key}").count() == 1


def test_forged_unsigned_stale_and_hostile_deliveries_change_nothing(
    client, provider, pending
):
    key, make_event, sign = provider
    body = json.dumps(make_event(pending)).encode()
    before = state()
    stale = int(time.time()) - 3600
    refused = {
        "forged": post(client, key, body, sign(body, forged=True)),
        "unsigned": post(client, key, body, {}),
        "stale": post(client, key, body, sign(body, stale)),
        "signed for another body": post(client, key, body + b" ", sign(body)),
        "garbage signature": post(client, key, body, {k: "t=1,v1=zz" for k in sign(body)}),
        "deep forged": post(client, key, DEEP, sign(DEEP, forged=True)),
    }
    for what, response in refused.items():
        assert 400 <= response.status_code < 500, (what, response.status_code)
        assert response.json()["error"], what
    assert state() == before
    pending.refresh_from_db()
    assert pending.status == "pending"
    assert SignedDelivery.objects.count() == 0


def test_oversized_bodies_are_refused_before_reading(client, provider, pending):
    key, _make_event, sign = provider
    huge = b'{"id": "x", "pad": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    before = state()
    response = post(client, key, huge, sign(huge))
    assert response.status_code in (400, 413)
    assert state() == before


def test_a_deeply_nested_but_signed_body_is_a_clear_400(client, provider, pending):
    """Only the provider could send it (the signature holds): still no 500."""
    key, _make_event, sign = provider
    deep = b'{"id": "evt_d", "type": "x", "event_type": "x", "data": {"object": ' + (
        b"[" * 100_000 + b"]" * 100_000
    ) + b"}}"
    response = post(client, key, deep, sign(deep))
    assert response.status_code in (400, 413)
    assert ProviderEvent.objects.count() == 0


def test_a_provider_without_its_webhook_secret_has_no_route(client, site, settings):
    settings.MASTHEAD_PAYMENT_PROVIDERS = {
        "stripe": {"BACKEND": "masthead.contributions.providers.stripe.StripeProvider"},
        "paypal": {"BACKEND": "masthead.contributions.providers.paypal.PayPalProvider"},
        "sandbox": {"BACKEND": "masthead.contributions.providers.sandbox.SandboxProvider"},
    }
    settings.STRIPE_SECRET_KEY = "sk_test_configured"
    settings.STRIPE_WEBHOOK_SECRET = ""
    settings.PAYPAL_CLIENT_ID = "client"
    settings.PAYPAL_CLIENT_SECRET = "secret"
    settings.PAYPAL_WEBHOOK_ID = ""
    body = b'{"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {}}}'
    for key in ("stripe", "paypal", "nowhere"):
        response = post(client, key, body, {"Stripe-Signature": stripe_signature(body, "")})
        assert response.status_code == 404, key
    assert ProviderEvent.objects.count() == 0


def test_the_deploy_check_fails_on_a_provider_without_a_webhook_secret(settings):
    settings.MASTHEAD_PAYMENT_PROVIDERS = {
        "stripe": {"BACKEND": "masthead.contributions.providers.stripe.StripeProvider"},
    }
    settings.STRIPE_SECRET_KEY = "sk_test_configured"
    settings.STRIPE_WEBHOOK_SECRET = ""
    with pytest.raises(SystemCheckError, match="STRIPE_WEBHOOK_SECRET"):
        call_command("check", "--deploy", tags=["masthead"])
    settings.STRIPE_WEBHOOK_SECRET = WHSEC
    call_command("check", tags=["masthead"])  # and passes once it is set


def test_paypal_certificates_come_only_from_paypal(client, site, paypal_api):
    contribution, _url = giving.start_contribution(
        frequency="once", amount=700, currency="USD", provider_key="paypal"
    )
    event = paypal_api.event("PAYMENT.CAPTURE.COMPLETED", {"id": "CAP", "custom_id": "c1"})
    body, headers = paypal_api.signed(event, WEBHOOK_ID)
    for elsewhere in (
        "http://127.0.0.1:1/v1/notifications/certs/CERT",  # another local server
        "https://paypal.com.evil.example/cert",
        "http://api.paypal.com/v1/notifications/certs/CERT",  # not HTTPS
        f"{paypal_api.url.replace('http://', 'http://user:pw@')}/v1/notifications/certs/C",
    ):
        response = post(client, "paypal", body, {**headers, "PAYPAL-CERT-URL": elsewhere})
        assert response.status_code == 400, elsewhere
    assert paypal_api.calls("GET", "/v1/notifications/certs/") == []
    assert ProviderEvent.objects.count() == 0
    contribution.refresh_from_db()
    assert contribution.status == "pending"
