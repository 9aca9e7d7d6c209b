"""Background work for contributions: thin tasks that load by id and call one function.

Emails (receipts, manage links, dunning, cancellation notices), cancelling at the provider
after the last failed try, and the reconciliation run the scheduler enqueues.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_tasks import task

from masthead.core.scheduler import every

from . import emails
from .models import (
    Contribution,
    ContributionStatus,
    Donor,
    EventStatus,
    ProviderEvent,
    RecurringPlan,
)

log = logging.getLogger(__name__)


@task()
def send_receipt(contribution_id: int) -> bool:
    """Email the receipt for a paid contribution, once (claimed by a conditional update)."""
    claimed = Contribution.objects.filter(
        pk=contribution_id, receipt_sent_at__isnull=True, donor__isnull=False, paid_at__isnull=False
    ).update(receipt_sent_at=timezone.now())
    if not claimed:
        return False
    contribution = Contribution.objects.select_related("donor", "plan").get(pk=contribution_id)
    if contribution.donor.erased_at:
        return False
    try:
        emails.send_receipt(contribution)
    except Exception:
        Contribution.objects.filter(pk=contribution_id).update(receipt_sent_at=None)
        raise
    return True


@task()
def send_manage_link(donor_id: int, language: str = "") -> bool:
    donor = Donor.objects.filter(pk=donor_id, erased_at__isnull=True).first()
    if donor is None:
        return False
    emails.send_manage_link(donor, language)
    return True


@task()
def send_dunning(plan_id: int) -> bool:
    """Tell the donor their payment failed, if that is still the latest news (see
    ``services.claim_dunning_notice``): at most once per failed attempt."""
    from .services import claim_dunning_notice

    plan = RecurringPlan.objects.select_related("donor").get(pk=plan_id)
    if plan.donor is None or plan.donor.erased_at:
        return False
    plan = claim_dunning_notice(plan_id)
    if plan is None:
        return False
    emails.send_dunning(plan)
    return True


@task()
def send_cancellation(plan_id: int, after_failures: bool = False, claimed: bool = False) -> bool:
    """Tell the donor their plan ended, once per plan (``cancellation_notified_at``)."""
    from .services import claim_cancellation_notice

    plan = RecurringPlan.objects.select_related("donor").get(pk=plan_id)
    if plan.donor is None or plan.donor.erased_at:
        return False
    if not claimed and not claim_cancellation_notice(plan_id):
        return False
    emails.send_cancellation(plan, after_failures=after_failures)
    return True


@task()
def cancel_plan_at_provider(plan_id: int, reason: str = "dunning") -> None:
    """Cancel at the provider after the last failed try, then tell the donor (once).

    A provider that answers "already cancelled" has done what we asked (providers return
    the cancellation, not an error), so the donor is told either way.
    """
    from .services import cancel_plan

    plan = RecurringPlan.objects.select_related("donor").get(pk=plan_id)
    cancel_plan(plan, reason=reason)
    if reason == "dunning":
        send_cancellation.call(plan_id, True)


def reconcile(now: dt.datetime | None = None, progress=None) -> dict[str, int]:
    """Ask providers about payments stuck in pending, and retry events that failed.

    ``progress`` may wrap the list of stuck payments (the command passes ``tqdm``).
    """
    from .providers import ProviderError, UnknownProvider, get_provider
    from .services import process_event, record_findings, retry_waiting_events

    now = now or timezone.now()
    after = dt.timedelta(seconds=settings.MASTHEAD_RECONCILE_AFTER)
    stuck = Contribution.objects.filter(
        status=ContributionStatus.PENDING, created_at__lt=now - after, is_renewal=False
    ).filter(Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=now - after))
    report = {"checked": 0, "updated": 0, "abandoned": 0, "retried": 0}
    batch = list(stuck.order_by("created_at")[:500])
    for contribution in progress(batch) if progress else batch:
        report["checked"] += 1
        try:
            provider = get_provider(contribution.provider)
            events = provider.fetch_updates(contribution)
        except (ProviderError, UnknownProvider) as exc:
            log.warning("reconcile: %s #%s: %s", contribution.provider, contribution.pk, exc)
            events = []
        Contribution.objects.filter(pk=contribution.pk).update(last_checked_at=now)
        if events:
            marker = "-".join(sorted(e.kind for e in events))
            record_findings(contribution.provider, f"reconcile:{contribution.pk}:{marker}", events)
            report["updated"] += 1
        elif contribution.created_at < now - dt.timedelta(days=2):
            # Checkout sessions expire within a day at every provider we support.
            from .providers.base import EventKind, PaymentEvent

            record_findings(
                contribution.provider,
                f"reconcile:{contribution.pk}:expired",
                [
                    PaymentEvent(
                        kind=EventKind.CHECKOUT_ABANDONED,
                        occurred_at=now,
                        contribution_id=contribution.pk,
                    )
                ],
            )
            report["abandoned"] += 1
    for event in ProviderEvent.objects.filter(status=EventStatus.FAILED, attempts__lt=10)[:200]:
        process_event(event.pk)
        report["retried"] += 1
    for provider in set(
        ProviderEvent.objects.filter(status=EventStatus.WAITING).values_list("provider", flat=True)
    ):
        retry_waiting_events(provider)
    # Events that never found what they refer to (another integration on the same account).
    ProviderEvent.objects.filter(
        status=EventStatus.WAITING, received_at__lt=now - dt.timedelta(days=3)
    ).update(status=EventStatus.IGNORED, error="Nothing here matched it within 3 days.")
    return report


@task()
def reconcile_task() -> dict[str, int]:
    from .services import prune_checkout_submissions, prune_webhook_deliveries

    report = reconcile()
    report["webhook deliveries forgotten"] = prune_webhook_deliveries()
    report["form submissions forgotten"] = prune_checkout_submissions()
    return report


@every(600, name="contributions.reconcile")
def schedule_reconcile() -> None:
    """Every ten minutes: check stuck pending payments with their providers."""
    reconcile_task.enqueue()
