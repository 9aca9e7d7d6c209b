"""The sandbox provider: the embedded default, which moves no real money.

Its checkout is a page on our own site (``hosts_checkout_page``), clearly labelled "Sandbox —
no real money", where the reader chooses to complete, fail or cancel the payment. Whatever they
choose becomes a webhook request signed like Stripe's (``t=…,v1=HMAC-SHA256``, with a key
derived from SECRET_KEY): this module only *builds* the :class:`SignedWebhook`; the checkout
page hands it to the webhook view's own code (``views.accept_webhook`` →
``ledger.receive_webhook``), which verifies it with :meth:`SandboxProvider.verify_webhook`
exactly as a delivery POSTed to ``/support/webhooks/sandbox/`` would be. Renewals, failed
renewals, refunds and disputes are simulated the same way (``simulates_events``, ``masthead
sandbox-event``). Like every provider, it never writes to the database nor calls the ledger.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from django.utils.crypto import salted_hmac

from .base import (
    CheckoutUrls,
    EventKind,
    IncomingEvent,
    PaymentEvent,
    PaymentProvider,
    ProviderError,
    SignedWebhook,
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
    wording_key = "sandbox"
    marks = ("Test card",)
    hosts_checkout_page = True
    checkout_page_template = "contributions/sandbox_checkout.html"
    simulates_events = True
    moves_real_money = False

    def start_checkout(self, contribution, plan, urls: CheckoutUrls) -> str:
        contribution.checkout_ref = f"sbx_cs_{contribution.pk}_{secrets.token_hex(6)}"
        return urls.hosted

    # --- signed webhooks, delivered by the caller through the webhook path ---------------

    def webhook(self, event_type: str, data: dict[str, Any]) -> SignedWebhook:
        """Build and sign a sandbox webhook request (as the provider's servers would)."""
        body = json.dumps(
            {
                "id": f"evt_sbx_{secrets.token_hex(12)}",
                "type": event_type,
                "created": round(time.time(), 6),  # sub-second: events in one request stay ordered
                "data": data,
            }
        ).encode()
        return SignedWebhook(body, {SIGNATURE_HEADER: sign(body)})

    def checkout_page_webhook(self, contribution, action, *, email="", name=""):
        if action == "complete":
            return self.complete(contribution, email, name)
        if action == "fail":
            return self.fail(contribution)
        if action == "cancel":
            return self.cancel_checkout(contribution)
        raise ValueError(f"Unknown checkout action {action!r}.")

    def simulate(self, action: str, target: Any, **options: Any) -> SignedWebhook:
        if action in ("renew", "fail-renewal"):
            return self.renew(
                target,
                succeed=action == "renew",
                period=options.get("period", 2),
                attempt=options.get("attempt", 1),
            )
        if action == "refund":
            return self.refund(target, options.get("amount"))
        if action == "dispute":
            return self.dispute(target, options.get("status", "open"))
        raise ProviderError(f"The sandbox cannot simulate {action!r}.")

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
        return self.webhook("checkout.completed", data)

    def fail(self, contribution, reason: str = "card_declined"):
        return self.webhook(
            "payment.failed",
            {"contribution_id": contribution.pk, "attempt": 1, "reason": reason},
        )

    def cancel_checkout(self, contribution):
        return self.webhook("checkout.cancelled", {"contribution_id": contribution.pk})

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
        return self.webhook("renewal.succeeded" if succeed else "renewal.failed", data)

    def refund(self, contribution, amount: int | None = None):
        return self.webhook(
            "payment.refunded",
            {
                "payment_id": contribution.payment_ref,
                "amount_refunded": contribution.amount if amount is None else amount,
            },
        )

    def dispute(self, contribution, status: str = "open"):
        return self.webhook(
            "dispute.updated", {"payment_id": contribution.payment_ref, "status": status}
        )

    def cancel_plan(self, plan) -> list[PaymentEvent]:
        # Nothing to call: the sandbox answers with the cancellation itself.
        return [
            PaymentEvent(
                kind=EventKind.PLAN_CANCELLED,
                occurred_at=from_timestamp(time.time()),
                plan_id=plan.pk,
                subscription_ref=plan.provider_ref or "",
            )
        ]

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

