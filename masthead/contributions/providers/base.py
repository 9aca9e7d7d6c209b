"""The small interface every payment provider implements, and the provider-neutral event.

A provider turns our pending :class:`Contribution` into a hosted checkout (one-off or
recurring), verifies and parses its webhooks, translates them into :class:`PaymentEvent`
objects that the rest of the app understands, and acts on a recurring plan (cancel, change
amount or frequency). Nothing else in the app knows a provider's vocabulary, and no code
outside ``providers/`` asks which provider it has: differences are methods and capabilities
here.

The contract (what the ledger and the reader's pages rely on):

- Providers never write to the database nor call the ledger: they *return* what they learned
  (a list of :class:`PaymentEvent`) or, for webhooks, an :class:`IncomingEvent` from
  :meth:`PaymentProvider.verify_webhook`; :mod:`masthead.contributions.ledger` applies it.
  Every webhook, the sandbox's included, reaches ``ledger.receive_webhook`` through the
  webhook view's code path and this class's verification.
- Events name our records by our ids (``contribution_id``/``plan_id``, sent to the provider
  as metadata) or by the provider's references; an event about something we never made is
  recorded as not ours.
- Calls that reach the provider raise :class:`ProviderError`; webhooks we refuse raise
  :class:`WebhookError` with the HTTP status to answer.
- Capabilities (class attributes, default off): ``hosts_checkout_page`` — the checkout is a
  page on this site (the sandbox), whose buttons become signed webhooks through
  :meth:`checkout_page_webhook`; ``simulates_events`` — :meth:`simulate` signs made-up
  renewals, refunds and disputes (``masthead sandbox-event``); ``moves_real_money``.
- ``payment_kind`` — how the donor pays, for the words of the dunning and cancellation
  notices: ``"card"`` (charged by the provider: a card or a wallet may expire), ``"link"``
  (the donor pays each period through a link we send), ``"transfer"`` (the donor sends a
  bank transfer, perhaps by standing order).
- :attr:`PaymentProvider.checkout_patience` — how long a pending checkout may wait, with
  nothing to report from the provider, before reconciliation records it as abandoned (a
  card checkout expires within a day; a bank transfer takes weeks).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from ..models import Contribution, RecurringPlan


class ProviderError(Exception):
    """The provider refused a request or could not be reached (shown to readers politely)."""


class WebhookError(Exception):
    """A webhook we refuse: bad signature, too old, malformed. ``status`` is the HTTP reply."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class EventKind:
    CHECKOUT_COMPLETED = "checkout_completed"  # donor details known, plan linked
    CHECKOUT_ABANDONED = "checkout_abandoned"  # reader cancelled, or the session expired
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_FAILED = "payment_failed"
    REFUNDED = "refunded"  # cumulative refunded amount
    DISPUTE = "dispute"  # dispute opened / won / lost
    PLAN_ACTIVATED = "plan_activated"
    PLAN_CANCELLED = "plan_cancelled"
    PLAN_TERMS_CHANGED = "plan_terms_changed"  # amount / currency / frequency


@dataclass(frozen=True)
class PaymentEvent:
    """What happened, in our words; the references say which of our records it concerns."""

    kind: str
    occurred_at: dt.datetime
    contribution_id: int | None = None
    plan_id: int | None = None
    checkout_ref: str = ""
    payment_ref: str = ""
    # Another name of the same payment, by which refunds and disputes may find it.
    charge_ref: str = ""
    subscription_ref: str = ""
    customer_ref: str = ""
    amount: int | None = None
    currency: str = ""
    frequency: str = ""
    email: str = ""
    name: str = ""
    attempt: int = 0
    refunded_amount: int = 0
    dispute_status: str = ""
    reason: str = ""
    first_payment: bool = False


@dataclass(frozen=True)
class IncomingEvent:
    """A verified webhook: its unique id at the provider, its type and its payload.

    ``delivery_id`` names this one transmission (a digest of its signature, or the
    provider's transmission id): a provider signs every delivery afresh, retries included,
    so the same ``delivery_id`` twice is a replay of a captured request and is refused.
    """

    event_id: str
    event_type: str
    payload: dict[str, Any]
    delivery_id: str = ""


@dataclass(frozen=True)
class SignedWebhook:
    """A webhook request a provider made here (the sandbox): deliver it as the webhook view
    does, with ``ledger.receive_webhook(provider_key, body, headers)``."""

    body: bytes
    headers: dict[str, str]


@dataclass
class CheckoutUrls:
    """Where the provider sends the reader back: ``success`` (thanks), ``cancel`` (left the
    checkout), ``return_url`` (to confirm, e.g. PayPal's capture) and ``hosted`` (this site's
    own checkout page for the contribution, used by providers that host it here)."""

    success: str
    cancel: str
    return_url: str = ""
    hosted: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class PaymentProvider:
    """Base class: subclasses set ``display_name`` and ``marks`` and implement the methods."""

    display_name = "Provider"
    marks: tuple[str, ...] = ()
    hosts_checkout_page = False
    #: The template of that page (context: contribution, amount, form, declined).
    checkout_page_template = ""
    simulates_events = False
    moves_real_money = True
    #: Which of ``methods.py``'s names and privacy notes describe it to readers, whatever
    #: key it is configured under ("" = its key).
    wording_key = ""
    payment_kind = "card"

    @property
    def checkout_patience(self) -> dt.timedelta:
        """How long a pending checkout may wait before it counts as abandoned: two days by
        default (checkout sessions expire within a day at every card processor we support)."""
        return dt.timedelta(days=2)

    def __init__(self, key: str, **options: Any) -> None:
        self.key = key
        self.options = options

    # --- checkout -----------------------------------------------------------------------

    def start_checkout(
        self,
        contribution: Contribution,
        plan: RecurringPlan | None,
        urls: CheckoutUrls,
    ) -> str:
        """Create the hosted checkout; returns the URL to send the reader to.

        Sets ``contribution.checkout_ref`` (the caller saves it). Raises ProviderError.
        """
        raise NotImplementedError

    def handle_return(
        self, contribution: Contribution, params: Mapping[str, str]
    ) -> list[PaymentEvent]:
        """Called when the reader comes back from the provider (e.g. to capture an order)."""
        return []

    # --- webhooks -----------------------------------------------------------------------

    def missing_webhook_settings(self) -> list[str]:
        """The settings this provider still needs to verify webhooks ([] when it can).

        While any is missing its webhook route is not served at all (404), and
        ``manage.py check`` fails: an unverifiable webhook must never be accepted.
        """
        return []

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> IncomingEvent:
        """Prove who sent a webhook from the raw body and headers, then decode it.

        Order matters: size, then the signature over the raw bytes, then its age
        (timestamp tolerance), and only then JSON. Raise WebhookError when any fails.
        """
        raise NotImplementedError

    def translate(self, event_type: str, payload: dict[str, Any]) -> list[PaymentEvent]:
        """Turn a verified provider event into provider-neutral events (may be empty)."""
        raise NotImplementedError

    # --- recurring plans and reconciliation ---------------------------------------------

    def cancel_plan(self, plan: RecurringPlan) -> list[PaymentEvent]:
        """Cancel the subscription at the provider; returns what is now known."""
        raise NotImplementedError

    def change_plan(self, plan: RecurringPlan, amount: int, frequency: str) -> list[PaymentEvent]:
        """Change the amount or frequency of future payments; returns what is now known."""
        raise NotImplementedError

    def fetch_updates(self, contribution: Contribution) -> list[PaymentEvent]:
        """Ask the provider what became of a pending contribution (reconciliation)."""
        return []

    def fetch_plan_updates(self, plan: RecurringPlan) -> list[PaymentEvent]:
        """Ask the provider about a plan whose expected renewal has no payment here
        (reconciliation of renewals): its recent payments, failures and cancellation."""
        return []

    # --- checkout pages and simulation on this site (the sandbox) -----------------------

    def checkout_page_webhook(
        self, contribution: Contribution, action: str, *, email: str = "", name: str = ""
    ) -> SignedWebhook:
        """The signed webhook for a choice on this site's checkout page ("complete", "fail"
        or "cancel"), when ``hosts_checkout_page``."""
        raise NotImplementedError

    def simulate(self, action: str, target: Any, **options: Any) -> SignedWebhook:
        """A signed made-up event ("renew", "fail-renewal", "refund", "dispute") about a
        plan or contribution, when ``simulates_events``. Raises ProviderError otherwise."""
        raise ProviderError(f"{self.display_name} cannot simulate events.")

    def fix_payment_url(self, plan: RecurringPlan, return_url: str) -> str:
        """Where a donor updates the payment method of a past-due plan ('' if not possible)."""
        return ""


def from_timestamp(seconds: int | float | str | None) -> dt.datetime:
    if seconds in (None, ""):
        return dt.datetime.now(dt.UTC)
    return dt.datetime.fromtimestamp(float(seconds), dt.UTC)


def parse_iso(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime.now(dt.UTC)
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def header(headers: Mapping[str, str], name: str) -> str:
    """A request header by case-insensitive name ('' when absent)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value if isinstance(value, str) else ""
    return ""


def delivery_digest(signed_at: str | int, body: bytes) -> str:
    """Names one signed transmission by what its signature covers (time and body), so that
    re-arranging a header's other parts does not make a replay look new."""
    return hashlib.sha256(f"{signed_at}.".encode() + body).hexdigest()


def check_size(body: bytes, limit: int) -> None:
    if len(body) > limit:
        raise WebhookError("Webhook body too large.", 413)


def check_age(sent: float, what: str = "timestamp") -> None:
    """Refuse a delivery signed too long ago (or in the future): a replay or a bad clock."""
    tolerance = settings.MASTHEAD_WEBHOOK_TOLERANCE
    try:
        age = abs(dt.datetime.now(dt.UTC).timestamp() - float(sent))
    except (OverflowError, ValueError, TypeError):
        raise WebhookError(f"Malformed webhook {what}.")
    if age > tolerance:
        raise WebhookError(f"Webhook {what} outside the tolerance: refused as a replay.")


def decode_json(body: bytes) -> dict[str, Any]:
    """JSON of a verified body: an object, or WebhookError (never a 500, however deep)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise WebhookError("Malformed event.")
    if not isinstance(payload, dict):
        raise WebhookError("Malformed event.")
    return payload


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
