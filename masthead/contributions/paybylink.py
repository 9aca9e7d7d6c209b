"""Pay-by-link plans: monthly and annual support through providers that cannot charge a
donor by themselves (BTCPay Server, bank transfer — providers with ``pay_by_link``).

Each period a scheduled job (:func:`run`, every hour) opens the period: a pending renewal
:class:`Contribution` dated at the period's start, and an email with the way to pay it — a
link to :func:`pay_url` (which opens a fresh BTCPay invoice on each visit, so the link never
goes stale) or, for a bank transfer, the standing reference and the account details.

A period not paid within ``MASTHEAD_PAY_BY_LINK_DAYS`` counts as a failed attempt, recorded
through the ledger (cause "dunning"), and again after each further such delay: the ledger
then does for these plans exactly what it does for cards — past due, the "your payment did
not go through" email (whose link is the provider's ``fix_payment_url``, the same pay
link), and after ``MASTHEAD_DUNNING_MAX_TRIES`` the cancellation and its notice. The manage
link changes (the next period's amount) or cancels a plan as for any other.
"""

from __future__ import annotations

import datetime as dt
import logging

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_tasks import task

from masthead.core.scheduler import every

from .models import ChangeCause, Contribution, PlanStatus, RecurringPlan
from .providers import UnknownProvider, get_provider
from .providers.base import EventKind, PaymentEvent

log = logging.getLogger(__name__)
PAY_SALT = "masthead.contributions.paybylink"
PERIODS = {"monthly": relativedelta(months=1), "annual": relativedelta(years=1)}


def pay_by_link_keys() -> list[str]:
    keys = []
    for key in settings.MASTHEAD_PAYMENT_PROVIDERS:
        try:
            if getattr(get_provider(key), "pay_by_link", False):
                keys.append(key)
        except (UnknownProvider, ImportError):
            continue
    return keys


# --- links -----------------------------------------------------------------------------------


def pay_token(contribution: Contribution) -> str:
    return signing.dumps(contribution.pk, salt=PAY_SALT, compress=True)


def contribution_from_pay_token(token: str) -> Contribution | None:
    # A period's link lives as long as the period can still be paid (every dunning try).
    days = settings.MASTHEAD_PAY_BY_LINK_DAYS * (settings.MASTHEAD_DUNNING_MAX_TRIES + 1)
    try:
        pk = signing.loads(token, salt=PAY_SALT, max_age=days * 24 * 3600 + 86400)
    except signing.BadSignature:
        return None
    return Contribution.objects.filter(pk=pk).select_related("plan", "donor").first()


def pay_url(contribution: Contribution) -> str:
    from .tokens import absolute

    return absolute(reverse("contributions:pay_period", args=[pay_token(contribution)]))


def open_period_of(plan: RecurringPlan) -> Contribution | None:
    """The plan's oldest unpaid period (what a pay link or a transfer pays)."""
    return plan.payments.filter(paid_at__isnull=True).order_by("created_at", "pk").first()


def fresh_link(plan: RecurringPlan, fallback: str) -> str:
    """Where a donor pays a past-due plan's open period (``fallback`` when none is open)."""
    period = open_period_of(plan)
    return pay_url(period) if period is not None else fallback


# --- the job ---------------------------------------------------------------------------------


def due_plans(now: dt.datetime) -> list[tuple[RecurringPlan, dt.datetime]]:
    """Live pay-by-link plans whose next period has begun, with the period's start."""
    due = []
    plans = RecurringPlan.objects.filter(
        provider__in=pay_by_link_keys(), status__in=[PlanStatus.ACTIVE, PlanStatus.PAST_DUE]
    )
    for plan in plans.iterator():
        latest = plan.payments.order_by("-created_at").values_list("created_at", flat=True).first()
        if latest is None or plan.frequency not in PERIODS:
            continue
        start = latest + PERIODS[plan.frequency]
        if start <= now:
            due.append((plan, start))
    return due


def open_period(plan: RecurringPlan, start: dt.datetime) -> Contribution | None:
    """Create the period's pending renewal (once: the plan's row is locked) and queue the
    email with the way to pay it. None when the period was opened before."""
    with transaction.atomic():
        plan = RecurringPlan.objects.select_for_update().get(pk=plan.pk)
        if not plan.is_live or plan.payments.filter(created_at__gte=start).exists():
            return None
        first = plan.payments.filter(is_renewal=False).order_by("pk").first()
        period = Contribution.objects.create(
            plan=plan,
            donor=plan.donor,
            frequency=plan.frequency,
            amount=plan.amount,
            currency=plan.currency,
            provider=plan.provider,
            # A bank transfer's standing reference names every period; BTCPay invoices are
            # made when the donor follows the link.
            checkout_ref=plan.provider_ref or "",
            is_renewal=True,
            language=first.language if first else "",
            created_at=start,
        )
        pk = period.pk
        transaction.on_commit(lambda: _send_period_email(pk))
    return period


def _send_period_email(pk: int) -> None:
    send_period_link.enqueue(pk)


def period_context(period: Contribution) -> dict:
    """What the period email and the pay page show: the amount, and the way to pay."""
    from .bankaccount import BankAccountSettings
    from .money import format_money

    provider = get_provider(period.provider)
    transfer = provider.key == "banktransfer" or not hasattr(provider, "create_invoice")
    return {
        "period": period,
        "plan": period.plan,
        "amount": format_money(period.amount, period.currency),
        "reference": period.checkout_ref if transfer else "",
        "account": BankAccountSettings.load().rows() if transfer else [],
        "pay_url": "" if transfer else pay_url(period),
        "days": settings.MASTHEAD_PAY_BY_LINK_DAYS,
    }


@task()
def send_period_link(contribution_id: int) -> bool:
    """Email the donor this period's way to pay (once: ``last_checked_at`` is claimed)."""
    from .emails import _language, _manage_url, _send, plan_language

    claimed = Contribution.objects.filter(
        pk=contribution_id, paid_at__isnull=True, last_checked_at__isnull=True
    ).update(last_checked_at=timezone.now())
    if not claimed:
        return False
    period = Contribution.objects.select_related("plan", "donor").get(pk=contribution_id)
    donor = period.donor or period.plan.donor
    if donor is None or donor.erased_at:
        return False
    with translation.override(_language(plan_language(period.plan))):
        context = period_context(period)
        context["manage_url"] = _manage_url(donor)
        _send(donor.email, _("Your support for this period"), "period", context)
    return True


@task()
def send_pledge_details(contribution_id: int) -> bool:
    """Email a bank-transfer pledge's reference and the account details (once)."""
    from .emails import _language, _manage_url, _send

    claimed = Contribution.objects.filter(
        pk=contribution_id, paid_at__isnull=True, last_checked_at__isnull=True
    ).update(last_checked_at=timezone.now())
    if not claimed:
        return False
    pledge = Contribution.objects.select_related("plan", "donor").get(pk=contribution_id)
    if pledge.donor is None or pledge.donor.erased_at:
        return False
    with translation.override(_language(pledge.language)):
        context = period_context(pledge)
        context["manage_url"] = _manage_url(pledge.donor)
        _send(pledge.donor.email, _("How to make your bank transfer"), "transfer_pledge", context)
    return True


@task()
def pay_by_link_task() -> dict[str, int]:
    return run()


@every(3600, name="contributions.pay_by_link")
def schedule_pay_by_link() -> None:
    """Every hour: open the periods of pay-by-link plans that have begun."""
    pay_by_link_task.enqueue()


def overdue_periods(now: dt.datetime):
    """Unpaid periods of live pay-by-link plans whose next payment window has passed."""
    days = dt.timedelta(days=settings.MASTHEAD_PAY_BY_LINK_DAYS)
    periods = Contribution.objects.filter(
        provider__in=pay_by_link_keys(),
        is_renewal=True,
        paid_at__isnull=True,
        attempts__lt=settings.MASTHEAD_DUNNING_MAX_TRIES,
        plan__status__in=[PlanStatus.ACTIVE, PlanStatus.PAST_DUE],
    ).select_related("plan")
    return [p for p in periods if p.created_at + days * (p.attempts + 1) <= now]


def fail_period(period: Contribution, now: dt.datetime) -> None:
    """The period's payment window passed: one failed attempt, through the ledger."""
    from . import ledger

    attempt = period.attempts + 1
    ledger.record_findings(
        period.provider,
        f"paybylink:{period.pk}:{attempt}",
        [
            PaymentEvent(
                kind=EventKind.PAYMENT_FAILED,
                occurred_at=now,
                contribution_id=period.pk,
                plan_id=period.plan_id,
                attempt=attempt,
                reason="not paid in time",
            )
        ],
        cause=ChangeCause.DUNNING,
    )


def run(now: dt.datetime | None = None, progress=None) -> dict[str, int]:
    """Open the periods that have begun and count the overdue ones as failed attempts."""
    now = now or timezone.now()
    report = {"periods opened": 0, "attempts failed": 0}
    due = due_plans(now)
    for plan, start in progress(due) if progress else due:
        # A plan whose donor did not pay for months gets one period at a time: the others
        # would only be more of the same reminder.
        if open_period(plan, start) is not None:
            report["periods opened"] += 1
    for period in overdue_periods(now):
        fail_period(period, now)
        report["attempts failed"] += 1
    return report
