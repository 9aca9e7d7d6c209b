"""Every write that matters to contributions, each one function, atomic, side effects on commit.

- :func:`start_contribution` records a pending contribution (and plan) and opens the
  provider's checkout;
- :func:`receive_webhook` verifies, stores once and processes a provider event;
- :func:`apply_event` applies one provider-neutral :class:`PaymentEvent` by merging facts
  (see models.py) so that replays and out-of-order delivery converge;
- :func:`cancel_plan` / :func:`change_plan` act for a donor (at the provider first);
- :func:`erase_donor` / :func:`export_donor` serve data-protection requests.

Receipts, dunning emails and the ``contribution_succeeded`` signal are fired with
``transaction.on_commit``, exactly once per fact (guarded by ``announced_at``,
``receipt_sent_at`` and ``dunning_notified_at``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language

from masthead.core.crypto import email_index
from masthead.core.replay import first_delivery, forget_deliveries

from .models import (
    DISPUTE_RANK,
    RECURRING,
    CheckoutSubmission,
    Contribution,
    ContributionStatus,
    Donor,
    EventStatus,
    PlanStatus,
    ProviderEvent,
    RecurringPlan,
)
from .providers import UnknownProvider, get_provider
from .providers.base import CheckoutUrls, EventKind, PaymentEvent, ProviderError, WebhookError
from .signals import contribution_succeeded

log = logging.getLogger(__name__)
# A repeated submission of the give form is the same checkout for this long (seconds): a
# page's one-time key names one reader, so it may be long; without JavaScript the key is the
# reader's address, which readers behind one NAT share, so only a double click's time. A
# repeat waits at most SUBMISSION_WAIT_SECONDS for the first request's checkout URL.
SUBMISSION_REUSE_SECONDS = 120
SUBMISSION_REUSE_SECONDS_WITHOUT_KEY = 10
SUBMISSION_WAIT_SECONDS = 20

CHECKOUT_SALT = "masthead.contributions.checkout"
MANAGE_SALT = "masthead.contributions.manage"


# --- tokens ---------------------------------------------------------------------------------


def checkout_token(contribution: Contribution) -> str:
    return signing.dumps(contribution.pk, salt=CHECKOUT_SALT, compress=True)


def contribution_from_token(token: str, max_age: int = 7 * 24 * 3600) -> Contribution | None:
    try:
        pk = signing.loads(token, salt=CHECKOUT_SALT, max_age=max_age)
    except signing.BadSignature:
        return None
    return Contribution.objects.filter(pk=pk).select_related("plan").first()


def manage_token(donor: Donor) -> str:
    # The blind index binds the link to the current address: erasure revokes every link.
    return signing.dumps({"d": donor.pk, "i": donor.email_index[:16]}, salt=MANAGE_SALT)


def donor_from_manage_token(token: str) -> Donor | None:
    try:
        data = signing.loads(token, salt=MANAGE_SALT, max_age=settings.MASTHEAD_MANAGE_LINK_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    donor = Donor.objects.filter(pk=data.get("d"), erased_at__isnull=True).first()
    if donor is None or donor.email_index[:16] != data.get("i"):
        return None
    return donor


def absolute(path: str, base_url: str | None = None) -> str:
    return (base_url or settings.MASTHEAD_BASE_URL).rstrip("/") + path


def manage_url(donor: Donor) -> str:
    return absolute(reverse("contributions:manage", args=[manage_token(donor)]))


# --- starting a contribution ----------------------------------------------------------------


def start_contribution_once(
    submission: str, *, reuse_seconds: int = SUBMISSION_REUSE_SECONDS, **details: Any
) -> str:
    """:func:`start_contribution` once per submission of the give form; returns the URL.

    Two identical posts at once (a double click, a retried request) name the same
    ``submission``: the first claims it (a unique row) and opens the checkout; the others
    wait for its URL and send their reader to that same checkout. If the provider refuses
    the first, the claim is dropped and the others fail too, so the reader can try again.
    """
    key = hashlib.sha256(submission.encode()).hexdigest()
    horizon = timezone.now() - dt.timedelta(seconds=reuse_seconds)
    CheckoutSubmission.objects.filter(key=key, created_at__lt=horizon).delete()
    try:
        with transaction.atomic():
            claim = CheckoutSubmission.objects.create(key=key)
    except IntegrityError:
        return _await_checkout(key)
    try:
        contribution, url = start_contribution(**details)
    except BaseException:
        CheckoutSubmission.objects.filter(pk=claim.pk).delete()
        raise
    CheckoutSubmission.objects.filter(pk=claim.pk).update(
        contribution=contribution, checkout_url=url
    )
    return url


def _await_checkout(key: str) -> str:
    deadline = time.monotonic() + SUBMISSION_WAIT_SECONDS
    while time.monotonic() < deadline:
        url = CheckoutSubmission.objects.filter(key=key).values_list("checkout_url", flat=True)
        found = list(url)
        if not found:
            raise ProviderError("The same submission's checkout could not be started.")
        if found[0]:
            return found[0]
        time.sleep(0.05)
    raise ProviderError("The same submission's checkout is still being started.")


def prune_checkout_submissions(now: dt.datetime | None = None) -> int:
    horizon = (now or timezone.now()) - dt.timedelta(seconds=SUBMISSION_REUSE_SECONDS)
    deleted, _ = CheckoutSubmission.objects.filter(created_at__lt=horizon).delete()
    return deleted


def start_contribution(
    *,
    frequency: str,
    amount: int,
    currency: str,
    provider_key: str,
    name: str = "",
    is_public: bool = False,
    message: str = "",
    source: str = "",
    base_url: str | None = None,
) -> tuple[Contribution, str]:
    """Record a pending contribution (and plan) and open the provider's checkout.

    Returns the contribution and the URL to send the reader to; raises ProviderError.
    Nothing is charged here: money moves only when the provider confirms.
    """
    provider = get_provider(provider_key)
    with transaction.atomic():
        plan = None
        if frequency in RECURRING:
            plan = RecurringPlan.objects.create(
                provider=provider.key,
                frequency=frequency,
                amount=amount,
                currency=currency,
                source=source,
            )
        contribution = Contribution.objects.create(
            plan=plan,
            frequency=frequency,
            amount=amount,
            currency=currency,
            provider=provider.key,
            source=source,
            language=get_language() or "",
            public_name=name if is_public else "",
            is_public=is_public and bool(name),
            message=message,
        )
    token = checkout_token(contribution)
    urls = CheckoutUrls(
        success=absolute(reverse("contributions:thanks", args=[token]), base_url),
        cancel=absolute(reverse("contributions:cancelled", args=[token]), base_url),
        return_url=absolute(reverse("contributions:return", args=[token]), base_url),
    )
    try:
        redirect_url = provider.start_checkout(contribution, plan, urls)
    except ProviderError as exc:
        now = timezone.now()
        Contribution.objects.filter(pk=contribution.pk).update(
            failed_at=now,
            failure_reason=str(exc)[:200],
            status=ContributionStatus.FAILED,
        )
        if plan is not None:
            RecurringPlan.objects.filter(pk=plan.pk).update(
                abandoned_at=now, status=PlanStatus.ABANDONED
            )
        raise
    Contribution.objects.filter(pk=contribution.pk).update(checkout_ref=contribution.checkout_ref)
    if plan is not None and plan.provider_ref:
        RecurringPlan.objects.filter(pk=plan.pk).update(provider_ref=plan.provider_ref)
    return contribution, redirect_url


# --- webhooks -------------------------------------------------------------------------------


def receive_webhook(provider_key: str, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
    """Verify, store once, process. Raises WebhookError (with an HTTP status) when refused.

    A provider that cannot verify its webhooks (its secret is not configured) takes none:
    UnknownProvider, as for a provider that is not enabled. Verification works on the raw
    body; an exact replay of a delivery already received is refused (409).
    """
    provider = get_provider(provider_key)
    if provider.missing_webhook_settings():
        raise UnknownProvider(provider_key)
    incoming = provider.verify_webhook(body, headers)
    if incoming.delivery_id and not first_delivery(
        f"payment:{provider.key}", incoming.delivery_id
    ):
        raise WebhookError("This delivery was received before: refused as a replay.", 409)
    event = store_event(provider.key, incoming.event_id, incoming.event_type, incoming.payload)
    if event.status in (EventStatus.PROCESSED, EventStatus.IGNORED):
        return event
    return process_event(event.pk)


def prune_webhook_deliveries(now: dt.datetime | None = None) -> int:
    """Forget deliveries older than twice the tolerance: their own age now refuses them."""
    return forget_deliveries("payment:", 2 * settings.MASTHEAD_WEBHOOK_TOLERANCE, now)


def store_event(provider: str, event_id: str, event_type: str, payload: dict) -> ProviderEvent:
    existing = ProviderEvent.objects.filter(provider=provider, event_id=event_id).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return ProviderEvent.objects.create(
                provider=provider, event_id=event_id, event_type=event_type, payload=payload
            )
    except IntegrityError:  # the same event delivered twice at the same moment
        return ProviderEvent.objects.get(provider=provider, event_id=event_id)


def process_event(event_pk: int, *, retry_waiting: bool = True) -> ProviderEvent:
    """Apply a stored event once; a failure is recorded on the event and retried later.

    An event about a payment we cannot match yet (a refund delivered before the payment it
    refunds) waits, and is tried again each time another event of that provider is applied.
    """
    try:
        with transaction.atomic():
            event = ProviderEvent.objects.select_for_update().get(pk=event_pk)
            if event.status in (EventStatus.PROCESSED, EventStatus.IGNORED):
                return event
            provider = get_provider(event.provider)
            translated = provider.translate(event.event_type, event.payload)
            applied = sum(apply_event(event.provider, e) for e in translated)
            event.error = ""
            if applied:
                event.status = EventStatus.PROCESSED
            elif translated and not all(_not_ours(event.provider, e) for e in translated):
                event.status = EventStatus.WAITING
            else:
                event.status = EventStatus.IGNORED
                if translated:
                    event.error = NOT_OURS
            event.processed_at = timezone.now()
            event.attempts += 1
            event.save(update_fields=["status", "processed_at", "attempts", "error"])
    except Exception as exc:
        log.exception("processing provider event %s failed", event_pk)
        ProviderEvent.objects.filter(pk=event_pk).update(
            status=EventStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            attempts=F("attempts") + 1,
        )
        return ProviderEvent.objects.get(pk=event_pk)
    if retry_waiting and event.status == EventStatus.PROCESSED:
        # Only recent ones here (cheap); the reconciliation job retries older ones.
        retry_waiting_events(event.provider, since=timezone.now() - dt.timedelta(hours=1))
        event.refresh_from_db()
    return event


NOT_OURS = "Not ours: no contribution or plan here carries its references."


def _not_ours(provider: str, event: PaymentEvent) -> bool:
    """Whether an event names a checkout or plan that Masthead never made.

    Everything we start carries our ids (contribution or plan id in the metadata or custom
    id) and we know its checkout and subscription references from the start, so an event
    whose own references match none of ours is another integration's: it is recorded as
    ignored at once rather than waiting. Refunds and disputes name only a payment, which may
    simply not have reached us yet: those wait (see :func:`retry_waiting_events`).
    """
    if event.kind in (EventKind.REFUNDED, EventKind.DISPUTE):
        return False
    if not (event.contribution_id or event.plan_id or event.checkout_ref or event.subscription_ref):
        return False
    contributions = Contribution.objects.filter(provider=provider)
    plans = RecurringPlan.objects.filter(provider=provider)
    return not (
        (event.contribution_id and contributions.filter(pk=event.contribution_id).exists())
        or (event.plan_id and plans.filter(pk=event.plan_id).exists())
        or (event.checkout_ref and contributions.filter(checkout_ref=event.checkout_ref).exists())
        or (event.subscription_ref and plans.filter(provider_ref=event.subscription_ref).exists())
    )


def retry_waiting_events(
    provider: str, *, since: dt.datetime | None = None, limit: int = 200
) -> int:
    """Try again the events that arrived before what they refer to; returns how many applied."""
    applied = 0
    progress = True
    while progress:  # one applied event may unblock another
        progress = False
        waiting = ProviderEvent.objects.filter(provider=provider, status=EventStatus.WAITING)
        if since is not None:
            waiting = waiting.filter(received_at__gte=since)
        for pk in waiting.order_by("received_at").values_list("pk", flat=True)[:limit]:
            if process_event(pk, retry_waiting=False).status == EventStatus.PROCESSED:
                applied += 1
                progress = True
    return applied


def record_findings(provider: str, event_id: str, events: list[PaymentEvent]) -> ProviderEvent:
    """Apply what we learned by asking the provider (return, reconcile, donor actions).

    Stored like a webhook (with a serialised copy of the neutral events) for the audit trail.
    """
    payload = {"neutral": [_event_to_json(e) for e in events]}
    kind = ",".join(sorted({e.kind for e in events})) or "nothing"
    event = store_event(provider, event_id, f"local:{kind}"[:100], payload)
    if event.status in (EventStatus.PROCESSED, EventStatus.IGNORED):
        return event
    with transaction.atomic():
        applied = sum(apply_event(provider, e) for e in events)
        ProviderEvent.objects.filter(pk=event.pk).update(
            status=EventStatus.PROCESSED if applied else EventStatus.IGNORED,
            processed_at=timezone.now(),
            attempts=event.attempts + 1,
        )
    event.refresh_from_db()
    return event


def _event_to_json(event: PaymentEvent) -> dict[str, Any]:
    data = {k: v for k, v in event.__dict__.items() if v not in (None, "", 0, False)}
    data["occurred_at"] = event.occurred_at.isoformat()
    data.pop("email", None)  # personal data is not copied into the audit trail
    data.pop("name", None)
    return data


# --- applying provider-neutral events -------------------------------------------------------


def apply_event(provider: str, event: PaymentEvent) -> int:
    """Merge one event's facts into our records; returns 1 if it concerned us, else 0."""
    handler = _HANDLERS.get(event.kind)
    if handler is None:
        return 0
    with transaction.atomic():
        return 1 if handler(provider, event) else 0


def _locked(qs):
    return qs.select_for_update().first()


def _find_plan(provider: str, event: PaymentEvent) -> RecurringPlan | None:
    qs = RecurringPlan.objects.filter(provider=provider)
    if event.plan_id:
        plan = _locked(qs.filter(pk=event.plan_id))
        if plan is not None:
            return plan
    if event.subscription_ref:
        return _locked(qs.filter(provider_ref=event.subscription_ref))
    return None


def _find_contribution(
    provider: str, event: PaymentEvent, plan: RecurringPlan | None
) -> Contribution | None:
    qs = Contribution.objects.filter(provider=provider)
    if event.contribution_id:
        found = _locked(qs.filter(pk=event.contribution_id))
        if found is not None:
            return found
    if event.payment_ref:
        found = _locked(qs.filter(payment_ref=event.payment_ref))
        if found is not None:
            return found
        # A refund or dispute names the charge; a renewal is keyed by its invoice and
        # records the charge it was paid by (see PaymentEvent.charge_ref).
        found = _locked(qs.filter(charge_ref=event.payment_ref))
        if found is not None:
            return found
    if event.checkout_ref:
        found = _locked(qs.filter(checkout_ref=event.checkout_ref))
        if found is not None:
            return found
    if plan is not None and event.first_payment:
        first = _locked(plan.payments.filter(is_renewal=False).order_by("pk"))
        if first is not None and first.payment_ref and event.payment_ref:
            # The first payment is already matched to another payment: this one is a renewal.
            return first if first.payment_ref == event.payment_ref else None
        return first
    return None


def _renewal(provider: str, event: PaymentEvent, plan: RecurringPlan) -> Contribution | None:
    """The renewal payment this event is about, created the first time we hear of it."""
    if not event.payment_ref:
        return None
    amount = event.amount or plan.amount
    try:
        with transaction.atomic():
            renewal, _created = Contribution.objects.get_or_create(
                provider=provider,
                payment_ref=event.payment_ref,
                defaults={
                    "plan": plan,
                    "donor": plan.donor,
                    "frequency": plan.frequency,
                    "amount": amount,
                    "currency": (event.currency or plan.currency).upper(),
                    "is_renewal": True,
                    "created_at": event.occurred_at,
                },
            )
    except IntegrityError:
        renewal = Contribution.objects.get(provider=provider, payment_ref=event.payment_ref)
    return _locked(Contribution.objects.filter(pk=renewal.pk))


def _donor(email: str, name: str) -> Donor | None:
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        # Whatever a provider sends, it never reaches an email header unless it is an address.
        return None
    index = email_index(email)
    donor = Donor.objects.filter(email_index=index).first()
    if donor is None:
        try:
            with transaction.atomic():
                donor = Donor(name=(name or "").strip()[:200])
                donor.set_email(email)
                donor.save()
        except IntegrityError:
            donor = Donor.objects.get(email_index=index)
    elif name and not donor.name:
        donor.name = name.strip()[:200]
        donor.save(update_fields=["name"])
    return donor


def _earliest(current: dt.datetime | None, new: dt.datetime) -> dt.datetime:
    return new if current is None or new < current else current


def _latest(current: dt.datetime | None, new: dt.datetime) -> dt.datetime:
    return new if current is None or new > current else current


def _link_donor(donor: Donor | None, contribution: Contribution | None, plan: RecurringPlan | None):
    if donor is None:
        return
    if plan is not None:
        if plan.donor_id is None:
            plan.donor = donor
        plan.payments.filter(donor__isnull=True).update(donor=donor)
        for paid in plan.payments.filter(paid_at__isnull=False, receipt_sent_at__isnull=True):
            _queue_receipt(paid)
    if contribution is not None and contribution.donor_id is None:
        contribution.donor = donor


def _on_checkout_completed(provider: str, event: PaymentEvent) -> bool:
    plan = _find_plan(provider, event)
    contribution = _find_contribution(provider, event, plan)
    if plan is None and contribution is not None and contribution.plan_id:
        plan = _locked(RecurringPlan.objects.filter(pk=contribution.plan_id))
    if contribution is None and plan is None:
        return False
    donor = _donor(event.email, event.name)
    if plan is not None:
        if event.subscription_ref and not plan.provider_ref:
            plan.provider_ref = event.subscription_ref
        if event.customer_ref and not plan.provider_customer:
            plan.provider_customer = event.customer_ref
    _link_donor(donor, contribution, plan)
    if contribution is not None:
        if event.checkout_ref and not contribution.checkout_ref:
            contribution.checkout_ref = event.checkout_ref
        _save_contribution(contribution)
    if plan is not None:
        _save_plan(plan)
    return True


def contribution_record_payment(provider: str, event: PaymentEvent) -> bool:
    """A payment succeeded: a one-off gift, a plan's first payment or a renewal."""
    plan = _find_plan(provider, event)
    contribution = _find_contribution(provider, event, plan)
    if contribution is None and plan is not None:
        contribution = _renewal(provider, event, plan)
    if contribution is None:
        log.warning("payment %s at %s matches no contribution", event.payment_ref, provider)
        return False
    if plan is None and contribution.plan_id:
        plan = _locked(RecurringPlan.objects.filter(pk=contribution.plan_id))
    if event.payment_ref and not contribution.payment_ref:
        clash = Contribution.objects.filter(provider=provider, payment_ref=event.payment_ref)
        if not clash.exclude(pk=contribution.pk).exists():
            contribution.payment_ref = event.payment_ref
    if event.charge_ref and not contribution.charge_ref:
        contribution.charge_ref = event.charge_ref[:100]
    contribution.paid_at = _earliest(contribution.paid_at, event.occurred_at)
    donor = _donor(event.email, event.name)
    if donor is None and plan is not None and plan.donor_id:
        donor = plan.donor
    _link_donor(donor, contribution, plan)
    _save_contribution(contribution)
    if plan is not None:
        if event.subscription_ref and not plan.provider_ref:
            plan.provider_ref = event.subscription_ref
        plan.last_paid_at = _latest(plan.last_paid_at, event.occurred_at)
        plan.activated_at = _earliest(plan.activated_at, event.occurred_at)
        _save_plan(plan)
    return True


def _on_payment_failed(provider: str, event: PaymentEvent) -> bool:
    plan = _find_plan(provider, event)
    contribution = _find_contribution(provider, event, plan)
    if contribution is None and plan is not None:
        contribution = _renewal(provider, event, plan)
    if contribution is None:
        return False
    if plan is None and contribution.plan_id:
        plan = _locked(RecurringPlan.objects.filter(pk=contribution.plan_id))
    contribution.failed_at = _latest(contribution.failed_at, event.occurred_at)
    contribution.attempts = max(contribution.attempts, event.attempt or 1)
    if event.reason:
        contribution.failure_reason = event.reason[:200]
    _save_contribution(contribution)
    if plan is not None and contribution.is_renewal:
        plan.last_failed_at = _latest(plan.last_failed_at, event.occurred_at)
        _save_plan(plan)
    return True


def _on_checkout_abandoned(provider: str, event: PaymentEvent) -> bool:
    plan = _find_plan(provider, event)
    contribution = _find_contribution(provider, event, plan)
    if contribution is None or contribution.is_renewal:
        return False
    contribution.abandoned_at = _earliest(contribution.abandoned_at, event.occurred_at)
    _save_contribution(contribution)
    if contribution.plan_id:
        plan = _locked(RecurringPlan.objects.filter(pk=contribution.plan_id))
        plan.abandoned_at = _earliest(plan.abandoned_at, event.occurred_at)
        _save_plan(plan)
    return True


def _on_refunded(provider: str, event: PaymentEvent) -> bool:
    contribution = _find_contribution(provider, event, None)
    if contribution is None:
        return False
    contribution.refunded_amount = max(contribution.refunded_amount, event.refunded_amount)
    _save_contribution(contribution)
    return True


def _on_dispute(provider: str, event: PaymentEvent) -> bool:
    contribution = _find_contribution(provider, event, None)
    if contribution is None or event.dispute_status not in DISPUTE_RANK:
        return False
    if DISPUTE_RANK[event.dispute_status] > DISPUTE_RANK[contribution.dispute_status]:
        contribution.dispute_status = event.dispute_status
    _save_contribution(contribution)
    return True


def _on_plan_activated(provider: str, event: PaymentEvent) -> bool:
    plan = _find_plan(provider, event)
    if plan is None:
        return False
    if event.subscription_ref and not plan.provider_ref:
        plan.provider_ref = event.subscription_ref
    if event.customer_ref and not plan.provider_customer:
        plan.provider_customer = event.customer_ref
    plan.activated_at = _earliest(plan.activated_at, event.occurred_at)
    _link_donor(_donor(event.email, event.name), None, plan)
    _save_plan(plan)
    return True


def _on_plan_cancelled(provider: str, event: PaymentEvent) -> bool:
    plan = _find_plan(provider, event)
    if plan is None:
        return False
    plan.cancelled_at = _earliest(plan.cancelled_at, event.occurred_at)
    _save_plan(plan)
    return True


def _on_plan_terms_changed(provider: str, event: PaymentEvent) -> bool:
    plan = _find_plan(provider, event)
    if plan is None:
        return False
    if plan.terms_changed_at is None or event.occurred_at > plan.terms_changed_at:
        if event.amount:
            plan.amount = event.amount
        if event.currency:
            plan.currency = event.currency.upper()
        if event.frequency in RECURRING:
            plan.frequency = event.frequency
        plan.terms_changed_at = event.occurred_at
    _save_plan(plan)
    return True


_HANDLERS = {
    EventKind.CHECKOUT_COMPLETED: _on_checkout_completed,
    EventKind.CHECKOUT_ABANDONED: _on_checkout_abandoned,
    EventKind.PAYMENT_SUCCEEDED: contribution_record_payment,
    EventKind.PAYMENT_FAILED: _on_payment_failed,
    EventKind.REFUNDED: _on_refunded,
    EventKind.DISPUTE: _on_dispute,
    EventKind.PLAN_ACTIVATED: _on_plan_activated,
    EventKind.PLAN_CANCELLED: _on_plan_cancelled,
    EventKind.PLAN_TERMS_CHANGED: _on_plan_terms_changed,
}


# --- saving with derived status and side effects --------------------------------------------


def _save_contribution(contribution: Contribution) -> None:
    contribution.status = contribution.derive_status()
    announce = contribution.paid_at is not None and contribution.announced_at is None
    if announce:
        contribution.announced_at = timezone.now()
    contribution.save()
    if announce:
        source = "" if contribution.is_renewal else contribution.source
        pk = contribution.pk

        def send_signal() -> None:
            fresh = Contribution.objects.get(pk=pk)
            contribution_succeeded.send(sender=Contribution, contribution=fresh, source=source)

        transaction.on_commit(send_signal)
        _queue_receipt(contribution)


def _queue_receipt(contribution: Contribution) -> None:
    if contribution.donor_id is None or contribution.receipt_sent_at is not None:
        return
    from .tasks import send_receipt

    pk = contribution.pk
    transaction.on_commit(lambda: send_receipt.enqueue(pk))


def _save_plan(plan: RecurringPlan) -> None:
    plan.status = plan.derive_status()
    if plan.status == PlanStatus.PAST_DUE:
        latest = (
            plan.payments.filter(paid_at__isnull=True, failed_at__isnull=False, is_renewal=True)
            .order_by("-failed_at")
            .first()
        )
        plan.failed_attempts = latest.attempts if latest else 1
    else:
        plan.failed_attempts = 0
    dunning = (
        plan.status == PlanStatus.PAST_DUE
        and plan.last_failed_at is not None
        and (
            plan.dunning_notified_at is None
            or plan.last_failed_at > plan.dunning_notified_at
            or plan.failed_attempts > plan.dunning_notified_attempts
        )
    )
    give_up = (
        plan.status == PlanStatus.PAST_DUE
        and plan.failed_attempts >= settings.MASTHEAD_DUNNING_MAX_TRIES
    )
    if give_up:
        # The configured number of tries failed: stop asking, here and at the provider.
        plan.cancelled_at = timezone.now()
        plan.status = plan.derive_status()
        dunning = False
    # The donor is told a plan ended after failed payments whoever ended it (our last try,
    # or the provider's own), once: the task claims ``cancellation_notified_at``.
    ended_unpaid = (
        plan.status == PlanStatus.CANCELLED
        and not give_up
        and plan.cancellation_notified_at is None
        and plan.last_failed_at is not None
        and (plan.last_paid_at is None or plan.last_failed_at > plan.last_paid_at)
    )
    plan.save()
    from . import tasks

    pk = plan.pk
    if dunning:
        # The task sends it only if this failure is still the latest news when it runs.
        transaction.on_commit(lambda: tasks.send_dunning.enqueue(pk))
    if give_up:
        transaction.on_commit(lambda: tasks.cancel_plan_at_provider.enqueue(pk, "dunning"))
    if ended_unpaid:
        transaction.on_commit(lambda: tasks.send_cancellation.enqueue(pk, True))


# --- donor actions --------------------------------------------------------------------------


def cancel_plan(plan: RecurringPlan, *, reason: str = "donor") -> RecurringPlan:
    """Cancel a recurring plan at the provider, then here. Raises ProviderError."""
    if plan.status == PlanStatus.CANCELLED and reason == "donor":
        return plan
    provider = get_provider(plan.provider)
    events = provider.cancel_plan(plan) if plan.provider_ref or plan.provider == "sandbox" else []
    if not any(e.kind == EventKind.PLAN_CANCELLED for e in events):
        events.append(
            PaymentEvent(kind=EventKind.PLAN_CANCELLED, occurred_at=timezone.now(), plan_id=plan.pk)
        )
    # The donor who cancels is told so, not that their payments failed: their notice is
    # claimed first (one cancellation notice per plan).
    claimed = reason == "donor" and claim_cancellation_notice(plan.pk)
    record_findings(plan.provider, f"local:cancel:{plan.pk}", events)
    plan.refresh_from_db()
    if claimed:
        from .tasks import send_cancellation

        transaction.on_commit(lambda: send_cancellation.enqueue(plan.pk, False, True))
    return plan


def claim_cancellation_notice(plan_pk: int) -> bool:
    """Claim the one notice that a plan ended; False if it was claimed before."""
    return bool(
        RecurringPlan.objects.filter(pk=plan_pk, cancellation_notified_at__isnull=True).update(
            cancellation_notified_at=timezone.now()
        )
    )


def claim_dunning_notice(plan_pk: int) -> RecurringPlan | None:
    """Claim the "your payment failed" notice for a plan's latest failed attempt.

    The notice is for the latest news only: the plan must still be past due (no later
    payment, no cancellation) and this attempt (its time and number) not notified yet.
    Returns the plan when the caller should send it.
    """
    with transaction.atomic():
        plan = _locked(RecurringPlan.objects.filter(pk=plan_pk))
        if plan is None or plan.status != PlanStatus.PAST_DUE or plan.last_failed_at is None:
            return None
        if plan.dunning_notified_at is not None and (
            plan.last_failed_at <= plan.dunning_notified_at
            and plan.failed_attempts <= plan.dunning_notified_attempts
        ):
            return None
        plan.dunning_notified_at = plan.last_failed_at
        plan.dunning_notified_attempts = plan.failed_attempts
        plan.save(update_fields=["dunning_notified_at", "dunning_notified_attempts"])
    return plan


def change_plan(plan: RecurringPlan, *, amount: int, frequency: str) -> RecurringPlan:
    """Change the amount or frequency of future payments, at the provider first."""
    if not plan.is_live:
        raise ProviderError("Only an active plan can be changed.")
    if amount == plan.amount and frequency == plan.frequency:
        return plan
    provider = get_provider(plan.provider)
    events = provider.change_plan(plan, amount, frequency)
    stamp = timezone.now()
    events.append(
        PaymentEvent(
            kind=EventKind.PLAN_TERMS_CHANGED,
            occurred_at=stamp,
            plan_id=plan.pk,
            amount=amount,
            currency=plan.currency,
            frequency=frequency,
        )
    )
    record_findings(plan.provider, f"local:change:{plan.pk}:{stamp.timestamp()}", events)
    plan.refresh_from_db()
    return plan


# --- data protection ------------------------------------------------------------------------


def export_donor(donor: Donor) -> dict[str, Any]:
    """Everything we hold about a donor, as JSON-ready data."""

    def contribution(c: Contribution) -> dict[str, Any]:
        return {
            "id": c.pk,
            "frequency": c.frequency,
            "amount_minor": c.amount,
            "currency": c.currency,
            "status": c.status,
            "provider": c.provider,
            "created_at": c.created_at.isoformat(),
            "paid_at": c.paid_at.isoformat() if c.paid_at else None,
            "refunded_minor": c.refunded_amount,
            "public_name": c.public_name,
            "is_public": c.is_public,
            "message": c.message,
        }

    return {
        "donor": {
            "id": donor.pk,
            "email": donor.email,
            "name": donor.name,
            "created_at": donor.created_at.isoformat(),
            "erased_at": donor.erased_at.isoformat() if donor.erased_at else None,
        },
        "recurring_plans": [
            {
                "id": p.pk,
                "frequency": p.frequency,
                "amount_minor": p.amount,
                "currency": p.currency,
                "status": p.status,
                "provider": p.provider,
                "created_at": p.created_at.isoformat(),
                "cancelled_at": p.cancelled_at.isoformat() if p.cancelled_at else None,
            }
            for p in donor.plans.order_by("pk")
        ],
        "contributions": [contribution(c) for c in donor.contributions.order_by("pk")],
    }


@transaction.atomic
def erase_donor(donor: Donor) -> Donor:
    """Anonymise a donor: personal data goes, the financial record stays.

    Live plans are cancelled at the provider first (a person asking to be forgotten should not
    keep being charged); then email, name, public names and messages are wiped and every manage
    link stops working.
    """
    for plan in donor.plans.filter(status__in=[PlanStatus.ACTIVE, PlanStatus.PAST_DUE]):
        cancel_plan(plan, reason="erasure")
    donor.email = ""
    donor.name = ""
    donor.email_index = f"erased:{donor.pk}"
    donor.erased_at = timezone.now()
    donor.save()
    donor.contributions.update(public_name="", message="", is_public=False)
    return donor


# --- reporting ------------------------------------------------------------------------------


def totals_by_currency(queryset) -> list[dict[str, Any]]:
    """Net received (paid, minus refunds) and counts per currency for a contribution list."""
    from .money import format_money

    rows = (
        queryset.filter(paid_at__isnull=False)
        .values("currency")
        .annotate(gross=Sum("amount"), refunded=Sum("refunded_amount"))
        .order_by("currency")
    )
    result = []
    for row in rows:
        count = queryset.filter(paid_at__isnull=False, currency=row["currency"]).count()
        net = (row["gross"] or 0) - (row["refunded"] or 0)
        result.append(
            {
                "currency": row["currency"],
                "count": count,
                "gross": row["gross"] or 0,
                "net": net,
                "net_label": format_money(net, row["currency"]),
                "gross_label": format_money(row["gross"] or 0, row["currency"]),
            }
        )
    return result
