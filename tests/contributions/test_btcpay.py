"""BTCPay Server through its Greenfield API, against a local stand-in of a BTCPay store that
signs its webhooks exactly as BTCPay does (``BTCPay-Sig: sha256=<HMAC of the raw body>``)."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.urls import reverse

from masthead.contributions.models import Contribution, ContributionStatus, ProviderEvent

from .btcpay_standin import BTCPayStandIn, btcpay_signature, configured_btcpay

pytestmark = pytest.mark.django_db


@pytest.fixture
def btcpay_api(settings):
    yield from configured_btcpay(settings)


def deliver(client, standin: BTCPayStandIn, event: dict, *, secret: str | None = None):
    body = json.dumps(event).encode()
    return client.post(
        reverse("contributions:webhook", args=["btcpay"]),
        body,
        content_type="application/json",
        HTTP_BTCPAY_SIG=btcpay_signature(body, secret or standin.webhook_secret),
    )


def start(client, **fields):
    data = {"frequency": "once", "amount": "2500", "currency": "EUR", "provider": "btcpay"}
    data.update(fields)
    return client.post(reverse("contributions:checkout"), data)


def invoice_of(standin, contribution) -> str:
    assert contribution.checkout_ref in standin.invoices
    return contribution.checkout_ref


def test_checkout_creates_an_invoice_in_the_readers_currency(client, site, btcpay_api):
    response = start(client)
    assert response.status_code == 303
    contribution = Contribution.objects.get()
    invoice = btcpay_api.invoices[contribution.checkout_ref]
    assert response["Location"] == invoice["checkoutLink"]
    [create] = btcpay_api.calls("POST", f"/api/v1/stores/{btcpay_api.store_id}/invoices")
    assert create["headers"]["Authorization"] == f"token {btcpay_api.api_key}"
    body = create["body"]
    assert body["amount"] == "25.00" and body["currency"] == "EUR"
    assert body["metadata"]["contribution_id"] == contribution.pk
    assert body["metadata"]["itemDesc"] == "Contribution to The Lantern"
    assert body["checkout"]["redirectURL"].endswith("/thanks/")
    assert body["checkout"]["requiresRefundEmail"] is True
    assert contribution.status == ContributionStatus.PENDING


def test_neutral_wording_reaches_btcpay(client, site, btcpay_api, settings):
    settings.MASTHEAD_RECEIPT_NEUTRAL = True
    start(client)
    [create] = btcpay_api.calls("POST", f"/api/v1/stores/{btcpay_api.store_id}/invoices")
    assert create["body"]["metadata"]["itemDesc"] == settings.MASTHEAD_NEUTRAL_PRODUCT_NAME
    assert "Lantern" not in json.dumps(create["body"])


def test_a_refused_api_key_is_a_polite_error_not_a_500(client, site, btcpay_api, settings):
    settings.BTCPAY_API_KEY = "wrong"
    response = start(client)
    assert response.status_code in (200, 400, 502, 503)
    assert Contribution.objects.get().status == ContributionStatus.FAILED
    assert "Authentication is required" in Contribution.objects.get().failure_reason


def test_settled_invoice_succeeds_and_sends_one_receipt(client, site, btcpay_api, on_commit):
    start(client)
    contribution = Contribution.objects.get()
    events = btcpay_api.pay(invoice_of(btcpay_api, contribution), "reader@example.org")
    assert [e["type"] for e in events] == [
        "InvoiceReceivedPayment",
        "InvoiceProcessing",
        "InvoicePaymentSettled",
        "InvoiceSettled",
    ]
    with on_commit():
        for event in events[:2]:
            assert deliver(client, btcpay_api, event).status_code == 200
    contribution.refresh_from_db()
    # Seen and awaiting confirmations: the donor is known, nothing is receipted yet.
    assert contribution.status == ContributionStatus.PENDING
    assert contribution.donor.email == "reader@example.org"
    assert mail.outbox == []
    with on_commit():
        for event in events[2:]:
            assert deliver(client, btcpay_api, event).status_code == 200
        # BTCPay's redelivery of the settlement: a new delivery, the same event.
        again = btcpay_api.redelivery(events[-1])
        assert deliver(client, btcpay_api, again).status_code == 200
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.SUCCEEDED
    assert contribution.payment_ref == contribution.checkout_ref
    assert len(mail.outbox) == 1 and "€25" in mail.outbox[0].body
    assert ProviderEvent.objects.filter(provider="btcpay").count() == 4


def test_expired_unpaid_invoice_is_abandoned(client, site, btcpay_api, on_commit):
    start(client)
    contribution = Contribution.objects.get()
    with on_commit():
        deliver(client, btcpay_api, btcpay_api.expire(contribution.checkout_ref)[0])
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.ABANDONED
    assert mail.outbox == []


def test_partial_payment_is_underpaid_never_receipted(client, site, btcpay_api, on_commit):
    start(client)
    contribution = Contribution.objects.get()
    events = btcpay_api.pay(contribution.checkout_ref, "half@example.org", share=0.5)
    events += btcpay_api.expire(contribution.checkout_ref)
    assert events[-1]["partiallyPaid"] is True
    with on_commit():
        for event in events:
            deliver(client, btcpay_api, event)
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.FAILED
    assert contribution.failure_reason == "underpaid"
    assert contribution.donor.email == "half@example.org"
    assert mail.outbox == []


def test_overpayment_succeeds_with_a_note(client, site, btcpay_api, on_commit):
    start(client)
    contribution = Contribution.objects.get()
    events = btcpay_api.pay(contribution.checkout_ref, "generous@example.org", share=1.2)
    assert events[-1]["overPaid"] is True
    with on_commit():
        for event in events:
            deliver(client, btcpay_api, event)
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.SUCCEEDED
    assert contribution.amount == 2500  # the receipt is for the pledged amount
    assert len(mail.outbox) == 1
    stored = ProviderEvent.objects.get(event_type="InvoiceSettled")
    assert stored.payload["overPaid"] is True


def test_invalid_invoice_fails(client, site, btcpay_api, on_commit):
    start(client)
    contribution = Contribution.objects.get()
    with on_commit():
        deliver(client, btcpay_api, btcpay_api.mark_invalid(contribution.checkout_ref)[0])
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.FAILED
    assert contribution.failure_reason == "invalid"


def test_webhook_authenticity(client, site, btcpay_api):
    start(client)
    contribution = Contribution.objects.get()
    event = btcpay_api.pay(contribution.checkout_ref, "x@example.org")[-1]
    url = reverse("contributions:webhook", args=["btcpay"])
    body = json.dumps(event).encode()

    def post(data: bytes, **headers):
        return client.post(url, data, content_type="application/json", **headers)

    assert post(body).status_code == 400  # no signature
    assert post(body, HTTP_BTCPAY_SIG="sha256=" + "0" * 64).status_code == 400
    assert deliver(client, btcpay_api, event, secret="another-secret").status_code == 400
    tampered = body.replace(b"InvoiceSettled", b"InvoiceExpired")
    signature = btcpay_signature(body, btcpay_api.webhook_secret)
    assert post(tampered, HTTP_BTCPAY_SIG=signature).status_code == 400
    # A signed body that is not an event: refused, never a 500.
    for junk in (b"[]", b"{", b"null", json.dumps({"type": "InvoiceSettled"}).encode()):
        sig = btcpay_signature(junk, btcpay_api.webhook_secret)
        assert post(junk, HTTP_BTCPAY_SIG=sig).status_code == 400
    big = b" " * (300 * 1024) + body
    sig = btcpay_signature(big, btcpay_api.webhook_secret)
    assert post(big, HTTP_BTCPAY_SIG=sig).status_code == 413
    assert ProviderEvent.objects.count() == 0
    # The genuine delivery is taken; the very same transmission again is a replay (409).
    assert deliver(client, btcpay_api, event).status_code == 200
    assert deliver(client, btcpay_api, event).status_code == 409
    # Another store's event (signed with our secret, say a shared secret by mistake).
    other = dict(event, storeId="SomeoneElse", deliveryId="x1", originalDeliveryId="x1")
    assert deliver(client, btcpay_api, other).status_code == 400


def test_webhook_route_is_closed_without_a_secret(client, site, btcpay_api, settings):
    settings.BTCPAY_WEBHOOK_SECRET = ""
    response = client.post(
        reverse("contributions:webhook", args=["btcpay"]), b"{}", content_type="application/json"
    )
    assert response.status_code == 404


def test_reconciliation_asks_btcpay_about_a_pending_invoice(client, site, btcpay_api, on_commit):
    import datetime as dt

    from django.utils import timezone

    from masthead.contributions.tasks import reconcile

    start(client)
    contribution = Contribution.objects.get()
    btcpay_api.pay(contribution.checkout_ref, "late@example.org")  # webhooks never arrived
    Contribution.objects.filter(pk=contribution.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=2)
    )
    with on_commit():
        report = reconcile()
    assert report["updated"] == 1
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.SUCCEEDED
    assert contribution.donor.email == "late@example.org"
    assert len(mail.outbox) == 1


def test_reconciliation_waits_for_the_invoice_expiry_before_abandoning(
    client, site, btcpay_api, settings
):
    """Issue 10: an invoice BTCPay still calls New is not abandoned after a card's two days
    when the store gives invoices longer (BTCPAY_INVOICE_EXPIRY_MINUTES, sent with the
    invoice); it waits for the expiry and BTCPay's day of watching for late payments."""
    import datetime as dt

    from django.utils import timezone

    from masthead.contributions.reconciliation import reconcile

    settings.BTCPAY_INVOICE_EXPIRY_MINUTES = 3 * 24 * 60
    start(client)
    contribution = Contribution.objects.get()
    [create] = btcpay_api.calls("POST", f"/api/v1/stores/{btcpay_api.store_id}/invoices")
    assert create["body"]["checkout"]["expirationMinutes"] == 3 * 24 * 60
    Contribution.objects.filter(pk=contribution.pk).update(
        created_at=timezone.now() - dt.timedelta(days=2, hours=12)
    )
    report = reconcile()
    assert report["checked"] == 1 and report["abandoned"] == 0  # asked: still New
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.PENDING
    Contribution.objects.filter(pk=contribution.pk).update(
        created_at=timezone.now() - dt.timedelta(days=4, hours=1), last_checked_at=None
    )
    assert reconcile()["abandoned"] == 1
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.ABANDONED
