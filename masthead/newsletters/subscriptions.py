"""Every write to a reader's newsletter consent: sign-up, confirmation, unsubscribe,
suppression and the clean-up of unconfirmed sign-ups. Each is one atomic function; emails go
out after the commit.

Privacy rule: :func:`subscription_request` behaves the same towards the caller whether or not
the address is known, so the sign-up form never reveals who subscribes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from email.utils import make_msgid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import DatabaseError, IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from masthead.core.crypto import email_index, normalise_email
from masthead.reach.mirrors import email_link_base, email_mirror_links

from . import tokens
from .models import (
    ConsentRecord,
    Newsletter,
    SentMessage,
    Subscriber,
    Subscription,
    message_id_key,
)

log = logging.getLogger(__name__)


def policy_version() -> str:
    """Which Privacy Policy a reader agreed to: the setting, else the page's revision."""
    if settings.MASTHEAD_PRIVACY_POLICY_VERSION:
        return settings.MASTHEAD_PRIVACY_POLICY_VERSION
    from masthead.core.models import NewsroomSettings

    page = NewsroomSettings.load().privacy_page
    if page is None:
        return "none"
    when = page.last_published_at.date().isoformat() if page.last_published_at else "draft"
    return f"{page.url_path.strip('/').split('/')[-1]} rev {page.latest_revision_id} ({when})"


@dataclass
class SignupOutcome:
    """What happened, for logs and tests only: the reader is told the same in every case."""

    subscription: Subscription
    email_sent: str  # "confirm" | "already" | "none"


def _send(to: str, subject: str, template: str, context: dict, language: str,
          headers: dict | None = None, reply_to: list[str] | None = None) -> None:
    with translation.override(language):
        context = {
            "outlet_name": settings.MASTHEAD_OUTLET_NAME,
            "mirror_links": email_mirror_links(),
            **context,
        }
        text = render_to_string(f"newsletters/email/{template}.txt", context)
        html = render_to_string(f"newsletters/email/{template}.html", context)
    subscription = context.get("subscription")
    host = urlsplit(settings.MASTHEAD_BASE_URL).hostname or "localhost"
    message_id = make_msgid(f"{template}-{getattr(subscription, 'pk', 0)}", domain=host)
    message = EmailMultiAlternatives(
        subject, text, to=[to], headers={"Message-ID": message_id, **(headers or {})},
        reply_to=reply_to,
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except Exception:  # a mail server hiccup must not turn a sign-up into an error page
        log.exception("could not send the %s email", template)
        return
    if subscription is not None:
        _remember_sent(message, message_id, subscription.pk, template)


def _remember_sent(message, message_id: str, subscription_id: int, kind: str) -> None:
    """Record a sent message by its ids, so that the provider's bounce or complaint about it
    is recognised (``signals.py``); the provider's id comes from anymail's status."""
    status = getattr(message, "anymail_status", None)
    recipients = list(status.recipients.values()) if status is not None else []
    esp_message_id = recipients[0].message_id if recipients else None
    try:
        with transaction.atomic():
            SentMessage.objects.create(
                message_id=message_id_key(message_id),
                esp_message_id=message_id_key(esp_message_id),
                subscription_id=subscription_id,
                kind=kind,
            )
    except DatabaseError:  # the subscription was erased meanwhile: nothing to remember
        log.warning("could not record the %s email as sent", kind)


def confirm_url(subscription: Subscription) -> str:
    with translation.override(subscription.newsletter.language):
        path = reverse("newsletters:confirm", args=[tokens.make_confirm_token(subscription)])
    return email_link_base(subscription.newsletter) + path


def manage_url(subscription: Subscription) -> str:
    with translation.override(subscription.newsletter.language):
        path = reverse(
            "newsletters:unsubscribe", args=[tokens.make_unsubscribe_token(subscription.pk)]
        )
    return email_link_base(subscription.newsletter) + path


def subscription_request(
    email: str, newsletter: Newsletter, *, name: str = "", source: str = "",
    auto_reply: bool = False,
) -> SignupOutcome:
    """A reader asks to receive ``newsletter``: record the request and send the right email.

    New or lapsed address: a pending subscription and a confirmation link. Already
    confirmed: a short note saying so (with an unsubscribe link), nothing changes. Never a
    duplicate row: the blind index is unique and the subscription is unique per newsletter.
    ``auto_reply``: the request came by email (``masthead.reach.inbound``), so our email
    answers a message and says so (``Auto-Submitted: auto-replied``, RFC 3834).
    """
    address = normalise_email(email)
    now = timezone.now()
    with transaction.atomic():
        index = email_index(address)
        subscriber = Subscriber.objects.select_for_update().filter(email_index=index).first()
        if subscriber is None:
            try:
                with transaction.atomic():
                    subscriber = Subscriber.objects.create(
                        email=address, email_index=index, name=name[:100]
                    )
            except IntegrityError:  # a concurrent sign-up of the same address won the race
                subscriber = Subscriber.objects.select_for_update().get(email_index=index)
        elif name and not subscriber.name:
            subscriber.name = name[:100]
            subscriber.save(update_fields=["name"])
        subscription, _created = Subscription.objects.select_for_update().get_or_create(
            subscriber=subscriber, newsletter=newsletter
        )
        if subscription.status == Subscription.Status.CONFIRMED:
            kind = "already"
        else:
            kind = "confirm"
            subscription.status = Subscription.Status.PENDING
            subscription.requested_at = now
            subscription.save(update_fields=["status", "requested_at"])
            ConsentRecord.objects.create(
                subscription=subscription,
                newsletter=newsletter,
                action=ConsentRecord.Action.REQUESTED,
                at=now,
                policy_version=policy_version(),
                source=source[:100],
            )
        if subscriber.suppressed:
            # A hard-bounced or complaining address gets no mail from us, not even this.
            kind = "none"

    context = {"newsletter": newsletter, "subscription": subscription}
    headers = {"Auto-Submitted": "auto-replied"} if auto_reply else {}
    reply_to = None
    if kind == "confirm":
        from masthead.reach.inbound import reply_code, subscribe_address

        context["confirm_url"] = confirm_url(subscription)
        context["confirm_days"] = settings.MASTHEAD_NEWSLETTER_CONFIRM_DAYS
        subject = _email_subject(newsletter, "confirm")
        if subscribe_address():
            # Email as a way in: a reply from this address, with its code, confirms too.
            context["reply_code"] = reply_code(subscription.pk, address)
            subject = f"{subject} ({context['reply_code']})"
            reply_to = [subscribe_address()]
        transaction.on_commit(
            lambda: _send(address, subject, "confirm", context, newsletter.language,
                          headers, reply_to)
        )
    elif kind == "already":
        context["unsubscribe_url"] = manage_url(subscription)
        subject = _email_subject(newsletter, "already")
        transaction.on_commit(
            lambda: _send(address, subject, "already", context, newsletter.language, headers)
        )
    return SignupOutcome(subscription=subscription, email_sent=kind)


def _email_subject(newsletter: Newsletter, kind: str) -> str:
    with translation.override(newsletter.language):
        if kind == "confirm":
            return translation.gettext("Confirm your subscription to %(name)s") % {
                "name": newsletter.name
            }
        return translation.gettext("You are already subscribed to %(name)s") % {
            "name": newsletter.name
        }


def subscription_confirm(subscription_id: int, index_prefix: str, *, source: str = "") -> (
    Subscription | None
):
    """Confirm a pending subscription from its signed link; idempotent. None if the link no
    longer matches a subscription (cleaned up, or the address changed)."""
    now = timezone.now()
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update()
            .select_related("subscriber", "newsletter")
            .filter(pk=subscription_id)
            .first()
        )
        if subscription is None or not subscription.subscriber.email_index.startswith(
            index_prefix
        ):
            return None
        if subscription.status != Subscription.Status.CONFIRMED:
            subscription.status = Subscription.Status.CONFIRMED
            subscription.confirmed_at = now
            subscription.unsubscribed_at = None
            subscription.save(update_fields=["status", "confirmed_at", "unsubscribed_at"])
            ConsentRecord.objects.create(
                subscription=subscription,
                newsletter=subscription.newsletter,
                action=ConsentRecord.Action.CONFIRMED,
                at=now,
                policy_version=policy_version(),
                source=source[:100],
            )
    return subscription


def subscription_unsubscribe(subscription_id: int, *, source: str = "") -> Subscription | None:
    """Stop sending a newsletter to a subscriber, at once; idempotent."""
    now = timezone.now()
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update()
            .select_related("newsletter")
            .filter(pk=subscription_id)
            .first()
        )
        if subscription is None:
            return None
        if subscription.status != Subscription.Status.UNSUBSCRIBED:
            subscription.status = Subscription.Status.UNSUBSCRIBED
            subscription.unsubscribed_at = now
            subscription.save(update_fields=["status", "unsubscribed_at"])
            ConsentRecord.objects.create(
                subscription=subscription,
                newsletter=subscription.newsletter,
                action=ConsentRecord.Action.UNSUBSCRIBED,
                at=now,
                source=source[:100],
            )
    return subscription


def subscriber_suppress(subscriber: Subscriber, reason: str) -> bool:
    """Stop all mail to an address (hard bounce, complaint). True if it changed anything."""
    now = timezone.now()
    with transaction.atomic():
        changed = Subscriber.objects.filter(pk=subscriber.pk, suppressed_at__isnull=True).update(
            suppressed_at=now, suppression_reason=reason[:200]
        )
        if changed:
            for subscription in Subscription.objects.filter(subscriber=subscriber).select_related(
                "newsletter"
            ):
                ConsentRecord.objects.create(
                    subscription=subscription,
                    newsletter=subscription.newsletter,
                    action=ConsentRecord.Action.SUPPRESSED,
                    at=now,
                    source=reason[:100],
                )
    return bool(changed)


def subscriber_soft_bounce(subscriber: Subscriber, reason: str) -> bool:
    """Count a soft bounce; at the threshold the address is suppressed. True if suppressed."""
    from django.db.models import F

    Subscriber.objects.filter(pk=subscriber.pk).update(soft_bounces=F("soft_bounces") + 1)
    subscriber.refresh_from_db(fields=["soft_bounces"])
    if subscriber.soft_bounces >= settings.MASTHEAD_NEWSLETTER_SOFT_BOUNCE_LIMIT:
        return subscriber_suppress(subscriber, f"{subscriber.soft_bounces} soft bounces: {reason}")
    return False


def subscriber_find(email: str) -> Subscriber | None:
    return Subscriber.objects.filter(email_index=email_index(email)).first()


def expire_unconfirmed(now=None) -> int:
    """Forget sign-ups never confirmed in time; returns how many subscriptions went.

    A subscription that was confirmed once and then re-requested falls back to
    "unsubscribed" instead (its consent history stays); an address left with no
    subscription at all is deleted, so a flood of fake sign-ups leaves nothing behind.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.MASTHEAD_NEWSLETTER_CONFIRM_DAYS)
    stale = Subscription.objects.filter(
        status=Subscription.Status.PENDING, requested_at__lt=cutoff
    )
    with transaction.atomic():
        lapsed = stale.filter(confirmed_at__isnull=False).update(
            status=Subscription.Status.UNSUBSCRIBED
        )
        never = stale.filter(confirmed_at__isnull=True)
        subscriber_ids = list(never.values_list("subscriber_id", flat=True).distinct())
        _total, per_model = never.delete()
        Subscriber.objects.filter(pk__in=subscriber_ids, subscriptions__isnull=True).delete()
    return lapsed + per_model.get(Subscription._meta.label, 0)


def subscriber_export(email: str) -> dict | None:
    """Everything stored about an address, for a reader's data request (None: unknown)."""
    subscriber = subscriber_find(email)
    if subscriber is None:
        return None

    def when(value):
        return value.isoformat() if value else None

    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "created_at": when(subscriber.created_at),
        "suppressed_at": when(subscriber.suppressed_at),
        "suppression_reason": subscriber.suppression_reason,
        "soft_bounces": subscriber.soft_bounces,
        "subscriptions": [
            {
                "newsletter": subscription.newsletter.name,
                "status": subscription.status,
                "created_at": when(subscription.created_at),
                "confirmed_at": when(subscription.confirmed_at),
                "unsubscribed_at": when(subscription.unsubscribed_at),
                "consent": [
                    {"action": record.action, "at": when(record.at),
                     "policy_version": record.policy_version, "source": record.source}
                    for record in subscription.consent_records.all()
                ],
            }
            for subscription in subscriber.subscriptions.select_related("newsletter")
        ],
    }


def subscriber_erase(email: str) -> bool:
    """Forget an address entirely: subscriber, subscriptions, consent records and its rows in
    past deliveries' ledgers (their totals then no longer count it). True if it existed."""
    subscriber = subscriber_find(email)
    if subscriber is None:
        return False
    with transaction.atomic():
        subscriber.delete()
    return True
