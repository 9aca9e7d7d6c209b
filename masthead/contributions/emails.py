"""The emails contributions sends: receipts, manage links, new terms of a plan, dunning and
cancellation notices.

Each has a plain-text part beside the HTML. With ``MASTHEAD_RECEIPT_NEUTRAL`` the sender and
the subject name neither the outlet nor giving, for donors whose inbox may be looked at by
someone hostile; the body still says what the payment was for.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from masthead.reach.mirrors import email_link_base, email_mirror_links

from .models import Contribution, Donor, RecurringPlan
from .money import format_money


def _send(to: str, subject: str, template: str, context: dict) -> None:
    neutral = settings.MASTHEAD_RECEIPT_NEUTRAL
    context = {
        "outlet_name": settings.MASTHEAD_OUTLET_NAME,
        "base_url": email_link_base(),
        "mirror_links": email_mirror_links(),
        "neutral": neutral,
        **context,
    }
    if neutral:
        subject = settings.MASTHEAD_RECEIPT_NEUTRAL_SUBJECT
        sender = settings.MASTHEAD_RECEIPT_NEUTRAL_FROM
    else:
        subject = f"{subject} — {settings.MASTHEAD_OUTLET_NAME}"
        sender = settings.DEFAULT_FROM_EMAIL
    # No user-supplied text reaches a header; strip line breaks from ours regardless.
    subject = " ".join(subject.split())
    text = render_to_string(f"contributions/email/{template}.txt", context)
    html = render_to_string(f"contributions/email/{template}.html", context)
    message = EmailMultiAlternatives(subject, text, sender, [to])
    message.attach_alternative(html, "text/html")
    message.send()


def _language(language: str | None) -> str:
    codes = {code for code, _name in settings.LANGUAGES}
    return language if language in codes else settings.LANGUAGE_CODE


def plan_language(plan: RecurringPlan) -> str:
    first = plan.payments.filter(is_renewal=False).order_by("pk").first()
    return first.language if first else ""


def _manage_url(donor: Donor) -> str:
    # on the email link host (a mirror when the main domain is blocked), not the request's
    from .tokens import absolute, manage_token

    return absolute(reverse("contributions:manage", args=[manage_token(donor)]), email_link_base())


def send_receipt(contribution: Contribution) -> None:
    donor = contribution.donor
    paid = timezone.localtime(contribution.paid_at)
    language = contribution.language or (
        plan_language(contribution.plan) if contribution.plan else ""
    )
    with translation.override(_language(language)):
        _send(
            donor.email,
            _("Receipt for your contribution"),
            "receipt",
            {
                "contribution": contribution,
                "donor": donor,
                "amount": format_money(contribution.amount, contribution.currency),
                "date": paid,
                "plan": contribution.plan,
                "manage_url": _manage_url(donor),
            },
        )


def send_manage_link(donor: Donor, language: str = "") -> None:
    hours = settings.MASTHEAD_MANAGE_LINK_MAX_AGE // 3600
    with translation.override(_language(language)):
        _send(
            donor.email,
            _("Your link to manage your support"),
            "manage_link",
            {"donor": donor, "manage_url": _manage_url(donor), "hours": hours},
        )


def _payment_kind(plan: RecurringPlan) -> str:
    """How the donor pays ("card", "link", "transfer"), for the notices' words; a provider no
    longer configured is spoken of as a card (what every provider before issue 10 took)."""
    from .providers import UnknownProvider, get_provider

    try:
        return get_provider(plan.provider).payment_kind
    except UnknownProvider:
        return "card"


def send_dunning(plan: RecurringPlan) -> None:
    from .providers import get_provider

    with translation.override(_language(plan_language(plan))):
        manage = _manage_url(plan.donor)
        fix_url = get_provider(plan.provider).fix_payment_url(plan, manage) or manage
        kind = _payment_kind(plan)
        _send(
            plan.donor.email,
            _("Your payment did not go through")
            if kind == "card"
            else _("We have not received your payment"),
            "dunning",
            {
                "plan": plan,
                "payment_kind": kind,
                "amount": format_money(plan.amount, plan.currency),
                "fix_url": fix_url,
                "manage_url": manage,
                "tries_left": max(0, settings.MASTHEAD_DUNNING_MAX_TRIES - plan.failed_attempts),
            },
        )


def send_plan_changed(plan: RecurringPlan) -> None:
    with translation.override(_language(plan_language(plan))):
        _send(
            plan.donor.email,
            _("Your recurring support is updated"),
            "plan_changed",
            {
                "plan": plan,
                "amount": format_money(plan.amount, plan.currency),
                "manage_url": _manage_url(plan.donor),
            },
        )


def send_cancellation(plan: RecurringPlan, after_failures: bool = False) -> None:
    with translation.override(_language(plan_language(plan))):
        _send(
            plan.donor.email,
            _("Your recurring support is cancelled"),
            "cancelled",
            {
                "plan": plan,
                "payment_kind": _payment_kind(plan),
                "amount": format_money(plan.amount, plan.currency),
                "after_failures": after_failures,
                "give_url": email_link_base() + reverse("contributions:give"),
            },
        )
