"""A local stand-in for a BTCPay Server store, speaking the part of the Greenfield API
Masthead uses, and sending webhooks signed exactly as BTCPay signs them.

Modelled on BTCPay Server's own sources (``BTCPayServer.Client/Models``: ``InvoiceData``,
``WebhookInvoiceEvent`` and its subclasses; ``HostedServices/Webhooks/WebhookSender``):

- ``POST /api/v1/stores/{storeId}/invoices`` creates an invoice (``amount`` is a decimal
  string, ``metadata`` free JSON, ``checkout.redirectURL`` / ``requiresRefundEmail`` /
  ``expirationMinutes``); ``GET .../invoices/{id}`` and ``GET .../invoices/{id}/payment-methods``
  read it back. Every API call needs ``Authorization: token <apikey>`` (401 otherwise, 403
  for another store); a bad body gets 422 with Greenfield's ``[{"path", "message"}]``.
- ``GET/POST /i/{id}`` is the hosted checkout a reader's browser sees (the email BTCPay asks
  for with ``requiresRefundEmail`` lands in ``metadata.buyerEmail``, as in BTCPay).
- Webhooks: JSON with ``deliveryId``, ``webhookId``, ``originalDeliveryId``,
  ``isRedelivery``, ``type``, ``timestamp`` (Unix seconds), ``storeId``, ``invoiceId``,
  ``metadata`` and the type's own fields (``overPaid``, ``partiallyPaid``,
  ``afterExpiration``, ``manuallyMarked``, ``paymentMethod``, ``payment``), signed with the
  header ``BTCPay-Sig: sha256=<hex HMAC-SHA256 of the raw body with the webhook secret>``.
  A redelivery is a new delivery (new ``deliveryId``) naming the first in
  ``originalDeliveryId``, with ``isRedelivery: true``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.request
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Any
from urllib.parse import parse_qsl

from .standins import StandIn

BTCPAY_PROVIDER = "masthead.contributions.providers.btcpay.BTCPayProvider"
BTCPAY_WEBHOOK_SECRET = "btcpay-standin-webhook-secret"  # noqa: S105
_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def btcpay_signature(body: bytes, secret: str) -> str:
    """The ``BTCPay-Sig`` header of a delivery."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _delivery_id() -> str:
    # BTCPay's ids are random base58 strings (Encoders.Base58 of 16 random bytes).
    return "".join(secrets.choice(_ALPHABET) for _ in range(22))


class BTCPayStandIn(StandIn):
    """One BTCPay store: invoices in memory, hosted checkout, signed webhooks."""

    def __init__(
        self,
        api_key: str = "btcpay-standin-api-key",
        store_id: str = "StandInStore1",
        webhook_secret: str = BTCPAY_WEBHOOK_SECRET,
    ) -> None:
        self.api_key = api_key
        self.store_id = store_id
        self.webhook_secret = webhook_secret
        self.webhook_id = "StandInWebhook1"
        self.webhook_url = ""
        self.invoices: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, list[dict[str, Any]]] = {}
        self.sent: list[dict[str, Any]] = []
        super().__init__()

    # --- HTTP ---------------------------------------------------------------------------

    def parse_body(self, headers, body):
        if not body:
            return {}
        if (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            return dict(parse_qsl(body.decode(), keep_blank_values=True))
        try:
            return json.loads(body)
        except ValueError:
            return {"__malformed__": True}

    def handle(self, method, path, headers, body):
        if path.startswith("/i/"):
            return self._hosted(method, path.removeprefix("/i/").strip("/"), body)
        prefix = "/api/v1/stores/"
        if not path.startswith(prefix):
            return 404, {"code": "not-found", "message": "Not found"}
        if headers.get("Authorization") != f"token {self.api_key}":
            return 401, {"code": "unauthenticated", "message": "Authentication is required"}
        parts = path.removeprefix(prefix).strip("/").split("/")
        if parts[0] != self.store_id:
            return 403, {"code": "missing-permission", "message": "Insufficient API Permissions"}
        if parts[1:] == ["invoices"] and method == "POST":
            return self._create_invoice(body)
        if len(parts) >= 3 and parts[1] == "invoices":
            invoice = self.invoices.get(parts[2])
            if invoice is None:
                return 404, {"code": "invoice-not-found", "message": "The invoice was not found"}
            if len(parts) == 3 and method == "GET":
                return 200, invoice
            if parts[3:] == ["payment-methods"] and method == "GET":
                return 200, self._payment_methods(invoice)
        return 404, {"code": "not-found", "message": "Not found"}

    def _create_invoice(self, body):
        errors = []
        if not isinstance(body, dict) or body.get("__malformed__"):
            return 400, {"code": "invalid-json", "message": "Body is not JSON"}
        try:
            amount = Decimal(str(body.get("amount")))
            if amount <= 0:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            errors.append({"path": "amount", "message": "Amount should be greater than 0"})
        currency = body.get("currency")
        if not isinstance(currency, str) or not (3 <= len(currency) <= 5):
            errors.append({"path": "currency", "message": "Invalid currency"})
        if errors:
            return 422, errors
        checkout = dict(body.get("checkout") or {})
        now = int(time.time())
        minutes = int(checkout.get("expirationMinutes") or 15)
        invoice_id = "".join(secrets.choice(_ALPHABET) for _ in range(22))
        invoice = {
            "id": invoice_id,
            "storeId": self.store_id,
            "amount": str(body["amount"]),
            "currency": currency.upper(),
            "type": "Standard",
            "checkoutLink": f"{self.url}/i/{invoice_id}",
            "createdTime": now,
            "expirationTime": now + minutes * 60,
            "monitoringExpiration": now + minutes * 60 + 3600,
            "status": "New",
            "additionalStatus": "None",
            "availableStatusesForManualMarking": ["Settled", "Invalid"],
            "archived": False,
            "metadata": dict(body.get("metadata") or {}),
            "checkout": {
                "speedPolicy": checkout.get("speedPolicy", "MediumSpeed"),
                "expirationMinutes": minutes,
                "redirectURL": checkout.get("redirectURL"),
                "redirectAutomatically": bool(checkout.get("redirectAutomatically")),
                "requiresRefundEmail": checkout.get("requiresRefundEmail"),
                "defaultLanguage": checkout.get("defaultLanguage"),
            },
            "receipt": dict(body.get("receipt") or {}),
        }
        self.invoices[invoice_id] = invoice
        self.payments[invoice_id] = []
        self.sent.append(self.event("InvoiceCreated", invoice_id))
        return 200, invoice

    def _payment_methods(self, invoice):
        paid = sum(Decimal(p["value"]) for p in self.payments[invoice["id"]])
        rate = Decimal("50000")  # the stand-in's fixed BTC price in any currency
        due = (Decimal(invoice["amount"]) / rate).quantize(Decimal("0.00000001"))
        return [
            {
                "paymentMethodId": "BTC-CHAIN",
                "currency": "BTC",
                "destination": "bcrt1qstandinaddress",
                "paymentLink": f"bitcoin:bcrt1qstandinaddress?amount={due}",
                "rate": str(rate),
                "paymentMethodPaid": str(paid),
                "totalPaid": str(paid),
                "due": str(max(due - paid, Decimal(0))),
                "amount": str(due),
                "paymentMethodFee": "0",
                "payments": self.payments[invoice["id"]],
                "activated": True,
            }
        ]

    # --- the hosted checkout ------------------------------------------------------------

    def _hosted(self, method, invoice_id, form):
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            return 404, "<h1>Invoice not found</h1>"
        if method == "GET":
            if invoice["status"] != "New":
                return 200, f"<h1>Invoice {escape(invoice['status'].lower())}</h1>"
            return 200, (
                "<!DOCTYPE html><html lang=en><title>BTCPay test checkout</title>"
                "<h1>BTCPay test checkout</h1>"
                f"<p class=due>Pay {escape(invoice['amount'])} {escape(invoice['currency'])}</p>"
                f"<p class=desc>{escape(str(invoice['metadata'].get('itemDesc', '')))}</p>"
                f'<form method=post action="/i/{invoice_id}">'
                "<label for=email>Refund email</label>"
                "<input id=email name=email type=email>"
                "<button name=pay value=full>Pay in full</button>"
                "<button name=pay value=part>Pay half</button>"
                "<button name=pay value=over>Pay more</button>"
                "</form></html>"
            )
        share = {"full": Decimal(1), "part": Decimal("0.5"), "over": Decimal("1.2")}
        events = self.pay(invoice_id, form.get("email", ""), share.get(form.get("pay"), 1))
        if share.get(form.get("pay")) == Decimal("0.5"):
            events += self.expire(invoice_id)
        self.lock.release()  # let the site call back into the stand-in while it is notified
        try:
            for event in events:
                self.post_webhook(event)
        finally:
            self.lock.acquire()
        redirect = invoice["checkout"].get("redirectURL")
        if redirect:
            return 303, "", {"Location": redirect}
        return 200, "<h1>Paid</h1>"

    # --- what BTCPay would send ---------------------------------------------------------

    def event(self, event_type: str, invoice_id: str, when: int | None = None, **fields) -> dict:
        delivery = _delivery_id()
        invoice = self.invoices[invoice_id]
        event = {
            "deliveryId": delivery,
            "webhookId": self.webhook_id,
            "originalDeliveryId": delivery,
            "isRedelivery": False,
            "type": event_type,
            "timestamp": int(time.time()) if when is None else when,
            "storeId": self.store_id,
            "invoiceId": invoice_id,
            "metadata": dict(invoice["metadata"]),
        }
        event.update(fields)
        return event

    @staticmethod
    def redelivery(event: dict) -> dict:
        """BTCPay's redelivery of a delivery: a new delivery naming the first."""
        again = dict(event)
        again["deliveryId"] = _delivery_id()
        again["originalDeliveryId"] = event["originalDeliveryId"]
        again["isRedelivery"] = True
        return again

    def _payment(self, invoice_id: str, share: Decimal, when: int) -> dict:
        due = Decimal(self._payment_methods(self.invoices[invoice_id])[0]["amount"])
        payment = {
            "id": f"{secrets.token_hex(32)}-0",
            "receivedDate": when,
            "value": str((due * share).quantize(Decimal("0.00000001"))),
            "fee": "0.00000000",
            "status": "Processing",
            "destination": "bcrt1qstandinaddress",
        }
        self.payments[invoice_id].append(payment)
        return payment

    def pay(
        self, invoice_id: str, email: str = "", share: Decimal | int = 1, when: int | None = None
    ) -> list[dict]:
        """A payment of ``share`` of the amount due: seen, then (when enough) processing
        and settled after its confirmations, as BTCPay reports them."""
        when = int(time.time()) if when is None else when
        invoice = self.invoices[invoice_id]
        if email:
            invoice["metadata"]["buyerEmail"] = email
        share = Decimal(share)
        expired = invoice["status"] == "Expired"
        payment = self._payment(invoice_id, share, when)
        events = [
            self.event(
                "InvoiceReceivedPayment",
                invoice_id,
                when,
                afterExpiration=expired,
                paymentMethod="BTC-CHAIN",
                payment=dict(payment),
            )
        ]
        methods = self._payment_methods(invoice)[0]
        if Decimal(methods["totalPaid"]) < Decimal(methods["amount"]):
            invoice["additionalStatus"] = "PaidPartial"
            return events
        over = Decimal(methods["totalPaid"]) > Decimal(methods["amount"])
        invoice["additionalStatus"] = "PaidOver" if over else ("PaidLate" if expired else "None")
        invoice["status"] = "Processing"
        events.append(self.event("InvoiceProcessing", invoice_id, when + 1, overPaid=over))
        for item in self.payments[invoice_id]:
            item["status"] = "Settled"
        payment["status"] = "Settled"
        events.append(
            self.event(
                "InvoicePaymentSettled",
                invoice_id,
                when + 2,
                afterExpiration=expired,
                paymentMethod="BTC-CHAIN",
                payment=dict(payment),
            )
        )
        invoice["status"] = "Settled"
        events.append(
            self.event("InvoiceSettled", invoice_id, when + 3, manuallyMarked=False, overPaid=over)
        )
        return events

    def expire(self, invoice_id: str, when: int | None = None) -> list[dict]:
        invoice = self.invoices[invoice_id]
        partial = bool(self.payments[invoice_id])
        invoice["status"] = "Expired"
        if partial:
            invoice["additionalStatus"] = "PaidPartial"
        return [self.event("InvoiceExpired", invoice_id, when, partiallyPaid=partial)]

    def mark_invalid(self, invoice_id: str, when: int | None = None) -> list[dict]:
        self.invoices[invoice_id]["status"] = "Invalid"
        self.invoices[invoice_id]["additionalStatus"] = "Marked"
        return [self.event("InvoiceInvalid", invoice_id, when, manuallyMarked=True)]

    def mark_settled(self, invoice_id: str, when: int | None = None) -> list[dict]:
        self.invoices[invoice_id]["status"] = "Settled"
        self.invoices[invoice_id]["additionalStatus"] = "Marked"
        return [self.event("InvoiceSettled", invoice_id, when, manuallyMarked=True, overPaid=False)]

    def signed(self, event: dict) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(event).encode()
        return body, {
            "Content-Type": "application/json",
            "BTCPay-Sig": btcpay_signature(body, self.webhook_secret),
        }

    def post_webhook(self, event: dict) -> int:
        body, headers = self.signed(event)
        request = urllib.request.Request(self.webhook_url, data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status


def configured_btcpay(settings):
    """The stand-in, and the site configured to use it (BTCPay beside the sandbox): a
    generator for a test module's fixture (``yield from configured_btcpay(settings)``)."""
    standin = BTCPayStandIn()
    settings.MASTHEAD_PAYMENT_PROVIDERS = {
        "btcpay": {"BACKEND": BTCPAY_PROVIDER},
        "sandbox": {"BACKEND": "masthead.contributions.providers.sandbox.SandboxProvider"},
    }
    settings.BTCPAY_URL = standin.url
    settings.BTCPAY_STORE_ID = standin.store_id
    settings.BTCPAY_API_KEY = standin.api_key
    settings.BTCPAY_WEBHOOK_SECRET = standin.webhook_secret
    yield standin
    standin.close()
