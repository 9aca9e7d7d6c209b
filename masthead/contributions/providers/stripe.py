"""Stripe, through the official ``stripe`` SDK: Checkout Sessions and signed webhooks.

One-off gifts are Checkout Sessions in ``payment`` mode, recurring plans in ``subscription``
mode with inline ``price_data`` (no catalogue to keep in sync). Every request that creates or
changes something carries an idempotency key built from our own ids, so a retried request
never creates a second session or a second change. Webhooks are verified with
the SDK's ``WebhookSignature.verify_header`` over the raw body (HMAC-SHA256 over
``t.payload``, with a timestamp tolerance that refuses replays of old deliveries) before the
body is decoded. ``STRIPE_API_BASE`` points the SDK at a
local stand-in in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import stripe
from django.conf import settings

from .. import wording
from ..methods import stripe_method_types
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
    delivery_digest,
    from_timestamp,
    header,
)

INTERVALS = {"monthly": "month", "annual": "year"}
FREQUENCIES = {"month": "monthly", "year": "annual"}
MAX_BODY = 512 * 1024


class StripeProvider(PaymentProvider):
    display_name = "Card, Apple Pay, Google Pay (Stripe)"
    wording_key = "stripe"
    marks = ("Visa", "Mastercard", "American Express", "Apple Pay", "Google Pay")

    def __init__(self, key: str, **options: Any) -> None:
        super().__init__(key, **options)
        self.secret_key = options.get("secret_key") or settings.STRIPE_SECRET_KEY
        self.webhook_secret = options.get("webhook_secret") or settings.STRIPE_WEBHOOK_SECRET
        self.api_base = options.get("api_base") or settings.STRIPE_API_BASE

    @property
    def client(self) -> stripe.StripeClient:
        if not self.secret_key:
            raise ProviderError("Stripe is not configured (STRIPE_SECRET_KEY).")
        base = {"api": self.api_base.rstrip("/")} if self.api_base else None
        return stripe.StripeClient(self.secret_key, base_addresses=base, max_network_retries=2)

    def _call(self, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except stripe.StripeError as exc:
            raise _provider_error(exc) from exc

    # --- checkout -----------------------------------------------------------------------

    def start_checkout(self, contribution, plan, urls: CheckoutUrls) -> str:
        metadata = {"contribution_id": str(contribution.pk), "source": contribution.source}
        price: dict[str, Any] = {
            "currency": contribution.currency.lower(),
            "unit_amount": contribution.amount,
            "product_data": {"name": wording.product_name("once")},
        }
        params: dict[str, Any] = {
            "success_url": urls.success,
            "cancel_url": urls.cancel,
            "client_reference_id": str(contribution.pk),
            "metadata": metadata,
            # Configuration, not code (MASTHEAD_STRIPE_PAYMENT_METHODS); wallets come with
            # card. Delayed methods (SEPA) complete unpaid and settle by async_payment_*.
            "payment_method_types": stripe_method_types(),
        }
        if plan is None:
            params["mode"] = "payment"
            params["submit_type"] = "donate"
            params["payment_intent_data"] = {"metadata": metadata}
            if wording.statement_suffix():
                suffix = wording.statement_suffix()
                params["payment_intent_data"]["statement_descriptor_suffix"] = suffix
        else:
            metadata["plan_id"] = str(plan.pk)
            price["recurring"] = {"interval": INTERVALS[plan.frequency]}
            price["product_data"] = {"name": wording.product_name(plan.frequency)}
            params["mode"] = "subscription"
            params["subscription_data"] = {"metadata": metadata}
        params["line_items"] = [{"price_data": price, "quantity": 1}]
        session = self._call(
            self.client.v1.checkout.sessions.create,
            params=params,
            options={"idempotency_key": f"masthead-checkout-{contribution.pk}"},
        )
        contribution.checkout_ref = session.id
        if not session.url:
            raise ProviderError("Stripe returned no checkout URL.")
        return session.url

    # --- webhooks -----------------------------------------------------------------------

    def missing_webhook_settings(self) -> list[str]:
        return [] if self.webhook_secret else ["STRIPE_WEBHOOK_SECRET"]

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> IncomingEvent:
        check_size(body, MAX_BODY)
        signature = header(headers, "Stripe-Signature")
        if not signature:
            raise WebhookError("Missing Stripe-Signature header.")
        try:
            # The SDK's check over the raw bytes (HMAC-SHA256 of "t.body", and the age of t);
            # the body is decoded as JSON only after it has passed.
            stripe.WebhookSignature.verify_header(
                body, signature, self.webhook_secret, settings.MASTHEAD_WEBHOOK_TOLERANCE
            )
        except stripe.SignatureVerificationError as exc:
            raise WebhookError(f"Signature verification failed: {exc}"[:200])
        except UnicodeDecodeError:
            raise WebhookError("Malformed event.")
        payload = decode_json(body)
        if not isinstance(payload.get("id"), str):
            raise WebhookError("Malformed event.")
        if not isinstance(payload.get("data"), dict) or not isinstance(
            payload["data"].get("object"), dict
        ):
            raise WebhookError("Malformed event.")
        live_key = self.secret_key.startswith(("sk_live_", "rk_live_"))
        if "livemode" in payload and bool(payload["livemode"]) != live_key:
            raise WebhookError("Event mode (test/live) does not match this site's Stripe key.")
        return IncomingEvent(
            payload["id"][:200],
            str(payload.get("type", ""))[:100],
            payload,
            delivery_id=delivery_digest(_signed_at(signature), body),
        )

    def translate(self, event_type: str, payload: dict[str, Any]) -> list[PaymentEvent]:
        obj = payload.get("data", {}).get("object", {})
        when = from_timestamp(payload.get("created"))
        if event_type.startswith("checkout.session."):
            return self._session_events(event_type.removeprefix("checkout.session."), obj, when)
        if event_type in ("invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed"):
            return self._invoice_events(event_type, obj, when)
        if event_type == "invoice_payment.paid":
            return self._invoice_payment_events(obj, when)
        if event_type in ("customer.subscription.updated", "customer.subscription.deleted"):
            return self._subscription_events(event_type, obj, when)
        if event_type == "charge.refunded":
            return [
                PaymentEvent(
                    kind=EventKind.REFUNDED,
                    occurred_at=when,
                    payment_ref=_id(obj.get("invoice")) or _id(obj.get("payment_intent")),
                    refunded_amount=as_int(obj.get("amount_refunded")) or 0,
                )
            ]
        if event_type.startswith("charge.dispute."):
            status = obj.get("status", "")
            dispute = {"won": "won", "lost": "lost"}.get(status, "open")
            return [
                PaymentEvent(
                    kind=EventKind.DISPUTE,
                    occurred_at=when,
                    payment_ref=_id(obj.get("payment_intent")),
                    dispute_status=dispute,
                )
            ]
        return []

    def _session_events(self, what: str, obj: dict, when) -> list[PaymentEvent]:
        metadata = obj.get("metadata") or {}
        details = obj.get("customer_details") or {}
        refs = {
            "occurred_at": when,
            "contribution_id": as_int(metadata.get("contribution_id"))
            or as_int(obj.get("client_reference_id")),
            "plan_id": as_int(metadata.get("plan_id")),
            "checkout_ref": str(obj.get("id") or ""),
            "subscription_ref": _id(obj.get("subscription")),
            "customer_ref": _id(obj.get("customer")),
        }
        subscription = obj.get("mode") == "subscription"
        payment_ref = _id(obj.get("invoice")) if subscription else _id(obj.get("payment_intent"))
        paid = obj.get("payment_status") in ("paid", "no_payment_required")
        if what == "expired":
            return [PaymentEvent(kind=EventKind.CHECKOUT_ABANDONED, **refs)]
        if what == "async_payment_failed":
            return [
                PaymentEvent(kind=EventKind.PAYMENT_FAILED, reason="async_payment_failed", **refs)
            ]
        if what not in ("completed", "async_payment_succeeded"):
            return []
        events = [
            PaymentEvent(
                kind=EventKind.CHECKOUT_COMPLETED,
                email=str(details.get("email") or obj.get("customer_email") or ""),
                name=str(details.get("name") or ""),
                **refs,
            )
        ]
        if subscription:
            events.append(PaymentEvent(kind=EventKind.PLAN_ACTIVATED, **refs))
        if paid or what == "async_payment_succeeded":
            events.append(
                PaymentEvent(
                    kind=EventKind.PAYMENT_SUCCEEDED,
                    payment_ref=payment_ref,
                    amount=as_int(obj.get("amount_total")),
                    currency=str(obj.get("currency") or "").upper(),
                    first_payment=True,
                    **refs,
                )
            )
        return events

    def _invoice_events(self, event_type: str, obj: dict, when) -> list[PaymentEvent]:
        parent = (obj.get("parent") or {}).get("subscription_details") or {}
        legacy = obj.get("subscription_details") or {}
        metadata = parent.get("metadata") or legacy.get("metadata") or {}
        subscription_ref = _id(parent.get("subscription")) or _id(obj.get("subscription"))
        first = obj.get("billing_reason") == "subscription_create"
        common = {
            "plan_id": as_int(metadata.get("plan_id")),
            "contribution_id": as_int(metadata.get("contribution_id")) if first else None,
            "subscription_ref": subscription_ref,
            "customer_ref": _id(obj.get("customer")),
            "payment_ref": str(obj.get("id") or ""),
            "charge_ref": _invoice_charge(obj),
            "currency": str(obj.get("currency") or "").upper(),
            "first_payment": first,
            "email": str(obj.get("customer_email") or ""),
            "name": str(obj.get("customer_name") or ""),
        }
        if not common["plan_id"] and not subscription_ref:
            return []
        if event_type == "invoice.payment_failed":
            return [
                PaymentEvent(
                    kind=EventKind.PAYMENT_FAILED,
                    occurred_at=when,
                    amount=as_int(obj.get("amount_due")),
                    attempt=as_int(obj.get("attempt_count")) or 1,
                    reason="invoice_payment_failed",
                    **common,
                )
            ]
        paid_at = (obj.get("status_transitions") or {}).get("paid_at")
        return [
            PaymentEvent(
                kind=EventKind.PAYMENT_SUCCEEDED,
                occurred_at=from_timestamp(paid_at) if paid_at else when,
                amount=as_int(obj.get("amount_paid")),
                **common,
            )
        ]

    def _invoice_payment_events(self, obj: dict, when) -> list[PaymentEvent]:
        """``invoice_payment.paid``: an invoice was paid by this payment intent (or charge).

        Since API version 2025-03-31 (basil) neither the invoice nor the charge names the
        other; this is how a renewal (keyed by its invoice) learns the payment intent its
        refunds and disputes will name. It waits for the invoice's own event if it comes first.
        """
        payment = obj.get("payment") or {}
        charge = _id(payment.get("payment_intent")) or _id(payment.get("charge"))
        invoice = _id(obj.get("invoice"))
        if not invoice or not charge or obj.get("status") not in (None, "paid"):
            return []
        paid_at = (obj.get("status_transitions") or {}).get("paid_at")
        return [
            PaymentEvent(
                kind=EventKind.PAYMENT_SUCCEEDED,
                occurred_at=from_timestamp(paid_at) if paid_at else when,
                payment_ref=invoice,
                charge_ref=charge,
                amount=as_int(obj.get("amount_paid")),
                currency=str(obj.get("currency") or "").upper(),
            )
        ]

    def _subscription_events(self, event_type: str, obj: dict, when) -> list[PaymentEvent]:
        metadata = obj.get("metadata") or {}
        refs = {
            "plan_id": as_int(metadata.get("plan_id")),
            "subscription_ref": str(obj.get("id") or ""),
            "customer_ref": _id(obj.get("customer")),
        }
        if event_type == "customer.subscription.deleted" or obj.get("status") == "canceled":
            ended = obj.get("canceled_at") or obj.get("ended_at")
            return [
                PaymentEvent(
                    kind=EventKind.PLAN_CANCELLED,
                    occurred_at=from_timestamp(ended) if ended else when,
                    **refs,
                )
            ]
        items = (obj.get("items") or {}).get("data") or []
        if not items:
            return []
        price = items[0].get("price") or {}
        interval = (price.get("recurring") or {}).get("interval", "")
        quantity = as_int(items[0].get("quantity")) or 1
        return [
            PaymentEvent(
                kind=EventKind.PLAN_TERMS_CHANGED,
                occurred_at=when,
                amount=(as_int(price.get("unit_amount")) or 0) * quantity or None,
                currency=str(price.get("currency") or "").upper(),
                frequency=FREQUENCIES.get(interval, ""),
                **refs,
            )
        ]

    # --- plans and reconciliation -------------------------------------------------------

    def cancel_plan(self, plan) -> list[PaymentEvent]:
        if not plan.provider_ref:
            return []
        try:
            subscription = self.client.v1.subscriptions.cancel(
                plan.provider_ref, options={"idempotency_key": f"masthead-cancel-{plan.pk}"}
            )
        except stripe.InvalidRequestError as exc:
            # Stripe refuses to cancel a subscription that has already ended (its own
            # dunning cancelled it): that is the state we want, not a failure.
            subscription = self._already_cancelled(plan.provider_ref, exc)
        except stripe.StripeError as exc:
            raise _provider_error(exc) from exc
        data = subscription.to_dict() if hasattr(subscription, "to_dict") else dict(subscription)
        return self._subscription_events(
            "customer.subscription.deleted", data, from_timestamp(None)
        )

    def _already_cancelled(self, ref: str, refusal: stripe.InvalidRequestError):
        """The subscription a cancel was refused for (400/404), if it has in fact ended."""
        try:
            subscription = self.client.v1.subscriptions.retrieve(ref)
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing":
                return {"id": ref, "status": "canceled"}  # gone altogether: nothing to charge
            raise _provider_error(exc) from exc
        except stripe.StripeError as exc:
            raise _provider_error(exc) from exc
        data = subscription.to_dict() if hasattr(subscription, "to_dict") else dict(subscription)
        if data.get("status") not in ("canceled", "incomplete_expired"):
            raise _provider_error(refusal) from refusal
        return data

    def change_plan(self, plan, amount: int, frequency: str) -> list[PaymentEvent]:
        if not plan.provider_ref:
            raise ProviderError("This plan has no Stripe subscription yet.")
        subscription = self._call(self.client.v1.subscriptions.retrieve, plan.provider_ref)
        item = subscription["items"]["data"][0]
        product = item["price"]["product"]
        stamp = int(plan.terms_changed_at.timestamp()) if plan.terms_changed_at else 0
        self._call(
            self.client.v1.subscriptions.update,
            plan.provider_ref,
            params={
                "items": [
                    {
                        "id": item["id"],
                        "price_data": {
                            "currency": plan.currency.lower(),
                            "unit_amount": amount,
                            "recurring": {"interval": INTERVALS[frequency]},
                            "product": _id(product),
                        },
                    }
                ],
                "proration_behavior": "none",
            },
            options={"idempotency_key": f"masthead-change-{plan.pk}-{stamp}-{amount}-{frequency}"},
        )
        return []

    def fetch_updates(self, contribution) -> list[PaymentEvent]:
        if not contribution.checkout_ref:
            return []
        session = self._call(self.client.v1.checkout.sessions.retrieve, contribution.checkout_ref)
        data = session.to_dict() if hasattr(session, "to_dict") else dict(session)
        status = data.get("status")
        if status == "expired":
            return self._session_events("expired", data, from_timestamp(None))
        if status == "complete":
            return self._session_events("completed", data, from_timestamp(data.get("created")))
        return []

    def fetch_plan_updates(self, plan) -> list[PaymentEvent]:
        """A plan whose renewal is overdue here: its subscription's latest invoices (paid or
        failed, with the payment intents that paid them) and whether it has ended."""
        if not plan.provider_ref:
            return []
        listed = self._call(
            self.client.v1.invoices.list,
            params={
                "subscription": plan.provider_ref,
                "limit": 5,
                "expand": ["data.payments"],
            },
        )
        events: list[PaymentEvent] = []
        for invoice in listed.data:
            data = invoice.to_dict() if hasattr(invoice, "to_dict") else dict(invoice)
            created = from_timestamp(data.get("created"))
            if data.get("status") == "paid":
                events += self._invoice_events("invoice.paid", data, created)
            elif data.get("status") == "open" and (as_int(data.get("attempt_count")) or 0) > 0:
                # The invoice's own time, so that asking twice finds the same failure.
                events += self._invoice_events("invoice.payment_failed", data, created)
        subscription = self._call(self.client.v1.subscriptions.retrieve, plan.provider_ref)
        data = subscription.to_dict() if hasattr(subscription, "to_dict") else dict(subscription)
        if data.get("status") in ("canceled", "incomplete_expired"):
            ended = data.get("canceled_at") or data.get("ended_at")
            events += self._subscription_events(
                "customer.subscription.deleted", data, from_timestamp(ended)
            )
        return events

    def fix_payment_url(self, plan, return_url: str) -> str:
        if not plan.provider_customer:
            return ""
        try:
            session = self._call(
                self.client.v1.billing_portal.sessions.create,
                params={"customer": plan.provider_customer, "return_url": return_url},
            )
        except ProviderError:
            return ""
        return session.url or ""


def _id(value: Any) -> str:
    """A Stripe reference that may be an id or an expanded object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _provider_error(exc: stripe.StripeError) -> ProviderError:
    message = getattr(exc, "user_message", None) or str(exc) or type(exc).__name__
    return ProviderError(f"Stripe: {message}"[:300])


def _invoice_charge(invoice: dict) -> str:
    """The payment intent (or charge) that paid an invoice, when the event carries it:
    ``payments`` (expanded, API versions since basil) or the older ``payment_intent``."""
    for payment in ((invoice.get("payments") or {}).get("data")) or []:
        inner = payment.get("payment") or {}
        ref = _id(inner.get("payment_intent")) or _id(inner.get("charge"))
        if ref and payment.get("status") in (None, "paid"):
            return ref
    return _id(invoice.get("payment_intent")) or _id(invoice.get("charge"))


def _signed_at(signature: str) -> str:
    """The ``t`` of a verified Stripe-Signature header."""
    for item in signature.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "t":
            return value.strip()
    return ""
