"""Local HTTP stand-ins speaking Stripe's and PayPal's APIs, for the real SDKs to talk to.

Each runs a threaded HTTP server on 127.0.0.1 with a small in-memory state, records every
request (method, path, headers, parsed body) and produces the webhook payloads the real
provider would send, signed exactly as the real provider signs them: Stripe's
``t=…,v1=HMAC-SHA256(secret, f"{t}.{payload}")`` and PayPal's RSA-SHA256 over
``transmission_id|time|webhook_id|crc32(body)`` with the key of the certificate it serves
at ``PAYPAL-CERT-URL``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class StandIn:
    """Base: a threaded server dispatching to ``handle(method, path, headers, body)``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.counter = itertools.count(1)
        self.fail_next: dict[str, int] = {}
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                result = standin.dispatch(self.command, self.path, self.headers, body)
                status, payload = result[:2]
                headers = result[2] if len(result) > 2 else {}
                if isinstance(payload, str):  # an HTML page of the hosted checkout
                    data = payload.encode()
                    headers = {"Content-Type": "text/html; charset=utf-8", **headers}
                else:
                    data = json.dumps(payload).encode()
                    headers = {"Content-Type": "application/json", **headers}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PATCH = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def dispatch(self, method, path, headers, body):
        with self.lock:
            record = {"method": method, "path": urlsplit(path).path, "headers": dict(headers)}
            record["query"] = dict(parse_qsl(urlsplit(path).query))
            record["body"] = self.parse_body(headers, body)
            self.requests.append(record)
            fail = self.fail_next.get(record["path"], 0)
            if fail:
                self.fail_next[record["path"]] = fail - 1
                return 500, {"error": {"message": "stand-in failure", "type": "api_error"}}
            return self.handle(method, record["path"], headers, record["body"])

    def parse_body(self, headers, body):
        raise NotImplementedError

    def handle(self, method, path, headers, body):
        raise NotImplementedError

    def calls(self, method: str, prefix: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and r["path"].startswith(prefix)]


# --- Stripe ---------------------------------------------------------------------------------


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class StripeStandIn(StandIn):
    """Checkout Sessions, Subscriptions and the billing portal, form-encoded like Stripe."""

    def __init__(self, secret_key: str = "sk_test_standin") -> None:  # noqa: S107
        self.secret_key = secret_key
        self.sessions: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.idempotent: dict[str, tuple[int, dict]] = {}
        super().__init__()

    def parse_body(self, headers, body):
        return dict(parse_qsl(body.decode(), keep_blank_values=True))

    def handle(self, method, path, headers, form):
        if path.startswith("/pay/"):
            return self._hosted_checkout(method, path.removeprefix("/pay/"), form)
        if headers.get("Authorization") != f"Bearer {self.secret_key}":
            return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}
        key = headers.get("Idempotency-Key")
        if method == "POST" and key and key in self.idempotent:
            return self.idempotent[key]
        result = self._route(method, path, form)
        if method == "POST" and key:
            self.idempotent[key] = result
        return result

    def _route(self, method, path, form):
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/checkout/sessions":
            return self._create_session(form)
        if method == "GET" and parts[:3] == ["v1", "checkout", "sessions"] and len(parts) == 4:
            session = self.sessions.get(parts[3])
            return (200, session) if session else _stripe_missing(parts[3])
        if method == "GET" and path == "/v1/invoices":
            wanted = self.requests[-1]["query"].get("subscription")
            found = [
                i
                for i in reversed(self.invoices.values())
                if i["parent"]["subscription_details"]["subscription"] == wanted
            ]
            return 200, {"object": "list", "data": found, "has_more": False, "url": path}
        if parts[:2] == ["v1", "subscriptions"] and len(parts) == 3:
            sub = self.subscriptions.get(parts[2])
            if sub is None:
                return _stripe_missing(parts[2])
            if method == "GET":
                return 200, sub
            if method == "DELETE":
                if sub["status"] == "canceled":
                    # What Stripe answers when the subscription has already ended.
                    return 404, {
                        "error": {
                            "type": "invalid_request_error",
                            "code": "resource_missing",
                            "message": f"No such subscription: '{parts[2]}'",
                        }
                    }
                sub["status"] = "canceled"
                sub["canceled_at"] = int(time.time())
                return 200, sub
            if method == "POST":
                price = sub["items"]["data"][0]["price"]
                price["unit_amount"] = int(form["items[0][price_data][unit_amount]"])
                price["recurring"]["interval"] = form["items[0][price_data][recurring][interval]"]
                price["product"] = form["items[0][price_data][product]"]
                return 200, sub
        if method == "POST" and path == "/v1/billing_portal/sessions":
            return 200, {
                "id": f"bps_{next(self.counter)}",
                "object": "billing_portal.session",
                "customer": form.get("customer"),
                "url": f"{self.url}/portal/{form.get('customer')}",
            }
        return 404, {"error": {"type": "invalid_request_error", "message": f"No route {path}"}}

    # --- the hosted checkout page a reader's browser sees ------------------------------

    webhook_url = ""
    webhook_secret = ""

    def _hosted_checkout(self, method, session_id, form):
        session = self.sessions.get(session_id)
        if session is None:
            return 404, "<h1>No such checkout</h1>"
        if method == "GET":
            amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
            return 200, (
                "<!DOCTYPE html><html lang=en><title>Stripe test checkout</title>"
                f"<h1>Stripe test checkout</h1><p>Pay {amount}</p>"
                f'<form method=post action="/pay/{session_id}">'
                "<label for=email>Email</label><input id=email name=email type=email>"
                "<button>Pay</button></form>"
                f'<a href="{session["cancel_url"]}">Back</a></html>'
            )
        events = self.pay(session_id, form.get("email", ""), form.get("name", ""))
        # Stripe delivers the webhooks (signed) before the reader lands on the success URL
        # often enough; the thank-you page copes with either order.
        self.lock.release()
        try:
            for event in events:
                self.post_webhook(event)
        finally:
            self.lock.acquire()
        return 303, "", {"Location": session["success_url"]}

    def post_webhook(self, event: dict) -> int:
        import urllib.request

        body = json.dumps(event).encode()
        request = urllib.request.Request(
            self.webhook_url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": stripe_signature(body, self.webhook_secret),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status

    def _create_session(self, form):
        amount = form.get("line_items[0][price_data][unit_amount]", "")
        if not amount.isdigit() or int(amount) < 50:
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "message": "The Checkout Session's total amount must be at least $0.50.",
                }
            }
        number = next(self.counter)
        mode = form.get("mode")
        prefix = "subscription_data[metadata]" if mode == "subscription" else "metadata"
        session = {
            "id": f"cs_test_{number}",
            "object": "checkout.session",
            "url": f"{self.url}/pay/cs_test_{number}",
            "mode": mode,
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": int(amount),
            "currency": form.get("line_items[0][price_data][currency]"),
            "client_reference_id": form.get("client_reference_id"),
            "success_url": form.get("success_url"),
            "cancel_url": form.get("cancel_url"),
            "metadata": _prefixed(form, "metadata"),
            "subscription_metadata": _prefixed(form, prefix),
            "interval": form.get("line_items[0][price_data][recurring][interval]"),
            "customer": None,
            "customer_details": None,
            "payment_intent": None,
            "subscription": None,
            "invoice": None,
            "created": int(time.time()),
        }
        self.sessions[session["id"]] = session
        return 200, session

    # --- what Stripe would send ---------------------------------------------------------

    def event(self, event_type: str, obj: dict, created: int | None = None) -> dict:
        return {
            "id": f"evt_{next(self.counter):06d}",
            "object": "event",
            "api_version": "2025-03-31.basil",
            "created": int(time.time()) if created is None else created,
            "type": event_type,
            "livemode": False,
            "data": {"object": json.loads(json.dumps(obj))},
        }

    def pay(self, session_id: str, email: str, name: str = "", created: int | None = None):
        """The reader pays: the session completes; returns the events Stripe would send."""
        session = self.sessions[session_id]
        number = next(self.counter)
        customer = f"cus_{number}"
        session.update(
            status="complete",
            payment_status="paid",
            customer=customer,
            customer_details={"email": email, "name": name or None},
        )
        created = int(time.time()) if created is None else created
        events = []
        if session["mode"] == "payment":
            session["payment_intent"] = f"pi_{number}"
            events.append(self.event("checkout.session.completed", session, created))
            events.append(
                self.event(
                    "payment_intent.succeeded",
                    {"id": f"pi_{number}", "object": "payment_intent", "status": "succeeded"},
                    created,
                )
            )
            return events
        sub_id = f"sub_{number}"
        invoice = f"in_{number}_1"
        session.update(subscription=sub_id, invoice=invoice)
        self.subscriptions[sub_id] = {
            "id": sub_id,
            "object": "subscription",
            "status": "active",
            "customer": customer,
            "metadata": session["subscription_metadata"],
            "items": {
                "data": [
                    {
                        "id": f"si_{number}",
                        "quantity": 1,
                        "price": {
                            "id": f"price_{number}",
                            "product": f"prod_{number}",
                            "unit_amount": session["amount_total"],
                            "currency": session["currency"],
                            "recurring": {"interval": session["interval"]},
                        },
                    }
                ]
            },
        }
        events.append(
            self.event("customer.subscription.created", self.subscriptions[sub_id], created)
        )
        events.append(
            self.invoice_event(sub_id, invoice, "subscription_create", True, 1, created, email)
        )
        events.append(self.event("checkout.session.completed", session, created))
        return events

    def invoice_event(
        self, sub_id, invoice_id, reason, paid, attempt, created, email="", payment_intent=""
    ):
        sub = self.subscriptions[sub_id]
        price = sub["items"]["data"][0]["price"]
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "customer": sub["customer"],
            "customer_email": email or None,
            "billing_reason": reason,
            "currency": price["currency"],
            "amount_due": price["unit_amount"],
            "amount_paid": price["unit_amount"] if paid else 0,
            "attempt_count": attempt,
            "status": "paid" if paid else "open",
            "status_transitions": {"paid_at": created if paid else None},
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"subscription": sub_id, "metadata": sub["metadata"]},
            },
        }
        if payment_intent:  # as when ``payments`` is expanded (API versions since basil)
            invoice["payments"] = {
                "object": "list",
                "data": [
                    {
                        "id": f"inpay_{invoice_id}",
                        "object": "invoice_payment",
                        "invoice": invoice_id,
                        "status": "paid" if paid else "open",
                        "payment": {"type": "payment_intent", "payment_intent": payment_intent},
                    }
                ],
            }
        self.invoices[invoice_id] = {**invoice, "created": created}
        return self.event("invoice.paid" if paid else "invoice.payment_failed", invoice, created)

    def renewal(
        self,
        sub_id: str,
        period: int,
        paid: bool = True,
        attempt: int = 1,
        created=None,
        payment_intent: str = "",
    ):
        created = int(time.time()) if created is None else created
        invoice = f"in_{sub_id.removeprefix('sub_')}_{period}"
        return self.invoice_event(
            sub_id, invoice, "subscription_cycle", paid, attempt, created, "", payment_intent
        )

    def invoice_payment_paid(self, invoice_id: str, payment_intent: str, amount: int, created):
        """``invoice_payment.paid``: since basil, the one link from an invoice to its charge."""
        return self.event(
            "invoice_payment.paid",
            {
                "id": f"inpay_{invoice_id}",
                "object": "invoice_payment",
                "invoice": invoice_id,
                "amount_paid": amount,
                "amount_requested": amount,
                "status": "paid",
                "status_transitions": {"paid_at": created},
                "payment": {"type": "payment_intent", "payment_intent": payment_intent},
            },
            created,
        )

    def charge_refunded(self, payment_intent: str, amount: int, refunded: int, created):
        """``charge.refunded`` as current API versions send it: no ``invoice`` on the charge."""
        return self.event(
            "charge.refunded",
            {
                "id": f"ch_{payment_intent.removeprefix('pi_')}",
                "object": "charge",
                "payment_intent": payment_intent,
                "amount": amount,
                "amount_refunded": refunded,
                "refunded": refunded >= amount,
            },
            created,
        )

    def dispute(self, payment_intent: str, status: str, created, action: str = "created"):
        return self.event(
            f"charge.dispute.{action}",
            {
                "id": f"dp_{payment_intent.removeprefix('pi_')}",
                "object": "dispute",
                "charge": f"ch_{payment_intent.removeprefix('pi_')}",
                "payment_intent": payment_intent,
                "status": status,
            },
            created,
        )


def _prefixed(form: dict, prefix: str) -> dict:
    start = f"{prefix}["
    return {
        k[len(start) : -1]: v
        for k, v in form.items()
        if k.startswith(start) and k.count("[") == prefix.count("[") + 1
    }


def _stripe_missing(ident: str):
    return 404, {
        "error": {"type": "invalid_request_error", "message": f"No such object: '{ident}'"}
    }


# --- PayPal ---------------------------------------------------------------------------------


class PayPalStandIn(StandIn):
    """OAuth, Orders v2, Catalog products, Billing plans and Subscriptions v1, webhooks."""

    def __init__(self, client_id: str = "pp-client", secret: str = "pp-secret") -> None:  # noqa: S107
        self.client_id, self.secret = client_id, secret
        self.orders: dict[str, dict] = {}
        self.plans: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.sales: dict[str, list[dict]] = {}
        self.products: dict[str, dict] = {}
        self.request_ids: dict[str, tuple[int, dict]] = {}
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.certificate_pem = _self_signed(self.key, "messageverificationcerts.paypal.com")
        self.webhook_ids: set[str] = set()
        super().__init__()

    def parse_body(self, headers, body):
        if not body:
            return {}
        if "json" in (headers.get("Content-Type") or ""):
            return json.loads(body)
        return dict(parse_qsl(body.decode()))

    def handle(self, method, path, headers, body):
        if path.startswith(("/checkoutnow/", "/subscribe/")):
            return self._hosted(method, path, body)
        if method == "GET" and path.startswith("/v1/notifications/certs/"):
            return 200, self.certificate_pem, {"Content-Type": "application/x-x509-ca-cert"}
        if path == "/v1/oauth2/token":
            expected = base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
            if headers.get("Authorization") != f"Basic {expected}":
                return 401, {"error": "invalid_client"}
            return 200, {"access_token": "A21-standin", "token_type": "Bearer", "expires_in": 32400}
        if headers.get("Authorization") != "Bearer A21-standin":
            return 401, {"name": "AUTHENTICATION_FAILURE", "message": "no token"}
        request_id = headers.get("PayPal-Request-Id")
        if method == "POST" and request_id and request_id in self.request_ids:
            return self.request_ids[request_id]
        result = self._route(method, path, body)
        if method == "POST" and request_id:
            self.request_ids[request_id] = result
        return result

    def _route(self, method, path, body):
        parts = path.strip("/").split("/")
        n = next(self.counter)
        if method == "POST" and path == "/v2/checkout/orders":
            unit = body["purchase_units"][0]
            order = {
                "id": f"ORDER{n}",
                "status": "PAYER_ACTION_REQUIRED",
                "intent": body["intent"],
                "purchase_units": [unit],
                "links": [
                    {
                        "href": f"{self.url}/v2/checkout/orders/ORDER{n}",
                        "rel": "self",
                        "method": "GET",
                    },
                    {
                        "href": f"{self.url}/checkoutnow/ORDER{n}",
                        "rel": "payer-action",
                        "method": "GET",
                    },
                ],
                "return_url": body.get("payment_source", {})
                .get("paypal", {})
                .get("experience_context", {})
                .get("return_url"),
            }
            self.orders[order["id"]] = order
            return 200, order
        if parts[:3] == ["v2", "checkout", "orders"] and len(parts) >= 4:
            order = self.orders.get(parts[3])
            if order is None:
                return 404, {"name": "RESOURCE_NOT_FOUND", "message": "order"}
            if method == "GET":
                return 200, order
            if method == "POST" and parts[-1] == "capture":
                if order["status"] != "APPROVED":
                    return 422, {
                        "name": "UNPROCESSABLE_ENTITY",
                        "details": [{"issue": "ORDER_NOT_APPROVED"}],
                    }
                unit = order["purchase_units"][0]
                order["status"] = "COMPLETED"
                unit["payments"] = {
                    "captures": [
                        {
                            "id": f"CAPTURE{n}",
                            "status": "COMPLETED",
                            "amount": unit["amount"],
                            "custom_id": unit.get("custom_id"),
                            "create_time": _iso(time.time()),
                        }
                    ]
                }
                return 201, order
        if method == "POST" and path == "/v1/catalogs/products":
            product = {"id": f"PROD-{n}", **body}
            self.products[product["id"]] = product
            return 201, product
        if method == "POST" and path == "/v1/billing/plans":
            plan = {"id": f"P-{n}", "status": "ACTIVE", **body}
            self.plans[plan["id"]] = plan
            return 201, plan
        if method == "POST" and path == "/v1/billing/subscriptions":
            if body.get("plan_id") not in self.plans:
                return 422, {"name": "UNPROCESSABLE_ENTITY", "message": "plan"}
            sub = {
                "id": f"I-{n}",
                "status": "APPROVAL_PENDING",
                "plan_id": body["plan_id"],
                "custom_id": body.get("custom_id"),
                "links": [
                    {"href": f"{self.url}/subscribe/I-{n}", "rel": "approve", "method": "GET"}
                ],
                "return_url": (body.get("application_context") or {}).get("return_url"),
            }
            self.subscriptions[sub["id"]] = sub
            return 201, sub
        if parts[:3] == ["v1", "billing", "subscriptions"] and len(parts) >= 4:
            sub = self.subscriptions.get(parts[3])
            if sub is None:
                return 404, {"name": "RESOURCE_NOT_FOUND"}
            if method == "GET" and parts[-1] == "transactions":
                return 200, {"transactions": self.sales.get(parts[3], []), "links": []}
            if method == "GET":
                return 200, sub
            if parts[-1] == "cancel":
                if sub["status"] in ("CANCELLED", "EXPIRED"):
                    # What PayPal answers when the subscription has already ended.
                    return 422, {
                        "name": "UNPROCESSABLE_ENTITY",
                        "message": "The requested action could not be performed, "
                        "semantically incorrect, or failed business validation.",
                        "details": [
                            {
                                "issue": "SUBSCRIPTION_STATUS_INVALID",
                                "description": "Invalid subscription status for cancel "
                                "action; subscription status should be active or suspended.",
                            }
                        ],
                    }
                sub["status"] = "CANCELLED"
                return 204, {}
            if parts[-1] == "revise":
                sub["plan_id"] = body["plan_id"]
                return 200, {"plan_id": body["plan_id"], "links": []}
        return 404, {"name": "RESOURCE_NOT_FOUND", "message": path}

    # --- the approval pages a reader's browser sees -----------------------------------

    webhook_url = ""
    webhook_id = ""

    def _hosted(self, method, path, form):
        kind, _, ref = path.strip("/").partition("/")
        resource = (self.orders if kind == "checkoutnow" else self.subscriptions).get(ref)
        if resource is None:
            return 404, "<h1>Unknown</h1>"
        if method == "GET":
            button = "Pay now" if kind == "checkoutnow" else "Agree and subscribe"
            return 200, (
                "<!DOCTYPE html><html lang=en><title>PayPal test checkout</title>"
                "<h1>PayPal test checkout</h1>"
                f'<form method=post action="/{kind}/{ref}">'
                "<label for=email>PayPal email</label><input id=email name=email type=email>"
                f"<button>{button}</button></form></html>"
            )
        email = form.get("email", "")
        if kind == "checkoutnow":
            self.approve_order(ref, email)
            return 303, "", {"Location": f"{resource['return_url']}?token={ref}&PayerID=P1"}
        events = self.approve_subscription(ref, email)
        self.lock.release()  # our server calls back to verify the signatures
        try:
            for event in events:
                self.post_webhook(event)
        finally:
            self.lock.acquire()
        location = f"{resource['return_url']}?subscription_id={ref}&ba_token=BA-1&token=T1"
        return 303, "", {"Location": location}

    def post_webhook(self, event: dict) -> int:
        import urllib.request

        body, headers = self.signed(event, self.webhook_id)
        request = urllib.request.Request(
            self.webhook_url, data=body, headers={"Content-Type": "application/json", **headers}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status

    # --- webhooks signed like PayPal ----------------------------------------------------

    def _message(self, transmission_id, when, webhook_id, body: bytes) -> bytes:
        return f"{transmission_id}|{when}|{webhook_id}|{zlib.crc32(body)}".encode()

    def signed(self, event: dict, webhook_id: str, when: str | None = None) -> tuple[bytes, dict]:
        body = json.dumps(event, separators=(",", ":")).encode()
        transmission_id = f"tx-{next(self.counter)}"
        when = when or _iso(time.time())
        signature = self.key.sign(
            self._message(transmission_id, when, webhook_id, body),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        headers = {
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": when,
            "PAYPAL-TRANSMISSION-SIG": base64.b64encode(signature).decode(),
            "PAYPAL-CERT-URL": f"{self.url}/v1/notifications/certs/CERT-standin",
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        }
        return body, headers

    def event(self, event_type: str, resource: dict, when: float | None = None) -> dict:
        return {
            "id": f"WH-{next(self.counter)}",
            "event_version": "1.0",
            "create_time": _iso(time.time() if when is None else when),
            "resource_type": event_type.split(".")[1].lower(),
            "event_type": event_type,
            "resource": json.loads(json.dumps(resource)),
        }

    def approve_order(self, order_id: str, email: str, name: str = "Pat Payer") -> None:
        given, _, surname = name.partition(" ")
        self.orders[order_id].update(
            status="APPROVED",
            payer={"email_address": email, "name": {"given_name": given, "surname": surname}},
        )

    def capture_event(self, order_id: str) -> dict:
        capture = self.orders[order_id]["purchase_units"][0]["payments"]["captures"][0]
        resource = {**capture, "supplementary_data": {"related_ids": {"order_id": order_id}}}
        return self.event("PAYMENT.CAPTURE.COMPLETED", resource)

    def approve_subscription(self, sub_id: str, email: str, name: str = "Pat Payer") -> list[dict]:
        sub = self.subscriptions[sub_id]
        given, _, surname = name.partition(" ")
        sub.update(
            status="ACTIVE",
            subscriber={"email_address": email, "name": {"given_name": given, "surname": surname}},
            start_time=_iso(time.time()),
        )
        plan = self.plans[sub["plan_id"]]
        price = plan["billing_cycles"][0]["pricing_scheme"]["fixed_price"]
        return [
            self.event("BILLING.SUBSCRIPTION.ACTIVATED", sub),
            self.sale(sub_id, price, 1),
        ]

    def sale(self, sub_id: str, price: dict, period: int, when: float | None = None) -> dict:
        sub = self.subscriptions[sub_id]
        self.sales.setdefault(sub_id, []).append(
            {
                "id": f"SALE-{sub_id}-{period}",
                "status": "COMPLETED",
                "amount_with_breakdown": {"gross_amount": dict(price)},
                "time": _iso(time.time() if when is None else when),
            }
        )
        return self.event(
            "PAYMENT.SALE.COMPLETED",
            {
                "id": f"SALE-{sub_id}-{period}",
                "state": "completed",
                "amount": {"total": price["value"], "currency": price["currency_code"]},
                "billing_agreement_id": sub_id,
                "custom": sub.get("custom_id"),
                "create_time": _iso(time.time() if when is None else when),
            },
            when,
        )

    def sale_refunded(self, sale_id: str, value: str, total: str, currency: str, when: float):
        """``PAYMENT.SALE.REFUNDED``: ``amount`` is this refund, ``total_refunded_amount``
        everything refunded on the sale so far."""
        return self.event(
            "PAYMENT.SALE.REFUNDED",
            {
                "id": f"REFUND-{next(self.counter)}",
                "state": "completed",
                "sale_id": sale_id,
                "amount": {"total": value, "currency": currency},
                "total_refunded_amount": {"value": total, "currency": currency},
                "create_time": _iso(when),
            },
            when,
        )

    def payment_failed(self, sub_id: str, price: dict, count: int, when: float) -> dict:
        sub = self.subscriptions[sub_id]
        sub["billing_info"] = {
            "failed_payments_count": count,
            "last_failed_payment": {"amount": price, "time": _iso(when)},
        }
        return self.event(
            "BILLING.SUBSCRIPTION.PAYMENT.FAILED",
            {
                "id": sub_id,
                "custom_id": sub.get("custom_id"),
                "status": "ACTIVE",
                "billing_info": {
                    "failed_payments_count": count,
                    "last_failed_payment": {"amount": price, "time": _iso(when)},
                },
            },
            when,
        )


def _self_signed(key, common_name: str) -> str:
    """A PEM certificate for ``key``, valid for a day, as PayPal's signing certificate is
    served (its URL is the stand-in's own, which the provider accepts as its API host)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def post_webhook(provider_key: str, body: bytes, headers: dict[str, str]):
    """POST one webhook delivery through the real endpoint (the view, its verification and
    the ledger), as the provider's servers do; returns the stored ProviderEvent."""
    from django.test import Client
    from django.urls import reverse

    from masthead.contributions.models import ProviderEvent

    response = Client().generic(
        "POST",
        reverse("contributions:webhook", args=[provider_key]),
        body,
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code in (200, 202), response.content
    return ProviderEvent.objects.get(provider=provider_key, event_id=response.json()["id"])


def deliver(signed, provider_key: str = "sandbox"):
    """Deliver a webhook request the sandbox signed (a ``SignedWebhook``) to the endpoint."""
    return post_webhook(provider_key, signed.body, signed.headers)


def history_summary() -> list[tuple]:
    """What every record's status history must say in any order of delivery: each change
    starts where the previous ended, ends at the record's status, is caused by a stored event
    and is never a repeat; and how many times each record ended cancelled or refunded (a
    replayed cancellation or refund is never written twice)."""
    from masthead.contributions.models import Contribution, RecurringPlan

    rows = []
    for model in (Contribution, RecurringPlan):
        for record in model.objects.prefetch_related("history"):
            steps = list(record.history.all())
            pairs = zip(steps, steps[1:], strict=False)
            chained = all(b.from_status == a.to_status for a, b in pairs)
            final = steps[-1].to_status if steps else record.status
            rows.append(
                (
                    model.__name__,
                    record.payment_ref if model is Contribution else record.provider_ref,
                    chained,
                    final == record.status,
                    all(step.event_id for step in steps),
                    all(step.from_status != step.to_status for step in steps),
                    sum(step.to_status in ("cancelled", "refunded") for step in steps),
                )
            )
    return sorted(rows, key=repr)
