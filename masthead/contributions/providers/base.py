"""The small interface every payment provider implements, and the provider-neutral event.

A provider turns our pending :class:`Contribution` into a hosted checkout (one-off or
recurring), verifies and parses its webhooks, translates them into :class:`PaymentEvent`
objects that the rest of the app understands, and acts on a recurring plan (cancel, change
amount or frequency). Nothing else in the app knows a provider's vocabulary.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    """A verified webhook: its unique id at the provider, its type and its payload."""

    event_id: str
    event_type: str
    payload: dict[str, Any]


@dataclass
class CheckoutUrls:
    success: str
    cancel: str
    return_url: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class PaymentProvider:
    """Base class: subclasses set ``display_name`` and ``marks`` and implement the methods."""

    display_name = "Provider"
    marks: tuple[str, ...] = ()

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

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> IncomingEvent:
        """Check the signature (and age) of a webhook; raise WebhookError when it fails."""
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


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
