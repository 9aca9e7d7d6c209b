"""The sandbox provider: the embedded default, which moves no real money.

Its checkout is a page on our own site, clearly labelled "Sandbox — no real money", where the
reader chooses to complete, fail or cancel the payment. Whatever they choose becomes a webhook
signed like Stripe's (``t=…,v1=HMAC-SHA256``, with a key derived from SECRET_KEY) and handed to
the very same :func:`~masthead.contributions.services.receive_webhook` that real providers'
webhooks go through (it can also be POSTed to ``/support/webhooks/sandbox/``). Renewals, failed
renewals, refunds and disputes can be simulated the same way (``masthead sandbox-event``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.urls import reverse
from django.utils.crypto import salted_hmac

from .base import (
    CheckoutUrls,
    EventKind,
    IncomingEvent,
    PaymentEvent,
    PaymentProvider,
    WebhookError,
    as_int,
    check_age,
    check_size,
    decode_json,
    delivery_digest,
    from_timestamp,
    header,
)

SIGNATURE_HEADER = "Masthead-Sandbox-Signature"
MAX_BODY = 64 * 1024


def webhook_secret() -> bytes:
    return salted_hmac("masthead.sandbox.webhook", "v1").hexdigest().encode()


def sign(body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(webhook_secret(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class SandboxProvider(PaymentProvider):
    display_name = "Sandbox (no real money)"
    marks = ("Test card",)

    def start_checkout(self, contribution, plan, urls: CheckoutUrls) -> str:
        from ..services import checkout_token

        contribution.checkout_ref = f"sbx_cs_{contribution.pk}_{secrets.token_hex(6)}"
        parts = urlsplit(urls.success)
        path = reverse("contributions:sandbox_checkout", args=[checkout_token(contribution)])
        return f"{parts.scheme}://{parts.netloc}{path}"

    # --- the same webhook path as a real provider ---------------------------------------

    def deliver(self, event_type: str, data: dict[str, Any]):
        """Build, sign and hand a sandbox webhook to the common webhook entry point."""
        from ..services import receive_webhook

        body = json.dumps(
            {
                "id": f"evt_sbx_{secrets.token_hex(12)}",
                "type": event_type,
                "created": round(time.time(), 6),  # sub-second: events in one request stay ordered
                "data": data,
            }
        ).encode()
        return receive_webhook(self.key, body, {SIGNATURE_HEADER: sign(body)})

    def complete(self, contribution, email: str, name: str = ""):
        data = {
            "contribution_id": contribution.pk,
            "checkout_id": contribution.checkout_ref,
            "payment_id": f"sbx_pay_{contribution.pk}",
            "amount": contribution.amount,
            "currency": contribution.currency,
            "email": email,
            "name": name,
        }
        if contribution.plan_id:
            data.update(
                plan_id=contribution.plan_id,
                subscription_id=f"sbx_sub_{contribution.plan_id}",
                customer_id=f"sbx_cus_{contribution.plan_id}",
            )
        return self.deliver("checkout.completed", data)

    def fail(self, contribution, reason: str = "card_declined"):
        return self.deliver(
            "payment.failed",
            {"contribution_id": contribution.pk, "attempt": 1, "reason": reason},
        )

    def cancel_checkout(self, contribution):
        return self.deliver("checkout.cancelled", {"contribution_id": contribution.pk})

    def renew(self, plan, *, succeed: bool = True, period: int = 1, attempt: int = 1):
        """Simulate the provider charging a renewal (or failing to)."""
        data = {
            "plan_id": plan.pk,
            "subscription_id": plan.provider_ref or f"sbx_sub_{plan.pk}",
            "payment_id": f"sbx_inv_{plan.pk}_{period}",
            "amount": plan.amount,
            "currency": plan.currency,
            "attempt": attempt,
        }
        return self.deliver("renewal.succeeded" if succeed else "renewal.failed", data)

    def refund(self, contribution, amount: int | None = None):
        return self.deliver(
            "payment.refunded",
            {
                "payment_id": contribution.payment_ref,
                "amount_refunded": contribution.amount if amount is None else amount,
            },
        )

    def dispute(self, contribution, status: str = "open"):
        return self.deliver(
            "dispute.updated", {"payment_id": contribution.payment_ref, "status": status}
        )

    def cancel_plan(self, plan) -> list[PaymentEvent]:
        self.deliver("subscription.cancelled", {"plan_id": plan.pk})
        return []

    def change_plan(self, plan, amount: int, frequency: str) -> list[PaymentEvent]:
        return []

    # --- verification and translation ---------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> IncomingEvent:
        check_size(body, MAX_BODY)
        signature = header(headers, SIGNATURE_HEADER)
        parts = dict(item.split("=", 1) for item in signature.split(",") if "=" in item)
        timestamp = parts.get("t", "")
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
            raise WebhookError("Missing or malformed signature header.")
        if "v1" not in parts:
            raise WebhookError("Missing or malformed signature header.")
        expected = hmac.new(
            webhook_secret(), f"{timestamp}.".encode() + body, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected.encode(), parts["v1"].encode()):
            raise WebhookError("Signature does not match.")
        check_age(int(timestamp))
        event = decode_json(body)
        if not isinstance(event.get("data"), dict) or "id" not in event or "type" not in event:
            raise WebhookError("Malformed event.")
        return IncomingEvent(
            str(event["id"])[:200],
            str(event["type"])[:100],
            event,
            delivery_id=delivery_digest(timestamp, body),
        )

    def translate(self, event_type: str, payload: dict[str, Any]) -> list[PaymentEvent]:
        data = payload.get("data", {})
        when = from_timestamp(payload.get("created"))
        common = {
            "occurred_at": when,
            "contribution_id": as_int(data.get("contribution_id")),
            "plan_id": as_int(data.get("plan_id")),
            "payment_ref": str(data.get("payment_id") or ""),
            "subscription_ref": str(data.get("subscription_id") or ""),
            "amount": as_int(data.get("amount")),
            "currency": str(data.get("currency") or ""),
        }
        if event_type == "checkout.completed":
            details = {
                "checkout_ref": str(data.get("checkout_id") or ""),
                "customer_ref": str(data.get("customer_id") or ""),
                "email": str(data.get("email") or ""),
                "name": str(data.get("name") or ""),
            }
            events = [
                PaymentEvent(kind=EventKind.CHECKOUT_COMPLETED, **common, **details),
                PaymentEvent(kind=EventKind.PAYMENT_SUCCEEDED, first_payment=True, **common),
            ]
            if common["plan_id"]:
                events.append(PaymentEvent(kind=EventKind.PLAN_ACTIVATED, **common))
            return events
        if event_type == "payment.failed":
            return [
                PaymentEvent(
                    kind=EventKind.PAYMENT_FAILED,
                    attempt=as_int(data.get("attempt")) or 1,
                    reason=str(data.get("reason") or "")[:200],
                    **common,
                )
            ]
        if event_type == "checkout.cancelled":
            return [PaymentEvent(kind=EventKind.CHECKOUT_ABANDONED, **common)]
        if event_type == "renewal.succeeded":
            return [PaymentEvent(kind=EventKind.PAYMENT_SUCCEEDED, **common)]
        if event_type == "renewal.failed":
            return [
                PaymentEvent(
                    kind=EventKind.PAYMENT_FAILED,
                    attempt=as_int(data.get("attempt")) or 1,
                    reason="renewal_declined",
                    **common,
                )
            ]
        if event_type == "payment.refunded":
            return [
                PaymentEvent(
                    kind=EventKind.REFUNDED,
                    refunded_amount=as_int(data.get("amount_refunded")) or 0,
                    **common,
                )
            ]
        if event_type == "dispute.updated":
            return [
                PaymentEvent(
                    kind=EventKind.DISPUTE, dispute_status=str(data.get("status") or ""), **common
                )
            ]
        if event_type == "subscription.cancelled":
            return [PaymentEvent(kind=EventKind.PLAN_CANCELLED, **common)]
        return []

