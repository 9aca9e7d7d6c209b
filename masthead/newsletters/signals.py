"""Bounce and complaint handling: django-anymail's normalised webhook events suppress
addresses. A complaint or a hard bounce stops all mail to the address at once; soft bounces
(deferrals, timeouts, blocks) count, and suppress at ``MASTHEAD_NEWSLETTER_SOFT_BOUNCE_LIMIT``.
An "unsubscribed" event from the provider unsubscribes from every newsletter. Each event is
stored once by (provider, event id), so a replayed webhook changes nothing.

These receivers only hear events from the authenticated webhook routes (``webhooks.py``), and
an event changes a subscriber only when it names a message we sent to that subscriber: the
provider's message id or our ``Message-ID`` recorded in ``SentMessage`` for that recipient's
address (an ESP batch may share one provider id among many recipients: Mailgun), or an
edition ``Message-ID`` the delivery ledger shows as sent to them. Anything else is stored
with the outcome "unknown message" and ignored, so knowing a reader's address is not enough
to cut them off.
"""

from __future__ import annotations

import hashlib
import logging
import re
from urllib.parse import urlsplit

from anymail.signals import EventType, RejectReason, inbound, tracking
from django.conf import settings
from django.db import IntegrityError, transaction
from django.dispatch import receiver

from .models import DeliveryRecipient, ProviderEvent, SentMessage, Subscription, message_id_key
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


EDITION_MESSAGE_ID = re.compile(r"^edition-(\d+)\.(\d+)@(.+)$")


def _named_message_ids(event) -> list[str]:
    """The ids an event names its message by: anymail's ``message_id`` (the provider's id),
    and our own ``Message-ID`` where the provider echoes the headers (Amazon SES, Mailgun)."""
    ids = [event.message_id]
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    mail = raw.get("mail") if isinstance(raw.get("mail"), dict) else {}
    common = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    ids.append(common.get("messageId"))
    data = raw.get("event-data") if isinstance(raw.get("event-data"), dict) else {}
    message = data.get("message") if isinstance(data.get("message"), dict) else {}
    headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
    ids.append(headers.get("message-id"))
    keys = [message_id_key(i) for i in ids if isinstance(i, str)]
    return list(dict.fromkeys(k for k in keys if k))


def sent_to(event, subscriber_id: int) -> bool:
    """Whether the event's message is one we sent to this subscriber (the one its recipient
    address belongs to): matched by (message id, recipient), never by the id alone — an
    ESP may give a whole batch one id (Mailgun does), so an id names many messages and
    only the address tells which one the event is about."""
    keys = _named_message_ids(event)
    if not keys:
        return False
    mine = SentMessage.objects.filter(subscription__subscriber_id=subscriber_id)
    if mine.filter(esp_message_id__in=keys).exists() or mine.filter(
            message_id__in=keys).exists():
        return True
    host = urlsplit(settings.MASTHEAD_BASE_URL).hostname or "localhost"
    for key in keys:
        match = EDITION_MESSAGE_ID.match(key)
        if match and match[3].lower() == host.lower() and DeliveryRecipient.objects.filter(
            delivery__edition_id=int(match[1]),
            subscription_id=int(match[2]),
            subscription__subscriber_id=subscriber_id,
            state=DeliveryRecipient.State.SENT,
        ).exists():
            return True
    return False


@receiver(tracking, dispatch_uid="masthead.newsletters.tracking")
def handle_tracking(sender, event, esp_name, **kwargs) -> None:
    if event.event_type not in HANDLED or not event.recipient:
        return
    subscriber = subscriber_find(event.recipient)
    if subscriber is not None and not sent_to(event, subscriber.pk):
        subscriber = None  # not a message we sent to this address: vouches for nothing
    kind = classify(event)
    # One notification may name several recipients (Amazon SES): the event id is made
    # per recipient, with a hash rather than the address, which is kept only encrypted.
    address = hashlib.sha256(event.recipient.strip().lower().encode()).hexdigest()[:16]
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    data = raw.get("event-data") if isinstance(raw.get("event-data"), dict) else {}
    if data.get("id"):
        # Mailgun: anymail's event id is the signature's token, new on every signing; the
        # event's own id (unique within a day) with its time stays the same on a resend.
        event_id = f"{data['id']}@{data.get('timestamp')}/{address}"
    elif event.event_id:
        event_id = f"{event.event_id}/{address}"
    else:
        event_id = f"{event.event_type}:{event.message_id}:{event.timestamp}/{address}"
    try:
        with transaction.atomic():
            record = ProviderEvent.objects.create(
                esp_name=esp_name[:40],
                event_id=str(event_id)[:200],
                event_type=event.event_type,
                reject_reason=event.reject_reason or "",
                subscriber=subscriber,
                outcome=kind if subscriber else "unknown message",
            )
    except IntegrityError:
        return  # seen before
    if subscriber is None:
        log.info("%s %s event about a message we did not send ignored", esp_name,
                 event.event_type)
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
