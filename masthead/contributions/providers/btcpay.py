"""BTCPay Server, through its Greenfield API: self-hosted, no third party holds the money.

A contribution (one-off, or one period of a pay-by-link plan) is a BTCPay *invoice* in the
reader's currency; the reader pays it on the store's hosted checkout, which asks for an
email (``requiresRefundEmail``: BTCPay keeps it in the invoice's ``metadata.buyerEmail``)
and sends them back to our thank-you page. Our ids travel in the invoice metadata.

Webhooks carry ``BTCPay-Sig: sha256=<hex HMAC-SHA256 of the raw body>``; we check the size,
then the HMAC over the raw bytes (constant-time), and only then decode. BTCPay signs no
time, so there is no age check: a delivery's ``deliveryId`` is recorded (an exact replay is
refused, 409) and an event is stored once under its ``originalDeliveryId`` (BTCPay's own
redeliveries name the first delivery there), so a replay changes nothing either way.

Invoice events become our neutral events:

============================  ==============================================================
InvoiceReceivedPayment,       the payment is seen (awaiting confirmations): the donor is
InvoiceProcessing             known, the contribution stays pending
InvoiceSettled                succeeded (``overPaid``/``manuallyMarked`` noted as reason)
InvoiceExpired                nothing paid: abandoned (a plan's period: nothing — its
                              link opens a fresh invoice, and the pay-by-link job decides
                              when the period failed); ``partiallyPaid``: failed, reason
                              "underpaid" — never a receipt
InvoiceInvalid                failed (reason "invalid")
InvoiceCreated,               nothing (an invoice-level event decides)
InvoicePaymentSettled
============================  ==============================================================

Recurring plans are pay-by-link (see :mod:`masthead.contributions.paybylink`): BTCPay has
no subscriptions we could charge, so each period gets a fresh invoice and an email. There is
no maintained Python client for Greenfield (``btcpay-python`` speaks the legacy BitPay API,
the others are unmaintained 0.x releases), and we call three endpoints, so this module
speaks HTTP itself with the standard library.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from decimal import Decimal
from hashlib import sha256
from typing import Any

from django.conf import settings
from django.utils import timezone

from .. import wording
from ..money import exponent
from .base import (
    CheckoutUrls,
    EventKind,
    IncomingEvent,
    PaymentEvent,
    PaymentProvider,
    ProviderError,
    WebhookError,
    as_int,
    check_size,
    decode_json,
    from_timestamp,
    header,
)

log = logging.getLogger(__name__)
MAX_BODY = 256 * 1024
TIMEOUT = 20
SEEN = ("InvoiceReceivedPayment", "InvoiceProcessing")


def to_major(amount: int, currency: str) -> str:
    places = exponent(currency)
    return f"{Decimal(amount).scaleb(-places):.{places}f}"


class BTCPayProvider(PaymentProvider):
    display_name = "Bitcoin (BTCPay Server)"
    marks = ("Bitcoin", "Lightning")
    wording_key = "btcpay"
    pay_by_link = True  # recurring plans: a fresh invoice each period, by email
    payment_kind = "link"

    # Settings are read when used, so a test (or an operator) changing them takes effect.
    @property
    def invoice_expiry_minutes(self) -> int:
        configured = self.options.get("invoice_expiry_minutes")
        return int(configured or settings.BTCPAY_INVOICE_EXPIRY_MINUTES)

    @property
    def checkout_patience(self) -> dt.timedelta:
        """The invoice's expiry plus the day BTCPay keeps watching an expired invoice for a
        late payment (its default monitoring window); BTCPay is asked first anyway."""
        return dt.timedelta(minutes=self.invoice_expiry_minutes) + dt.timedelta(days=1)

    @property
    def base_url(self) -> str:
        return (self.options.get("url") or settings.BTCPAY_URL).rstrip("/")

    @property
    def store_id(self) -> str:
        return self.options.get("store_id") or settings.BTCPAY_STORE_ID

    @property
    def api_key(self) -> str:
        return self.options.get("api_key") or settings.BTCPAY_API_KEY

    @property
    def webhook_secret(self) -> str:
        return self.options.get("webhook_secret") or settings.BTCPAY_WEBHOOK_SECRET

    # --- Greenfield ---------------------------------------------------------------------

    def _request(self, method: str, path: str, body: dict | None = None) -> Any:
        if not (self.base_url and self.store_id and self.api_key):
            raise ProviderError("BTCPay is not configured (BTCPAY_URL, _STORE_ID, _API_KEY).")
        url = f"{self.base_url}/api/v1/stores/{self.store_id}{path}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 (an https URL set by the operator)
            url,
            data=data,
            method=method,
            headers={
                "Authorization": f"token {self.api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise ProviderError(f"BTCPay: {_greenfield_error(exc)}"[:300]) from exc
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise ProviderError(f"BTCPay could not be reached: {exc}"[:300]) from exc

    def create_invoice(
        self,
        contribution,
        redirect_url: str,
        *,
        attempt: int = 1,
        expiration_minutes: int | None = None,
    ) -> dict[str, Any]:
        """A fresh invoice for this contribution (its amount, in its currency)."""
        metadata: dict[str, Any] = {
            "orderId": f"masthead-{contribution.pk}-{attempt}",
            "itemDesc": wording.product_name(contribution.frequency),
            "contribution_id": contribution.pk,
            "attempt": attempt,
        }
        if contribution.plan_id:
            metadata["plan_id"] = contribution.plan_id
        if contribution.is_renewal:
            metadata["renewal"] = True
        checkout: dict[str, Any] = {
            "redirectURL": redirect_url,
            "redirectAutomatically": True,
            "requiresRefundEmail": True,
        }
        if contribution.language:
            checkout["defaultLanguage"] = contribution.language
        if expiration_minutes:
            checkout["expirationMinutes"] = expiration_minutes
        invoice = self._request(
            "POST",
            "/invoices",
            {
                "amount": to_major(contribution.amount, contribution.currency),
                "currency": contribution.currency,
                "metadata": metadata,
                "checkout": checkout,
            },
        )
        if (
            not isinstance(invoice, dict)
            or not invoice.get("id")
            or not invoice.get("checkoutLink")
        ):
            raise ProviderError("BTCPay returned no invoice.")
        return invoice

    def get_invoice(self, invoice_id: str) -> dict[str, Any]:
        return self._request("GET", f"/invoices/{invoice_id}")

    def payment_methods(self, invoice_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/invoices/{invoice_id}/payment-methods")

    # --- checkout -----------------------------------------------------------------------

    def start_checkout(self, contribution, plan, urls: CheckoutUrls) -> str:
        invoice = self.create_invoice(
            contribution, urls.success, expiration_minutes=self.invoice_expiry_minutes
        )
        contribution.checkout_ref = str(invoice["id"])[:100]
        return str(invoice["checkoutLink"])

    # --- webhooks -----------------------------------------------------------------------

    def missing_webhook_settings(self) -> list[str]:
        return [] if self.webhook_secret else ["BTCPAY_WEBHOOK_SECRET"]

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> IncomingEvent:
        check_size(body, MAX_BODY)
        signature = header(headers, "BTCPay-Sig")
        if not signature:
            raise WebhookError("Missing BTCPay-Sig header.")
        scheme, _, given = signature.partition("=")
        expected = hmac.new(self.webhook_secret.encode(), body, sha256).hexdigest()
        if scheme.strip().lower() != "sha256" or not hmac.compare_digest(
            given.strip().lower().encode(), expected.encode()
        ):
            raise WebhookError("Signature verification failed.")
        payload = decode_json(body)
        delivery = payload.get("deliveryId")
        original = payload.get("originalDeliveryId") or delivery
        if not isinstance(delivery, str) or not delivery or not isinstance(original, str):
            raise WebhookError("Malformed event.")
        if not isinstance(payload.get("type"), str) or not isinstance(
            payload.get("invoiceId", ""), str
        ):
            raise WebhookError("Malformed event.")
        store = payload.get("storeId")
        if store and self.store_id and store != self.store_id:
            raise WebhookError("Event from another BTCPay store.")
        return IncomingEvent(
            original[:200],
            payload["type"][:100],
            payload,
            delivery_id=sha256(delivery.encode()).hexdigest(),
        )

    def translate(self, event_type: str, payload: dict[str, Any]) -> list[PaymentEvent]:
        metadata = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
        invoice = str(payload.get("invoiceId") or "")[:100]
        refs = {
            "occurred_at": from_timestamp(as_int(payload.get("timestamp"))),
            "contribution_id": as_int(metadata.get("contribution_id")),
            "plan_id": as_int(metadata.get("plan_id")),
            "checkout_ref": invoice,
        }
        if not invoice or not (refs["contribution_id"] or refs["plan_id"]):
            return []  # not an invoice Masthead made
        renewal = bool(metadata.get("renewal"))
        attempt = as_int(metadata.get("attempt")) or 1
        email = str(metadata.get("buyerEmail") or "")
        name = str(metadata.get("buyerName") or "")
        seen = PaymentEvent(kind=EventKind.CHECKOUT_COMPLETED, email=email, name=name, **refs)
        if event_type in SEEN:
            return [seen]
        if event_type == "InvoiceSettled":
            notes = [
                n
                for n, on in (
                    ("overpaid", payload.get("overPaid")),
                    ("marked settled at BTCPay", payload.get("manuallyMarked")),
                )
                if on
            ]
            return [
                seen,
                PaymentEvent(
                    kind=EventKind.PAYMENT_SUCCEEDED,
                    payment_ref=invoice,
                    email=email,
                    name=name,
                    first_payment=not renewal,
                    reason=", ".join(notes),
                    **refs,
                ),
            ]
        if event_type == "InvoiceExpired":
            if payload.get("partiallyPaid"):
                return [seen, _failed("underpaid", attempt, refs)]
            if renewal:
                # A plan's period stays payable through a fresh invoice; when it counts as
                # failed is the pay-by-link job's call (MASTHEAD_PAY_BY_LINK_DAYS), not this
                # invoice's expiry.
                return []
            return [PaymentEvent(kind=EventKind.CHECKOUT_ABANDONED, **refs)]
        if event_type == "InvoiceInvalid":
            return [_failed("invalid", attempt, refs)]
        return []

    # --- plans and reconciliation -------------------------------------------------------

    def cancel_plan(self, plan) -> list[PaymentEvent]:
        # Nothing to stop at BTCPay: a pay-by-link plan lives here; unpaid invoices expire.
        return [
            PaymentEvent(kind=EventKind.PLAN_CANCELLED, occurred_at=timezone.now(), plan_id=plan.pk)
        ]

    def change_plan(self, plan, amount: int, frequency: str) -> list[PaymentEvent]:
        return []  # the next period's invoice is made with the new terms

    def fetch_updates(self, contribution) -> list[PaymentEvent]:
        """What became of a pending contribution's invoice (reconciliation)."""
        if not contribution.checkout_ref:
            return []
        invoice = self.get_invoice(contribution.checkout_ref)
        status = invoice.get("status")
        kind = {
            "Settled": "InvoiceSettled",
            "Expired": "InvoiceExpired",
            "Invalid": "InvoiceInvalid",
            "Processing": "InvoiceProcessing",
        }.get(status)
        if kind is None:
            return []
        payload = {
            "invoiceId": invoice.get("id"),
            "timestamp": invoice.get("createdTime"),
            "metadata": invoice.get("metadata") or {},
            "partiallyPaid": invoice.get("additionalStatus") == "PaidPartial",
            "overPaid": invoice.get("additionalStatus") == "PaidOver",
            "manuallyMarked": invoice.get("additionalStatus") == "Marked",
        }
        if status != "Settled":
            payload["timestamp"] = int(timezone.now().timestamp())
        return self.translate(kind, payload)

    def fix_payment_url(self, plan, return_url: str) -> str:
        """A past-due period is paid through a fresh invoice (the next attempt)."""
        from ..paybylink import fresh_link

        return fresh_link(plan, return_url)


def _failed(reason: str, attempt: int, refs: dict) -> PaymentEvent:
    return PaymentEvent(kind=EventKind.PAYMENT_FAILED, reason=reason, attempt=attempt, **refs)


def _greenfield_error(exc: urllib.error.HTTPError) -> str:
    """Greenfield's error body: ``{"code", "message"}`` or a list of ``{"path", "message"}``."""
    try:
        body = json.loads(exc.read() or b"null")
    except (ValueError, OSError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return "; ".join(f"{e.get('path')}: {e.get('message')}" for e in body[:3])
    return f"HTTP {exc.code}"
