"""Background work for contributions: thin tasks that load by id and call one function.

Emails (receipts, manage links, dunning, cancellation notices — each claimed once before it
is sent; the ledger enqueues them on commit), cancelling at the provider after the last
failed try, and the reconciliation run the scheduler enqueues.
"""

from __future__ import annotations

import datetime as dt
import logging

from django_tasks import task

from masthead.core.scheduler import every

from . import emails
from .models import Donor, RecurringPlan

log = logging.getLogger(__name__)


@task()
def send_receipt(contribution_id: int) -> bool:
    """Email the receipt for a paid contribution, once (``ledger.claim_receipt``)."""
    from .ledger import claim_receipt, release_receipt

    contribution = claim_receipt(contribution_id)
    if contribution is None:
        return False
    try:
        emails.send_receipt(contribution)
    except Exception:
        release_receipt(contribution_id)  # not sent: the next attempt may claim it again
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
    ``ledger.claim_dunning_notice``): at most once per failed attempt."""
    from .ledger import claim_dunning_notice

    plan = RecurringPlan.objects.select_related("donor").get(pk=plan_id)
    if plan.donor is None or plan.donor.erased_at:
        return False
    plan = claim_dunning_notice(plan_id)
    if plan is None:
        return False
    emails.send_dunning(plan)
    return True


@task()
def send_plan_changed(plan_id: int, amount: int, frequency: str) -> bool:
    """Confirm a live plan's new terms to the donor (queued by the ledger when they change);
    skipped when a later change has superseded these terms (that one sends its own)."""
    plan = RecurringPlan.objects.select_related("donor").get(pk=plan_id)
    if plan.donor is None or plan.donor.erased_at or not plan.is_live:
        return False
    if (plan.amount, plan.frequency) != (amount, frequency):
        return False
    emails.send_plan_changed(plan)
    return True


@task()
def send_cancellation(plan_id: int, after_failures: bool = False, claimed: bool = False) -> bool:
    """Tell the donor their plan ended, once per plan (``cancellation_notified_at``)."""
    from .ledger import claim_cancellation_notice

    plan = RecurringPlan.objects.select_related("donor").get(pk=plan_id)
    if plan.donor is None or plan.donor.erased_at:
        return False
    if not claimed and not claim_cancellation_notice(plan_id):
        return False
    emails.send_cancellation(plan, after_failures=after_failures)
    return True


@task()
def cancel_plan_at_provider(plan_id: int, reason: str = "dunning") -> None:
    """Cancel at the provider after the last failed try.

    A provider that answers "already cancelled" has done what we asked (providers return the
    cancellation, not an error). The ledger records it and tells the donor, once, that their
    plan ended after failed payments.
    """
    from .giving import cancel_plan

    cancel_plan(RecurringPlan.objects.get(pk=plan_id), reason=reason)


def reconcile(now: dt.datetime | None = None, progress=None) -> dict[str, int]:
    """One reconciliation run (see :mod:`~masthead.contributions.reconciliation`)."""
    from .reconciliation import reconcile as run

    return run(now, progress)


@task()
def reconcile_task() -> dict[str, int]:
    from .giving import prune_checkout_submissions
    from .ledger import prune_webhook_deliveries

    report = reconcile()
    report["webhook deliveries forgotten"] = prune_webhook_deliveries()
    report["form submissions forgotten"] = prune_checkout_submissions()
    return report


@every(600, name="contributions.reconcile")
def schedule_reconcile() -> None:
    """Every ten minutes: check stuck pending payments with their providers."""
    reconcile_task.enqueue()


@task()
def apply_events() -> int:
    """Apply the webhook events the requests stored (``ledger.apply_received_events``)."""
    from .ledger import apply_received_events

    return apply_received_events()


def enqueue_apply_events():
    """Queue :func:`apply_events` before other work (receipts, newsletters) where the task
    backend orders by priority (the database backend); RQ takes none and refuses a task
    that sets one, so there it is queued as it is."""
    if apply_events.get_backend().supports_priority:
        return apply_events.using(priority=50).enqueue()
    return apply_events.enqueue()


@every(60, name="contributions.apply_events")
def schedule_apply() -> None:
    """Every minute: apply stored events a lost wake-up left behind (a worker that died)."""
    from .ledger import stale_received_events

    if stale_received_events():
        enqueue_apply_events()
