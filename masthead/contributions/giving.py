"""What readers and donors do: start a contribution, leave or come back from a checkout,
change, cancel or start again a recurring plan.

Each is one function. They talk to the provider (outside any database transaction) and hand
what it answered to :mod:`~masthead.contributions.ledger`, which alone changes statuses and
sends notices. Nothing here knows which provider it talks to.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from . import ledger
from .models import (
    RECURRING,
    ChangeCause,
    CheckoutSubmission,
    Contribution,
    PlanStatus,
    RecurringPlan,
)
from .money import AmountError, validate_amount, validate_currency
from .providers import get_provider
from .providers.base import CheckoutUrls, EventKind, PaymentEvent, ProviderError
from .tokens import absolute, checkout_token

# A repeated submission of the give form is the same checkout for this long (seconds): a
# page's one-time key names one reader, so it may be long; without JavaScript the key is the
# reader's address, which readers behind one NAT share, so only a double click's time. A
# repeat waits at most SUBMISSION_WAIT_SECONDS for the first request's checkout URL.
SUBMISSION_REUSE_SECONDS = 120
SUBMISSION_REUSE_SECONDS_WITHOUT_KEY = 10
SUBMISSION_WAIT_SECONDS = 20


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
        hosted=absolute(reverse("contributions:hosted_checkout", args=[token]), base_url),
    )
    try:
        redirect_url = provider.start_checkout(contribution, plan, urls)
    except ProviderError as exc:
        ledger.checkout_refused(contribution, str(exc))
        raise
    Contribution.objects.filter(pk=contribution.pk).update(checkout_ref=contribution.checkout_ref)
    if plan is not None and plan.provider_ref:
        RecurringPlan.objects.filter(pk=plan.pk).update(provider_ref=plan.provider_ref)
    return contribution, redirect_url




def abandon_checkout(contribution: Contribution) -> None:
    """The reader came back through the checkout's cancel link: nothing was charged."""
    if contribution.paid_at or contribution.is_renewal:
        return
    ledger.record_findings(
        contribution.provider,
        f"local:abandon:{contribution.pk}",
        [
            PaymentEvent(
                kind=EventKind.CHECKOUT_ABANDONED,
                occurred_at=timezone.now(),
                contribution_id=contribution.pk,
            )
        ],
        cause=ChangeCause.READER,
    )


def confirm_return(contribution: Contribution, params: Mapping[str, str]) -> None:
    """The reader is back from the provider: ask it what happened (PayPal captures here).

    Raises ProviderError; the caller shows the thank-you page either way (webhooks and
    reconciliation settle the rest).
    """
    events = get_provider(contribution.provider).handle_return(contribution, params)
    if events:
        marker = "-".join(sorted({e.kind for e in events}))
        ledger.record_findings(
            contribution.provider,
            f"return:{contribution.pk}:{marker}",
            events,
            cause=ChangeCause.RETURN,
        )


# --- recurring plans ------------------------------------------------------------------------


CANCEL_CAUSES = {
    "donor": ChangeCause.DONOR,
    "staff": ChangeCause.STAFF,
    "erasure": ChangeCause.ERASURE,
    "dunning": ChangeCause.DUNNING,
}


def cancel_plan(plan: RecurringPlan, *, reason: str = "donor", actor: Any = None) -> RecurringPlan:
    """Cancel a recurring plan at the provider, then here. Raises ProviderError.

    ``reason`` is who asks: the donor, staff (``actor`` is the user), the erasure of the
    donor, or the last failed try (dunning). A plan whose checkout never completed has
    nothing at the provider to cancel.
    """
    if plan.status == PlanStatus.CANCELLED and reason in ("donor", "staff"):
        return plan
    provider = get_provider(plan.provider)
    events = provider.cancel_plan(plan) if plan.provider_ref else []
    return ledger.record_plan_cancelled(
        plan,
        events,
        cause=CANCEL_CAUSES[reason],
        actor=actor,
        notify=reason != "erasure",
    )


class CannotStartAgain(ProviderError):
    """A cancelled plan that cannot be started again as it was; the message says why, in
    words for the donor."""


def start_again(plan: RecurringPlan, *, base_url: str | None = None) -> str:
    """A cancelled plan's way back: a new checkout (a new plan, through
    :func:`start_contribution_once` like the give form) with the old plan's amount, frequency,
    currency and provider; the old row stays as it ended. Returns the checkout URL.

    The plan's terms are checked again as the give form checks a new gift's: since it
    ended, the newsroom may have stopped accepting its currency or moved the minimum or the
    maximum, and a restart must not open a checkout the give form would refuse.

    Raises :class:`CannotStartAgain` (a ProviderError whose message is for the donor) when
    the plan is still live or its currency or amount is no longer accepted, and
    ``UnknownProvider`` when its provider is no longer offered.
    """
    if plan.status != PlanStatus.CANCELLED:
        raise CannotStartAgain(_("Only a cancelled plan can be started again."))
    get_provider(plan.provider)  # no longer offered: UnknownProvider, even for a repeat
    try:
        validate_amount(plan.amount, validate_currency(plan.currency))
    except AmountError as exc:
        raise CannotStartAgain(
            _("This plan cannot be started again as it was: %(reason)s Please give anew "
              "from the support page.") % {"reason": exc}
        ) from None
    return start_contribution_once(
        f"restart|{plan.pk}|{plan.amount}|{plan.currency}|{plan.frequency}|{plan.provider}",
        frequency=plan.frequency,
        amount=plan.amount,
        currency=plan.currency,
        provider_key=plan.provider,
        source=f"restart:{plan.pk}",
        base_url=base_url,
    )


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
    ledger.record_findings(
        plan.provider,
        f"local:change:{plan.pk}:{stamp.timestamp()}",
        events,
        cause=ChangeCause.DONOR,
    )
    plan.refresh_from_db()
    return plan
