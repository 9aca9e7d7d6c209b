"""The email providers' webhooks (bounces, complaints, inbound mail), served only for the
providers an operator configured and only when each can prove who sent it.

django-anymail parses every provider's payload into normalised events (``signals.py``
receives them); this module decides which of its views are reachable and guards them:

1. **Only configured providers.** ``MASTHEAD_EMAIL_WEBHOOK_PROVIDERS`` (by default the ESP
   of an anymail ``EMAIL_BACKEND``, else none) names them; every other ``/anymail/…`` URL,
   and a configured provider's URL while it lacks its secret, answers 404.
2. **Size first.** A body over ``MASTHEAD_EMAIL_WEBHOOK_MAX_BYTES`` is refused with 413
   before it is read.
3. **Sender before content.** Where anymail verifies a provider's signature (Mailgun's
   webhook signing key, SendGrid's signed event webhook) that key is required; otherwise the
   shared basic-auth ``ANYMAIL_WEBHOOK_SECRET`` is, and it is checked here before anymail
   reads the body (401 with a challenge, which Amazon SNS needs before it sends
   credentials). Signed events older than ``MASTHEAD_EMAIL_WEBHOOK_TOLERANCE_SECONDS`` are
   refused as stale, and a signature seen before (a captured request played back) with 409;
   events are stored once by provider event id anyway (``signals.py``).
4. **No 500s from bad input.** A payload anymail cannot parse is a 400.

``manage.py check --deploy`` fails for a configured provider that has no secret
(``checks.py``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.utils import get_anymail_setting, get_request_basic_auth
from anymail.webhooks.amazon_ses import (
    AmazonSESInboundWebhookView,
    AmazonSESTrackingWebhookView,
)
from anymail.webhooks.brevo import BrevoInboundWebhookView, BrevoTrackingWebhookView
from anymail.webhooks.mailgun import MailgunInboundWebhookView, MailgunTrackingWebhookView
from anymail.webhooks.mailjet import MailjetInboundWebhookView, MailjetTrackingWebhookView
from anymail.webhooks.postmark import PostmarkInboundWebhookView, PostmarkTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridInboundWebhookView, SendGridTrackingWebhookView
from anymail.webhooks.sparkpost import (
    SparkPostInboundWebhookView,
    SparkPostTrackingWebhookView,
)
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt

from masthead.core.replay import first_delivery, forget_deliveries

log = logging.getLogger(__name__)


class MalformedPayload(Exception):
    """Anymail could not make sense of an authenticated request's body."""


class Replayed(Exception):
    """A signed transmission we received before, played back."""


def _mailgun_timestamp(request: HttpRequest) -> str | None:
    if request.content_type == "application/json":
        try:
            return str(json.loads(request.body)["signature"]["timestamp"])
        except (ValueError, KeyError, TypeError):
            return None
    return request.POST.get("timestamp")


def _mailgun_delivery(request: HttpRequest) -> str | None:
    """Mailgun's signature token: random, new with every signing."""
    if request.content_type == "application/json":
        try:
            return str(json.loads(request.body)["signature"]["token"])
        except (ValueError, KeyError, TypeError):
            return None
    return request.POST.get("token")


def _sendgrid_timestamp(request: HttpRequest) -> str | None:
    return request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp")


def _sendgrid_delivery(request: HttpRequest) -> str | None:
    signature = request.headers.get("X-Twilio-Email-Event-Webhook-Signature")
    return hashlib.sha256(signature.encode()).hexdigest() if signature else None


@dataclass(frozen=True)
class Provider:
    """One ESP's webhooks. ``signing_keys`` maps a route kind to the anymail setting (under
    the ESP's prefix) holding the key anymail verifies signatures with; ``signature_required``
    means anymail cannot run that provider's views without it (Mailgun)."""

    esp_name: str  # anymail's setting prefix, e.g. "MAILGUN"
    views: dict[str, type]  # route kind ("tracking", "inbound" …) → anymail view
    signing_keys: dict[str, str]
    signature_required: bool = False
    timestamp: object = None  # request → signed timestamp, checked for staleness
    needs: str = ""  # a package anymail needs for this provider's views (its extra)
    delivery: object = None  # request → id of this signed transmission, refused if seen


PROVIDERS: dict[str, Provider] = {
    "amazon_ses": Provider(
        # anymail 15 does not verify SNS message signatures: the basic-auth secret it is.
        "AMAZON_SES",
        {"tracking": AmazonSESTrackingWebhookView, "inbound": AmazonSESInboundWebhookView},
        {},
        needs="boto3",  # pip install "django-anymail[amazon-ses]"
    ),
    "brevo": Provider(
        "BREVO", {"tracking": BrevoTrackingWebhookView, "inbound": BrevoInboundWebhookView}, {}
    ),
    "mailgun": Provider(
        "MAILGUN",
        {
            "tracking": MailgunTrackingWebhookView,
            "inbound": MailgunInboundWebhookView,
            "inbound_mime": MailgunInboundWebhookView,
        },
        {
            "tracking": "WEBHOOK_SIGNING_KEY",
            "inbound": "WEBHOOK_SIGNING_KEY",
            "inbound_mime": "WEBHOOK_SIGNING_KEY",
        },
        signature_required=True,
        timestamp=_mailgun_timestamp,
        delivery=_mailgun_delivery,
    ),
    "mailjet": Provider(
        "MAILJET",
        {"tracking": MailjetTrackingWebhookView, "inbound": MailjetInboundWebhookView},
        {},
    ),
    "postmark": Provider(
        "POSTMARK",
        {"tracking": PostmarkTrackingWebhookView, "inbound": PostmarkInboundWebhookView},
        {},
    ),
    "sendgrid": Provider(
        "SENDGRID",
        {"tracking": SendGridTrackingWebhookView, "inbound": SendGridInboundWebhookView},
        {
            "tracking": "TRACKING_WEBHOOK_VERIFICATION_KEY",
            "inbound": "INBOUND_WEBHOOK_VERIFICATION_KEY",
        },
        timestamp=_sendgrid_timestamp,
        delivery=_sendgrid_delivery,
    ),
    "sparkpost": Provider(
        "SPARKPOST",
        {"tracking": SparkPostTrackingWebhookView, "inbound": SparkPostInboundWebhookView},
        {},
    ),
}


def configured_providers() -> list[str]:
    return [name.strip().lower() for name in settings.MASTHEAD_EMAIL_WEBHOOK_PROVIDERS]


def shared_secrets() -> list[str]:
    """anymail's ``WEBHOOK_SECRET``: one "user:password" or a list (for rotation)."""
    secret = get_anymail_setting("webhook_secret", default=[])
    if isinstance(secret, str):
        secret = [s.strip() for s in secret.split(",")]
    return [s for s in secret if s]


def signing_key(provider: Provider, kind: str) -> str:
    name = provider.signing_keys.get(kind)
    if not name:
        return ""
    return get_anymail_setting(name.lower(), esp_name=provider.esp_name, default="") or ""


@dataclass(frozen=True)
class Route:
    provider: Provider
    kind: str
    signed: bool  # anymail verifies the provider's signature
    secrets: tuple[str, ...]  # basic-auth credentials to require first (may be empty if signed)


def missing_package(provider: Provider) -> bool:
    return bool(provider.needs) and importlib.util.find_spec(provider.needs) is None


def find_route(name: str, kind: str) -> Route | None:
    """The route for a configured provider's webhook, or None when it must not be served
    (not configured, unknown, or without the secret that authenticates it)."""
    if name not in configured_providers():
        return None
    provider = PROVIDERS.get(name)
    if provider is None or kind not in provider.views or missing_package(provider):
        return None
    signed = bool(signing_key(provider, kind))
    secrets = tuple(shared_secrets())
    if provider.signature_required and not signed:
        return None
    if not signed and not secrets:
        return None
    return Route(provider, kind, signed, secrets)


def route_is_served(name: str, kind: str = "tracking") -> bool:
    return find_route(name, kind) is not None


def _guarded(view_class: type, provider: Provider) -> type:
    """anymail's view, with parse errors turned into 400s and a staleness check after the
    signature check."""

    class Guarded(view_class):
        def run_validators(self, request):
            try:
                super().run_validators(request)
            except AnymailWebhookValidationFailure:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure to read the proof is a 400
                raise AnymailWebhookValidationFailure(
                    f"unreadable webhook ({type(exc).__name__})"
                ) from exc
            if getattr(request, "_masthead_signed", False):
                if provider.timestamp is not None:
                    _check_fresh(provider.timestamp(request))
                if provider.delivery is not None:
                    _remember_delivery(self.esp_name, provider.delivery(request))

        def parse_events(self, request):
            try:
                return super().parse_events(request)
            except Exception as exc:  # noqa: BLE001 - anymail raises many kinds on bad input
                raise MalformedPayload(f"{type(exc).__name__}: {exc}"[:200]) from exc

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{view_class.__name__}"
    return Guarded


_GUARDED: dict[tuple[str, str], type] = {
    (name, kind): _guarded(view, provider)
    for name, provider in PROVIDERS.items()
    for kind, view in provider.views.items()
}


def _check_fresh(timestamp: str | None) -> None:
    try:
        when = float(timestamp or "")
    except ValueError:
        raise AnymailWebhookValidationFailure("webhook without a usable timestamp") from None
    if abs(time.time() - when) > settings.MASTHEAD_EMAIL_WEBHOOK_TOLERANCE_SECONDS:
        raise AnymailWebhookValidationFailure("stale webhook (timestamp outside the window)")


def _remember_delivery(esp_name: str, delivery_id: str | None) -> None:
    if not delivery_id:
        raise AnymailWebhookValidationFailure("signed webhook without a delivery id")
    if not first_delivery(f"email:{esp_name}", delivery_id):
        raise Replayed(f"{esp_name} delivery received before")


def prune_webhook_deliveries(now: datetime | None = None) -> int:
    """Forget signed deliveries older than twice the window: their age alone refuses them."""
    return forget_deliveries(
        "email:", 2 * settings.MASTHEAD_EMAIL_WEBHOOK_TOLERANCE_SECONDS, now
    )


def _basic_auth_ok(request: HttpRequest, secrets: tuple[str, ...]) -> bool:
    given = get_request_basic_auth(request) or ""
    return any(constant_time_compare(given, secret) for secret in secrets)


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
@login_not_required
def email_webhook(request: HttpRequest, provider: str, kind: str) -> HttpResponse:
    """``/anymail/<provider>/<kind>/``: guard, then hand over to anymail's view."""
    route = find_route(provider, kind)
    if route is None:
        raise Http404("No email webhook here.")
    limit = settings.MASTHEAD_EMAIL_WEBHOOK_MAX_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _text(400, "Bad Content-Length.")
    if length > limit:
        return _text(413, "Webhook body too large.")
    if route.secrets and not _basic_auth_ok(request, route.secrets):
        response = _text(401, "Authentication required.")
        response["WWW-Authenticate"] = 'Basic realm="Masthead email webhook"'
        return response
    try:
        body = request.body
    except RequestDataTooBig:
        return _text(413, "Webhook body too large.")
    if len(body) > limit:
        return _text(413, "Webhook body too large.")
    view_class = _GUARDED[(provider, kind)]
    view = view_class.as_view()
    request._masthead_signed = route.signed  # read by Guarded.run_validators
    try:
        return view(request)
    except AnymailWebhookValidationFailure as exc:
        log.warning("%s %s webhook refused: %s", provider, kind, exc)
        return _text(400, "Webhook refused: it could not be verified.")
    except Replayed as exc:
        log.warning("%s %s webhook refused: %s", provider, kind, exc)
        return _text(409, "This webhook was received before: refused as a replay.")
    except MalformedPayload as exc:
        log.warning("%s %s webhook with a malformed body: %s", provider, kind, exc)
        return _text(400, "Malformed webhook body.")

