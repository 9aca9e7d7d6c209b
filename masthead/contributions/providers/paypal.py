"""PayPal, through PayPal's official ``paypal-server-sdk``: Orders v2 and Subscriptions v1.

One-off gifts are Orders (intent CAPTURE) captured when the reader returns (or by the
reconciliation job if they never do); recurring plans are Subscriptions on a billing plan per
frequency, currency and amount, created once and remembered in :class:`ProviderObject`.
Requests that create something carry ``PayPal-Request-Id`` idempotency keys from our ids.

The SDK has no Catalog Products endpoint, so that call goes through ``requests`` with the
SDK's own OAuth token. Webhooks are verified here, before their body is decoded, the way
PayPal documents: size, transmission time within the tolerance (replays), then the RSA
signature over the transmission id, time, our ``PAYPAL_WEBHOOK_ID`` and the CRC32 of the raw
body, with PayPal's certificate (fetched once from PayPal's own host). ``PAYPAL_API_BASE``
points everything at a local stand-in in tests.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import zlib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.conf import settings
from django.db import IntegrityError

from .. import wording
from ..money import EXPONENTS
from .base import (
    CheckoutUrls,
    EventKind,
    IncomingEvent,
    PaymentEvent,
    PaymentProvider,
    ProviderError,
    WebhookError,
    check_age,
    check_size,
    decode_json,
    header,
    parse_iso,
)

INTERVALS = {"monthly": "MONTH", "annual": "YEAR"}
MAX_BODY = 512 * 1024
MAX_CERTIFICATE = 64 * 1024
TRANSMISSION_HEADERS = ("Transmission-Id", "Transmission-Time", "Transmission-Sig", "Cert-Url",
                        "Auth-Algo")
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
    wording_key = "paypal"
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
        self._certificates: dict[str, Any] = {}

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
        outlet = wording.brand_name()  # neutral with MASTHEAD_RECEIPT_NEUTRAL
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
                                "description": wording.product_name("once")[:127],
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
        # The neutral wording is another catalogue product (its name is the donor's history).
        key = "product:neutral" if wording.neutral() else "product"
        known = ProviderObject.objects.filter(provider=self.key, key=key).first()
        if known:
            return known.remote_id
        product = self._raw(
            "POST",
            "/v1/catalogs/products",
            {
                "name": wording.catalogue_name()[:127],
                "type": "SERVICE",
                "category": "NONPROFIT",
            },
            request_id=f"masthead-{key.replace(':', '-')}",
        )
        return self._remember(key, str(product["id"]))

    def _billing_plan(self, frequency: str, currency: str, amount: int) -> str:
        from ..models import ProviderObject

        key = f"plan:{frequency}:{currency}:{amount}" + (":neutral" if wording.neutral() else "")
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

    def missing_webhook_settings(self) -> list[str]:
        return [] if self.webhook_id else ["PAYPAL_WEBHOOK_ID"]

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> IncomingEvent:
        """PayPal's own recipe, done here rather than by asking PayPal: the signature is
        SHA256withRSA over ``transmission id|transmission time|our webhook id|CRC32(body)``,
        made with the certificate at ``PAYPAL-CERT-URL`` — which must be PayPal's (HTTPS on
        paypal.com, or the configured API host). The body is decoded only once it passed."""
        check_size(body, MAX_BODY)
        values = {name: header(headers, f"PayPal-{name}") for name in TRANSMISSION_HEADERS}
        if any(not value or len(value) > 2000 for value in values.values()):
            raise WebhookError("Missing PayPal transmission headers.")
        if values["Auth-Algo"] != "SHA256withRSA":
            raise WebhookError("Unsupported PayPal signature algorithm.")
        try:
            sent = parse_iso(values["Transmission-Time"])
            signature = base64.b64decode(values["Transmission-Sig"], validate=True)
        except (ValueError, OverflowError):
            raise WebhookError("Malformed PayPal transmission headers.")
        check_age(sent.timestamp(), "transmission time")
        public_key = self._certificate_key(values["Cert-Url"])
        message = "|".join(
            [
                values["Transmission-Id"],
                values["Transmission-Time"],
                self.webhook_id,
                str(zlib.crc32(body)),
            ]
        ).encode()
        try:
            public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError, TypeError):
            raise WebhookError("Signature verification failed.")
        event = decode_json(body)
        if not isinstance(event.get("id"), str):
            raise WebhookError("Malformed event.")
        return IncomingEvent(
            event["id"][:200],
            str(event.get("event_type", ""))[:100],
            event,
            # The transmission id is part of what PayPal signs: a replay cannot change it.
            delivery_id=hashlib.sha256(values["Transmission-Id"].encode()).hexdigest(),
        )

    def _certificate_key(self, url: str):
        """The public key of PayPal's signing certificate at ``url`` (kept per process)."""
        parts = urlsplit(url)
        api = urlsplit(self.api_base)
        host = (parts.hostname or "").lower()
        paypal_host = parts.scheme == "https" and (
            host == "paypal.com" or host.endswith(".paypal.com")
        )
        own_api = (parts.scheme, parts.netloc) == (api.scheme, api.netloc)
        if not (paypal_host or own_api) or parts.username or parts.password:
            raise WebhookError("The signing certificate is not PayPal's.")
        with self._lock:
            key = self._certificates.get(url)
        if key is not None:
            return key
        try:
            response = requests.get(url, timeout=TIMEOUT, allow_redirects=False, stream=True)
            pem = response.raw.read(MAX_CERTIFICATE, decode_content=True)
        except (requests.RequestException, OSError) as exc:
            raise WebhookError(f"Could not fetch PayPal's certificate: {exc}"[:200], 503)
        if response.status_code != 200:
            raise WebhookError("Could not fetch PayPal's certificate.", 503)
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise WebhookError("PayPal's certificate could not be read.", 503)
        now = dt.datetime.now(dt.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise WebhookError("PayPal's signing certificate is not valid now.")
        key = certificate.public_key()
        with self._lock:
            if len(self._certificates) >= 16:  # PayPal rotates rarely; stay bounded
                self._certificates.clear()
            self._certificates[url] = key
        return key

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
            # ``amount`` is this refund alone; the running total, when PayPal sends it, is
            # what a partial refund followed by another must add up to.
            amount = resource.get("amount") or {}
            currency = str(amount.get("currency") or "")
            total = resource.get("total_refunded_amount") or {}
            value = total.get("value") if total.get("value") else amount.get("total")
            currency = str(total.get("currency_code") or total.get("currency") or currency)
            return [
                PaymentEvent(
                    kind=EventKind.REFUNDED,
                    occurred_at=when,
                    payment_ref=str(resource.get("sale_id") or ""),
                    refunded_amount=abs(to_minor(value, currency) or 0),
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
        try:
            reason = {"reason": "Cancelled at the supporter's request"}
            self._sdk(
                self.client.subscriptions.cancel_subscription,
                {"id": plan.provider_ref, "body": reason},
            )
        except ProviderError as exc:
            # PayPal refuses to cancel a subscription that has already ended (422
            # SUBSCRIPTION_STATUS_INVALID): that is the state we want, not a failure.
            if not self._has_ended(plan.provider_ref, exc):
                raise
        return [
            PaymentEvent(
                kind=EventKind.PLAN_CANCELLED,
                occurred_at=dt.datetime.now(dt.UTC),
                plan_id=plan.pk,
                subscription_ref=plan.provider_ref,
            )
        ]

    def fetch_plan_updates(self, plan) -> list[PaymentEvent]:
        """A plan whose renewal is overdue here: the subscription's payments of the last two
        periods (sale ids, as PAYMENT.SALE.COMPLETED names them), its last failed payment and
        whether it has ended — each translated as its webhook would be."""
        if not plan.provider_ref:
            return []
        sub = self._sdk(self.client.subscriptions.get_subscription, {"id": plan.provider_ref})
        now = dt.datetime.now(dt.UTC)
        start = now - dt.timedelta(days=800 if plan.frequency == "annual" else 70)
        listed = self._sdk(
            self.client.subscriptions.list_subscription_transactions,
            {
                "id": plan.provider_ref,
                "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end_time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
        events: list[PaymentEvent] = []
        for tx in listed.get("transactions") or []:
            if str(tx.get("status") or "").upper() != "COMPLETED":
                continue
            gross = (tx.get("amount_with_breakdown") or {}).get("gross_amount") or {}
            sale = {
                "id": tx.get("id"),
                "amount": {"total": gross.get("value"), "currency": gross.get("currency_code")},
                "billing_agreement_id": plan.provider_ref,
                "custom": sub.get("custom_id"),
                "create_time": tx.get("time"),
            }
            events += self.translate(
                "PAYMENT.SALE.COMPLETED", {"resource": sale, "create_time": tx.get("time")}
            )
        info = sub.get("billing_info") or {}
        if (info.get("last_failed_payment") or {}).get("time"):
            events += self.translate(
                "BILLING.SUBSCRIPTION.PAYMENT.FAILED",
                {"resource": sub, "create_time": info["last_failed_payment"]["time"]},
            )
        if str(sub.get("status") or "").upper() in ("CANCELLED", "EXPIRED"):
            when = sub.get("status_update_time") or now.isoformat()
            events += self.translate(
                "BILLING.SUBSCRIPTION.CANCELLED", {"resource": sub, "create_time": when}
            )
        return events

    def _has_ended(self, ref: str, refusal: ProviderError) -> bool:
        text = str(refusal)
        if "SUBSCRIPTION_STATUS_INVALID" not in text and "RESOURCE_NOT_FOUND" not in text:
            return False
        try:
            sub = self._sdk(self.client.subscriptions.get_subscription, {"id": ref})
        except ProviderError as exc:
            return "RESOURCE_NOT_FOUND" in str(exc)
        return str(sub.get("status") or "").upper() in ("CANCELLED", "EXPIRED")

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
