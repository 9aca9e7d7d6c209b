"""Bounce and complaint handling: django-anymail's normalised webhook events suppress
addresses. A complaint or a hard bounce stops all mail to the address at once; soft bounces
(deferrals, timeouts, blocks) count, and suppress at ``MASTHEAD_NEWSLETTER_SOFT_BOUNCE_LIMIT``.
An "unsubscribed" event from the provider unsubscribes from every newsletter. Each event is
stored once by (provider, event id), so a replayed webhook changes nothing.
"""

from __future__ import annotations

import logging

from anymail.signals import EventType, RejectReason, inbound, tracking
from django.db import IntegrityError, transaction
from django.dispatch import receiver

from .models import ProviderEvent, Subscription
from .subscriptions import (
    subscriber_find,
    subscriber_soft_bounce,
    subscriber_suppress,
    subscription_unsubscribe,
)

log = logging.getLogger(__name__)

HARD_REASONS = {RejectReason.INVALID, RejectReason.BOUNCED, RejectReason.SPAM}
HANDLED = {EventType.BOUNCED, EventType.COMPLAINED, EventType.UNSUBSCRIBED, EventType.REJECTED,
           EventType.DEFERRED}


def _looks_temporary(event) -> bool:
    """Some providers report soft bounces as "bounced": tell them by the SMTP reply (4xx)
    or by the provider's own word for it."""
    response = (event.mta_response or "").strip()
    if response[:1] == "4" or " 4." in response[:12]:
        return True
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    data = raw.get("event-data", raw) if isinstance(raw.get("event-data", raw), dict) else raw
    return raw.get("Type") in ("SoftBounce", "Transient") or data.get("severity") == "temporary"


def classify(event) -> str:
    """'complaint', 'hard', 'soft' or 'unsubscribe' for an anymail tracking event."""
    if event.event_type == EventType.COMPLAINED:
        return "complaint"
    if event.event_type == EventType.UNSUBSCRIBED:
        return "unsubscribe"
    if event.event_type == EventType.DEFERRED or _looks_temporary(event):
        return "soft"
    if event.reject_reason in HARD_REASONS or event.reject_reason is None:
        return "hard"
    return "soft"


@receiver(tracking, dispatch_uid="masthead.newsletters.tracking")
def handle_tracking(sender, event, esp_name, **kwargs) -> None:
    if event.event_type not in HANDLED or not event.recipient:
        return
    subscriber = subscriber_find(event.recipient)
    kind = classify(event)
    event_id = event.event_id or f"{event.event_type}:{event.recipient}:{event.timestamp}"
    try:
        with transaction.atomic():
            record = ProviderEvent.objects.create(
                esp_name=esp_name[:40],
                event_id=str(event_id)[:200],
                event_type=event.event_type,
                reject_reason=event.reject_reason or "",
                subscriber=subscriber,
                outcome=kind if subscriber else "unknown address",
            )
    except IntegrityError:
        return  # seen before
    if subscriber is None:
        return
    detail = f"{esp_name} {event.event_type}"
    if event.reject_reason:
        detail += f" ({event.reject_reason})"
    if kind in ("complaint", "hard"):
        subscriber_suppress(subscriber, detail)
    elif kind == "soft":
        if subscriber_soft_bounce(subscriber, detail):
            record.outcome = "soft → suppressed"
            record.save(update_fields=["outcome"])
    else:
        for subscription_id in Subscription.objects.filter(subscriber=subscriber).values_list(
            "pk", flat=True
        ):
            subscription_unsubscribe(subscription_id, source=detail)


@receiver(inbound, dispatch_uid="masthead.newsletters.inbound")
def handle_inbound(sender, event, esp_name, **kwargs) -> None:
    """The mailto: of List-Unsubscribe: a mail whose subject is "unsubscribe <token>"."""
    from django.core import signing

    from .tokens import read_unsubscribe_token

    message = event.message
    subject = (message.get("Subject", "") if message is not None else "") or ""
    words = subject.split()
    if len(words) != 2 or words[0].lower() != "unsubscribe":
        return
    try:
        subscription_id = read_unsubscribe_token(words[1])
    except signing.BadSignature:
        log.info("inbound unsubscribe with a bad token ignored")
        return
    subscription_unsubscribe(subscription_id, source=f"email via {esp_name}")
