"""PayPal, through PayPal's official ``paypal-server-sdk``: Orders v2 and Subscriptions v1.

One-off gifts are Orders (intent CAPTURE) captured when the reader returns (or by the
reconciliation job if they never do); recurring plans are Subscriptions on a billing plan per
frequency, currency and amount, created once and remembered in :class:`ProviderObject`.
Requests that create something carry ``PayPal-Request-Id`` idempotency keys from our ids.

The SDK has no Catalog Products or webhook-verification endpoints, so those two calls go
through ``requests`` with the SDK's own OAuth token. Webhooks are refused when their
transmission time is outside the tolerance (replays) and otherwise checked with PayPal's
``verify-webhook-signature`` API against our ``PAYPAL_WEBHOOK_ID``. ``PAYPAL_API_BASE``
points everything at a local stand-in in tests.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings
from django.db import IntegrityError

from ..money import EXPONENTS
from .base import (
    CheckoutUrls,
    EventKind,
    IncomingEvent,
    PaymentEvent,
    PaymentProvider,
    ProviderError,
    WebhookError,
    parse_iso,
)

INTERVALS = {"monthly": "MONTH", "annual": "YEAR"}
MAX_BODY = 512 * 1024
TIMEOUT = 20


def to_major(amount: int, currency: str) -> str:
    exponent = EXPONENTS.get(currency, 2)
    return f"{Decimal(amount).scaleb(-exponent):.{exponent}f}"


def to_minor(value: Any, currency: str) -> int | None:
    try:
        minor = Decimal(str(value)).scaleb(EXPONENTS.get(currency, 2))
    except (InvalidOperation, ValueError):
        return None
    return int(minor) if minor == minor.to_integral_value() else None


def _ref(custom: Any, prefix: str) -> int | None:
    """Our ids travel as ``custom_id`` "c<contribution>" or "p<plan>"."""
    text = str(custom or "")
    if text.startswith(prefix) and text[1:].isdigit():
        return int(text[1:])
    return None


class PayPalProvider(PaymentProvider):
    display_name = "PayPal"
    marks = ("PayPal",)

    def __init__(self, key: str, **options: Any) -> None:
        super().__init__(key, **options)
        self.client_id = options.get("client_id") or settings.PAYPAL_CLIENT_ID
        self.client_secret = options.get("client_secret") or settings.PAYPAL_CLIENT_SECRET
        self.webhook_id = options.get("webhook_id") or settings.PAYPAL_WEBHOOK_ID
        live = options.get("live", settings.PAYPAL_LIVE)
        self.api_base = (
            options.get("api_base")
            or settings.PAYPAL_API_BASE
            or ("https://api-m.paypal.com" if live else "https://api-m.sandbox.paypal.com")
        ).rstrip("/")
        self._client = None
        self._token = None
        self._lock = threading.Lock()

    # --- the SDK client -----------------------------------------------------------------

    @property
    def client(self):
        if not (self.client_id and self.client_secret):
            raise ProviderError("PayPal is not configured (PAYPAL_CLIENT_ID/SECRET).")
        with self._lock:
            if self._client is None:
                from paypalserversdk.configuration import Configuration, Environment
                from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials
                from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient

                base = self.api_base

                class _Configuration(Configuration):
                    # The SDK knows only PayPal's two hosts; ours may be a stand-in.
                    def get_base_uri(self, server=None):
                        return base

                    def clone_with(self, **kwargs):
                        clone = super().clone_with(**kwargs)
                        clone.__class__ = _Configuration
                        return clone

                config = _Configuration(
                    timeout=TIMEOUT,
                    max_retries=2,
                    environment=Environment.PRODUCTION,
                    client_credentials_auth_credentials=ClientCredentialsAuthCredentials(
                        o_auth_client_id=self.client_id,
                        o_auth_client_secret=self.client_secret,
                    ),
                )
                self._client = PaypalServersdkClient(config=config)
            return self._client

    def _sdk(self, call, options: dict[str, Any]) -> dict[str, Any]:
        from paypalserversdk.exceptions.api_exception import ApiException

        try:
            response = call(options)
        except ApiException as exc:
            detail = getattr(getattr(exc, "response", None), "text", "") or exc.reason
            raise ProviderError(f"PayPal: {exc.response_code} {detail}"[:300]) from exc
        except requests.RequestException as exc:
            raise ProviderError(f"PayPal unreachable: {exc}"[:300]) from exc
        text = getattr(response, "text", "") or ""
        try:
            return json.loads(text) if text.strip() else {}
        except ValueError:
            return {}

    def _access_token(self) -> str:
        client = self.client
        with self._lock:
            if self._token is None or client.oauth_2.is_token_expired(self._token):
                from paypalserversdk.exceptions.api_exception import ApiException

                try:
                    self._token = client.oauth_2.fetch_token()
                except (ApiException, requests.RequestException) as exc:
                    raise ProviderError(f"PayPal authentication failed: {exc}"[:300]) from exc
            return self._token.access_token

    def _raw(self, method: str, path: str, body: dict, request_id: str = "") -> dict[str, Any]:
        headers = {
            "Authorization": f"Bearer {self._access_token()}",
            "Content-Type": "application/json",
        }
        if request_id:
            headers["PayPal-Request-Id"] = request_id
        try:
            response = requests.request(
                method, self.api_base + path, json=body, headers=headers, timeout=TIMEOUT
            )
        except requests.RequestException as exc:
            raise ProviderError(f"PayPal unreachable: {exc}"[:300]) from exc
        if response.status_code >= 400:
            raise ProviderError(f"PayPal: {response.status_code} {response.text[:200]}")
        try:
            return response.json()
        except ValueError:
            return {}

    # --- checkout -----------------------------------------------------------------------

    def start_checkout(self, contribution, plan, urls: CheckoutUrls) -> str:
        outlet = settings.MASTHEAD_OUTLET_NAME
        if plan is None:
            order = self._sdk(
                self.client.orders.create_order,
                {
                    "body": {
                        "intent": "CAPTURE",
                        "purchase_units": [
                            {
                                "reference_id": str(contribution.pk),
                                "custom_id": f"c{contribution.pk}",
                                "description": f"Contribution to {outlet}"[:127],
                                "amount": {
                                    "currency_code": contribution.currency,
                                    "value": to_major(contribution.amount, contribution.currency),
                                },
                            }
                        ],
                        "payment_source": {
                            "paypal": {
                                "experience_context": {
                                    "brand_name": outlet[:127],
                                    "user_action": "PAY_NOW",
                                    "shipping_preference": "NO_SHIPPING",
                                    "return_url": urls.return_url,
                                    "cancel_url": urls.cancel,
                                }
                            }
                        },
                    },
                    "paypal_request_id": f"masthead-order-{contribution.pk}",
                    "prefer": "return=representation",
                },
            )
            contribution.checkout_ref = str(order.get("id") or "")
            url = _link(order, "payer-action") or _link(order, "approve")
        else:
            plan_id = self._billing_plan(plan.frequency, plan.currency, plan.amount)
            subscription = self._sdk(
                self.client.subscriptions.create_subscription,
                {
                    "body": {
                        "plan_id": plan_id,
                        "custom_id": f"p{plan.pk}",
                        "application_context": {
                            "brand_name": outlet[:127],
                            "shipping_preference": "NO_SHIPPING",
                            "user_action": "SUBSCRIBE_NOW",
                            "return_url": urls.return_url,
                            "cancel_url": urls.cancel,
                        },
                    },
                    "paypal_request_id": f"masthead-subscription-{plan.pk}",
                    "prefer": "return=representation",
                },
            )
            contribution.checkout_ref = str(subscription.get("id") or "")
            plan.provider_ref = contribution.checkout_ref
            url = _link(subscription, "approve")
        if not contribution.checkout_ref or not url:
            raise ProviderError("PayPal returned no approval link.")
        return url

    def _product(self) -> str:
        from ..models import ProviderObject

        if settings.PAYPAL_PRODUCT_ID:
            return settings.PAYPAL_PRODUCT_ID
        known = ProviderObject.objects.filter(provider=self.key, key="product").first()
        if known:
            return known.remote_id
        product = self._raw(
            "POST",
            "/v1/catalogs/products",
            {
                "name": f"Support {settings.MASTHEAD_OUTLET_NAME}"[:127],
                "type": "SERVICE",
                "category": "NONPROFIT",
            },
            request_id="masthead-product",
        )
        return self._remember("product", str(product["id"]))

    def _billing_plan(self, frequency: str, currency: str, amount: int) -> str:
        from ..models import ProviderObject

        key = f"plan:{frequency}:{currency}:{amount}"
        known = ProviderObject.objects.filter(provider=self.key, key=key).first()
        if known:
            return known.remote_id
        plan = self._sdk(
            self.client.subscriptions.create_billing_plan,
            {
                "body": {
                    "product_id": self._product(),
                    "name": f"{frequency.title()} {to_major(amount, currency)} {currency}",
                    "status": "ACTIVE",
                    "billing_cycles": [
                        {
                            "frequency": {
                                "interval_unit": INTERVALS[frequency],
                                "interval_count": 1,
                            },
                            "tenure_type": "REGULAR",
                            "sequence": 1,
                            "total_cycles": 0,
                            "pricing_scheme": {
                                "fixed_price": {
                                    "value": to_major(amount, currency),
                                    "currency_code": currency,
                                }
                            },
                        }
                    ],
                    "payment_preferences": {
                        "auto_bill_outstanding": True,
                        "payment_failure_threshold": settings.MASTHEAD_DUNNING_MAX_TRIES,
                    },
                },
                "paypal_request_id": f"masthead-{key.replace(':', '-')}",
                "prefer": "return=representation",
            },
        )
        return self._remember(key, str(plan["id"]))

    def _remember(self, key: str, remote_id: str) -> str:
        from ..models import ProviderObject

        try:
            obj, _ = ProviderObject.objects.get_or_create(
                provider=self.key, key=key, defaults={"remote_id": remote_id}
            )
        except IntegrityError:
            obj = ProviderObject.objects.get(provider=self.key, key=key)
        return obj.remote_id

    def handle_return(self, contribution, params: Mapping[str, str]) -> list[PaymentEvent]:
        return self.fetch_updates(contribution)

    def fetch_updates(self, contribution) -> list[PaymentEvent]:
        if not contribution.checkout_ref:
            return []
        now = dt.datetime.now(dt.UTC)
        if contribution.plan_id:
            sub = self._sdk(
                self.client.subscriptions.get_subscription, {"id": contribution.checkout_ref}
            )
            if sub.get("status") in ("ACTIVE", "SUSPENDED"):
                return self._subscription_activated(sub, now)
            if sub.get("status") in ("CANCELLED", "EXPIRED"):
                return [
                    PaymentEvent(
                        kind=EventKind.CHECKOUT_ABANDONED,
                        occurred_at=now,
                        contribution_id=contribution.pk,
                    )
                ]
            return []
        order = self._sdk(self.client.orders.get_order, {"id": contribution.checkout_ref})
        if order.get("status") == "APPROVED":
            order = self._sdk(
                self.client.orders.capture_order,
                {
                    "id": contribution.checkout_ref,
                    "paypal_request_id": f"masthead-capture-{contribution.pk}",
                    "prefer": "return=representation",
                },
            )
        if order.get("status") != "COMPLETED":
            return []
        payer = order.get("payer") or (order.get("payment_source") or {}).get("paypal") or {}
        name = payer.get("name") or {}
        events = [
            PaymentEvent(
                kind=EventKind.CHECKOUT_COMPLETED,
                occurred_at=now,
                contribution_id=contribution.pk,
                checkout_ref=contribution.checkout_ref,
                email=str(payer.get("email_address") or ""),
                name=" ".join(filter(None, [name.get("given_name"), name.get("surname")])),
            )
        ]
        for unit in order.get("purchase_units") or []:
            for capture in (unit.get("payments") or {}).get("captures") or []:
                events.extend(self._capture_events("PAYMENT.CAPTURE.COMPLETED", capture, now))
        return events

    # --- webhooks -----------------------------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> IncomingEvent:
        if len(body) > MAX_BODY:
            raise WebhookError("Webhook body too large.", 413)
        if not self.webhook_id:
            raise WebhookError("PayPal webhooks are not configured.", 503)
        lower = {k.lower(): v for k, v in headers.items()}
        needed = [
            "paypal-transmission-id",
            "paypal-transmission-time",
            "paypal-transmission-sig",
            "paypal-cert-url",
            "paypal-auth-algo",
        ]
        if any(not lower.get(name) for name in needed):
            raise WebhookError("Missing PayPal transmission headers.")
        try:
            sent = parse_iso(lower["paypal-transmission-time"])
        except ValueError:
            raise WebhookError("Malformed transmission time.")
        age = abs((dt.datetime.now(dt.UTC) - sent).total_seconds())
        if age > settings.MASTHEAD_WEBHOOK_TOLERANCE:
            raise WebhookError(
                "Webhook transmission time outside the tolerance: refused as a replay."
            )
        try:
            event = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookError("Malformed event.")
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            raise WebhookError("Malformed event.")
        try:
            verdict = self._raw(
                "POST",
                "/v1/notifications/verify-webhook-signature",
                {
                    "auth_algo": lower["paypal-auth-algo"],
                    "cert_url": lower["paypal-cert-url"],
                    "transmission_id": lower["paypal-transmission-id"],
                    "transmission_sig": lower["paypal-transmission-sig"],
                    "transmission_time": lower["paypal-transmission-time"],
                    "webhook_id": self.webhook_id,
                    "webhook_event": event,
                },
            )
        except ProviderError as exc:
            raise WebhookError(f"Could not verify with PayPal: {exc}", 503)
        if verdict.get("verification_status") != "SUCCESS":
            raise WebhookError("Signature verification failed.")
        return IncomingEvent(event["id"][:200], str(event.get("event_type", ""))[:100], event)

    def translate(self, event_type: str, payload: dict[str, Any]) -> list[PaymentEvent]:
        resource = payload.get("resource") or {}
        when = parse_iso(payload.get("create_time"))
        if event_type.startswith("PAYMENT.CAPTURE."):
            return self._capture_events(event_type, resource, when)
        if event_type == "BILLING.SUBSCRIPTION.ACTIVATED":
            return self._subscription_activated(resource, when)
        if event_type in ("BILLING.SUBSCRIPTION.CANCELLED", "BILLING.SUBSCRIPTION.EXPIRED"):
            return [
                PaymentEvent(
                    kind=EventKind.PLAN_CANCELLED,
                    occurred_at=when,
                    plan_id=_ref(resource.get("custom_id"), "p"),
                    subscription_ref=str(resource.get("id") or ""),
                )
            ]
        if event_type == "BILLING.SUBSCRIPTION.PAYMENT.FAILED":
            info = resource.get("billing_info") or {}
            failed = info.get("last_failed_payment") or {}
            amount = failed.get("amount") or {}
            currency = str(amount.get("currency_code") or "")
            sub = str(resource.get("id") or "")
            return [
                PaymentEvent(
                    kind=EventKind.PAYMENT_FAILED,
                    occurred_at=parse_iso(failed.get("time")) if failed.get("time") else when,
                    plan_id=_ref(resource.get("custom_id"), "p"),
                    subscription_ref=sub,
                    payment_ref=f"{sub}:failed:{failed.get('time') or payload.get('id')}"[:100],
                    amount=to_minor(amount.get("value"), currency) if currency else None,
                    currency=currency,
                    attempt=int(info.get("failed_payments_count") or 1),
                    reason="paypal_payment_failed",
                )
            ]
        if event_type == "PAYMENT.SALE.COMPLETED":
            amount = resource.get("amount") or {}
            currency = str(amount.get("currency") or "")
            return [
                PaymentEvent(
                    kind=EventKind.PAYMENT_SUCCEEDED,
                    occurred_at=parse_iso(resource.get("create_time")) or when,
                    plan_id=_ref(resource.get("custom"), "p"),
                    subscription_ref=str(resource.get("billing_agreement_id") or ""),
                    payment_ref=str(resource.get("id") or ""),
                    amount=to_minor(amount.get("total"), currency),
                    currency=currency,
                    # The plan's first payment, unless that one is already matched.
                    first_payment=True,
                )
            ]
        if event_type in ("PAYMENT.SALE.REFUNDED", "PAYMENT.SALE.REVERSED"):
            amount = resource.get("amount") or {}
            currency = str(amount.get("currency") or "")
            return [
                PaymentEvent(
                    kind=EventKind.REFUNDED,
                    occurred_at=when,
                    payment_ref=str(resource.get("sale_id") or ""),
                    refunded_amount=abs(to_minor(amount.get("total"), currency) or 0),
                )
            ]
        if event_type.startswith("CUSTOMER.DISPUTE."):
            outcome = (resource.get("dispute_outcome") or {}).get("outcome_code", "")
            status = "open"
            if resource.get("status") == "RESOLVED":
                status = "won" if outcome == "RESOLVED_SELLER_FAVOUR" else "lost"
            return [
                PaymentEvent(
                    kind=EventKind.DISPUTE,
                    occurred_at=when,
                    payment_ref=str(tx.get("seller_transaction_id") or ""),
                    dispute_status=status,
                )
                for tx in resource.get("disputed_transactions") or []
            ]
        return []

    def _capture_events(self, event_type: str, capture: dict, when) -> list[PaymentEvent]:
        related = (capture.get("supplementary_data") or {}).get("related_ids") or {}
        refs = {
            "occurred_at": parse_iso(capture.get("create_time"))
            if capture.get("create_time")
            else when,
            "contribution_id": _ref(capture.get("custom_id"), "c"),
            "checkout_ref": str(related.get("order_id") or ""),
        }
        amount = capture.get("amount") or {}
        currency = str(amount.get("currency_code") or "")
        if event_type == "PAYMENT.CAPTURE.COMPLETED" and capture.get("status") == "COMPLETED":
            return [
                PaymentEvent(
                    kind=EventKind.PAYMENT_SUCCEEDED,
                    payment_ref=str(capture.get("id") or ""),
                    amount=to_minor(amount.get("value"), currency),
                    currency=currency,
                    **refs,
                )
            ]
        if event_type in ("PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.DECLINED"):
            return [PaymentEvent(kind=EventKind.PAYMENT_FAILED, reason="capture_denied", **refs)]
        if event_type == "PAYMENT.CAPTURE.REFUNDED":
            up = next(
                (lk["href"] for lk in capture.get("links") or [] if lk.get("rel") == "up"), ""
            )
            breakdown = capture.get("seller_payable_breakdown") or {}
            total = (breakdown.get("total_refunded_amount") or amount).get("value")
            return [
                PaymentEvent(
                    kind=EventKind.REFUNDED,
                    occurred_at=when,
                    payment_ref=up.rstrip("/").rsplit("/", 1)[-1],
                    refunded_amount=to_minor(total, currency) or 0,
                )
            ]
        return []

    def _subscription_activated(self, sub: dict, when) -> list[PaymentEvent]:
        subscriber = sub.get("subscriber") or {}
        name = subscriber.get("name") or {}
        refs = {
            "occurred_at": when,
            "plan_id": _ref(sub.get("custom_id"), "p"),
            "subscription_ref": str(sub.get("id") or ""),
            "customer_ref": str(subscriber.get("payer_id") or ""),
        }
        return [
            PaymentEvent(
                kind=EventKind.CHECKOUT_COMPLETED,
                email=str(subscriber.get("email_address") or ""),
                name=" ".join(filter(None, [name.get("given_name"), name.get("surname")])),
                **refs,
            ),
            PaymentEvent(kind=EventKind.PLAN_ACTIVATED, **refs),
        ]

    # --- plans --------------------------------------------------------------------------

    def cancel_plan(self, plan) -> list[PaymentEvent]:
        if not plan.provider_ref:
            return []
        self._sdk(
            self.client.subscriptions.cancel_subscription,
            {"id": plan.provider_ref, "body": {"reason": "Cancelled at the supporter's request"}},
        )
        return [
            PaymentEvent(
                kind=EventKind.PLAN_CANCELLED,
                occurred_at=dt.datetime.now(dt.UTC),
                plan_id=plan.pk,
                subscription_ref=plan.provider_ref,
            )
        ]

    def change_plan(self, plan, amount: int, frequency: str) -> list[PaymentEvent]:
        if not plan.provider_ref:
            raise ProviderError("This plan has no PayPal subscription yet.")
        new_plan = self._billing_plan(frequency, plan.currency, amount)
        revision = self._sdk(
            self.client.subscriptions.revise_subscription,
            {"id": plan.provider_ref, "body": {"plan_id": new_plan}},
        )
        if _link(revision, "approve"):
            # PayPal wants the payer to approve this change on its site; we cannot do it
            # for them, so nothing changes here until they do.
            raise ProviderError("PayPal needs you to approve this change on PayPal's site.")
        return []

    def fix_payment_url(self, plan, return_url: str) -> str:
        live = "sandbox" not in self.api_base
        host = "https://www.paypal.com" if live else "https://www.sandbox.paypal.com"
        return f"{host}/myaccount/autopay/" if plan.provider_ref else ""


def _link(resource: dict, rel: str) -> str:
    for link in resource.get("links") or []:
        if link.get("rel") == rel:
            return str(link.get("href") or "")
    return ""
