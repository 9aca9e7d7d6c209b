"""Reconciliation: ask providers about what their webhooks did not settle, and retry events.

Run every ten minutes (``tasks.schedule_reconcile``) and by ``masthead reconcile``:

- checkouts still pending after ``MASTHEAD_RECONCILE_AFTER`` are fetched from their provider
  (``fetch_updates``); when one has waited longer than its provider's
  ``checkout_patience`` with nothing to report it is recorded as abandoned (two days for
  card checkouts, weeks for a bank-transfer pledge, an invoice's expiry for BTCPay);
- **renewals**: a live plan whose next payment is overdue by ``MASTHEAD_RENEWAL_GRACE`` (its
  last payment plus one period, with no later payment here) is fetched too
  (``fetch_plan_updates``: the provider's recent payments, failures, cancellation);
- events that failed are retried; those that wait for what they refer to are tried again,
  and given up after three days.

Whatever a provider answers goes through :func:`ledger.record_findings` (cause
``reconcile``), so it is applied, recorded in the history and announced exactly as if its
webhook had arrived.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from . import ledger
from .models import (
    ChangeCause,
    Contribution,
    ContributionStatus,
    EventStatus,
    Frequency,
    PlanStatus,
    ProviderEvent,
    RecurringPlan,
)
from .providers import ProviderError, UnknownProvider, get_provider
from .providers.base import EventKind, PaymentEvent

log = logging.getLogger(__name__)

#: For a checkout whose provider is no longer configured (nobody can pay it any more).
DEFAULT_PATIENCE = dt.timedelta(days=2)
PERIOD = {Frequency.MONTHLY: dt.timedelta(days=31), Frequency.ANNUAL: dt.timedelta(days=366)}


def _marker(events: list[PaymentEvent]) -> str:
    """Names a finding by what it says, so the same answer twice is applied once."""
    facts = sorted(f"{e.kind}:{e.payment_ref}:{e.occurred_at.isoformat()}" for e in events)
    return hashlib.sha256("|".join(facts).encode()).hexdigest()[:24]


def reconcile(now: dt.datetime | None = None, progress=None) -> dict[str, int]:
    """One run; returns counts. ``progress`` may wrap the lists (the command passes tqdm)."""
    now = now or timezone.now()
    report = {"checked": 0, "updated": 0, "abandoned": 0, "plans checked": 0, "retried": 0}
    _pending_checkouts(now, report, progress)
    _overdue_renewals(now, report, progress)
    for pk in ProviderEvent.objects.filter(
        status=EventStatus.FAILED, attempts__lt=10
    ).values_list("pk", flat=True)[:200]:
        ledger.process_event(pk)
        report["retried"] += 1
    for provider in set(
        ProviderEvent.objects.filter(status=EventStatus.WAITING).values_list("provider", flat=True)
    ):
        ledger.retry_waiting_events(provider)
    ledger.give_up_waiting_events(older_than=now - dt.timedelta(days=3))
    return report


def _pending_checkouts(now: dt.datetime, report: dict, progress) -> None:
    after = dt.timedelta(seconds=settings.MASTHEAD_RECONCILE_AFTER)
    stuck = Contribution.objects.filter(
        status=ContributionStatus.PENDING, created_at__lt=now - after, is_renewal=False
    ).filter(Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=now - after))
    batch = list(stuck.order_by("created_at")[:500])
    for contribution in progress(batch) if progress else batch:
        report["checked"] += 1
        patience = DEFAULT_PATIENCE
        try:
            provider = get_provider(contribution.provider)
            patience = provider.checkout_patience
            events = provider.fetch_updates(contribution)
        except (ProviderError, UnknownProvider) as exc:
            log.warning("reconcile: %s #%s: %s", contribution.provider, contribution.pk, exc)
            events = []
        ledger.mark_checked(contribution, now)
        if events:
            ledger.record_findings(
                contribution.provider,
                f"reconcile:{contribution.pk}:{_marker(events)}",
                events,
                cause=ChangeCause.RECONCILE,
            )
            report["updated"] += 1
        elif contribution.created_at < now - patience:
            ledger.record_findings(
                contribution.provider,
                f"reconcile:{contribution.pk}:expired",
                [
                    PaymentEvent(
                        kind=EventKind.CHECKOUT_ABANDONED,
                        occurred_at=now,
                        contribution_id=contribution.pk,
                    )
                ],
                cause=ChangeCause.RECONCILE,
            )
            report["abandoned"] += 1


def overdue_plans(now: dt.datetime):
    """Live plans whose expected renewal has no succeeded payment past the grace period,
    not asked about within the last grace period."""
    grace = dt.timedelta(seconds=settings.MASTHEAD_RENEWAL_GRACE)
    live = RecurringPlan.objects.filter(
        status__in=[PlanStatus.ACTIVE, PlanStatus.PAST_DUE], last_paid_at__isnull=False
    ).filter(Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=now - grace))
    overdue = Q()
    for frequency, period in PERIOD.items():
        overdue |= Q(frequency=frequency, last_paid_at__lt=now - period - grace)
    return live.filter(overdue).order_by("last_paid_at")


def _overdue_renewals(now: dt.datetime, report: dict, progress) -> None:
    batch = list(overdue_plans(now)[:500])
    for plan in progress(batch) if progress else batch:
        report["plans checked"] += 1
        try:
            events = get_provider(plan.provider).fetch_plan_updates(plan)
        except (ProviderError, UnknownProvider) as exc:
            log.warning("reconcile: %s plan #%s: %s", plan.provider, plan.pk, exc)
            events = []
        ledger.mark_checked(plan, now)
        if events:
            ledger.record_findings(
                plan.provider,
                f"reconcile:plan:{plan.pk}:{_marker(events)}",
                events,
                cause=ChangeCause.RECONCILE,
            )
            report["updated"] += 1
