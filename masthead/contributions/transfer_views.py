"""Reader pages of the methods that are paid by following a link or a reference:

- :func:`transfer_pledge` — a bank-transfer pledge: the reference and the newsroom's account
  details, and the email the receipt (and, monthly, the reminders) go to;
- :func:`pay_period` — a pay-by-link plan's period: a fresh BTCPay invoice on each visit
  (so the emailed link never goes stale), or the transfer details.

Both are private pages (``no-store``, no referrer): their tokens name a donor's pledge.
"""

from __future__ import annotations

import logging

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import ledger
from .bankaccount import BankAccountSettings
from .forms import SandboxPayForm
from .models import ChangeCause, PlanStatus
from .money import format_money
from .paybylink import contribution_from_pay_token, period_context
from .providers import UnknownProvider, get_provider
from .providers.base import EventKind, PaymentEvent, ProviderError
from .tokens import absolute, checkout_token, contribution_from_token

log = logging.getLogger(__name__)


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store, private, max-age=0"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@never_cache
@csrf_exempt  # like the give form: no cookie; the unguessable token names the pledge
@require_http_methods(["GET", "POST"])
def transfer_pledge(request: HttpRequest, token: str) -> HttpResponse:
    contribution = contribution_from_token(token, max_age=30 * 24 * 3600)
    if contribution is None or contribution.provider != "banktransfer":
        raise Http404("No such pledge.")
    # Bound on every POST, an empty one too: "request.POST or None" left a post without
    # form fields (an empty body, JSON) unbound, and its 400 showed the form with no reason.
    form = SandboxPayForm(request.POST if request.method == "POST" else None)
    status = 200
    sent = request.GET.get("sent") == "1"
    if request.method == "POST":
        if form.is_valid():
            events = [
                PaymentEvent(
                    kind=EventKind.CHECKOUT_COMPLETED,
                    occurred_at=timezone.now(),
                    contribution_id=contribution.pk,
                    plan_id=contribution.plan_id,
                    checkout_ref=contribution.checkout_ref,
                    email=form.cleaned_data["email"],
                    name=form.cleaned_data["name"],
                )
            ]
            ledger.record_findings(
                "banktransfer",
                f"pledge:{contribution.pk}",
                events,
                cause=ChangeCause.READER,
            )
            contribution.refresh_from_db()
            if contribution.donor_id:
                from .paybylink import send_pledge_details

                send_pledge_details.enqueue(contribution.pk)
            return _private(redirect(request.path + "?sent=1"))
        status = 400
    context = {
        "contribution": contribution,
        "amount": format_money(contribution.amount, contribution.currency),
        "reference": contribution.checkout_ref,
        "account": BankAccountSettings.load(request_or_site=request).rows(),
        "form": form,
        "sent": sent or contribution.donor_id is not None,
    }
    return _private(render(request, "contributions/transfer_pledge.html", context, status=status))


@never_cache
@require_http_methods(["GET"])
def pay_period(request: HttpRequest, token: str) -> HttpResponse:
    period = contribution_from_pay_token(token)
    if period is None or period.plan is None:
        raise Http404("No such payment.")
    thanks = absolute(reverse("contributions:thanks", args=[checkout_token(period)]))
    if period.paid_at:
        return _private(redirect(thanks))
    if period.plan.status not in (PlanStatus.ACTIVE, PlanStatus.PAST_DUE, PlanStatus.PENDING):
        context = {"ended": True, **period_context(period)}
        return _private(render(request, "contributions/pay_period.html", context, status=410))
    try:
        provider = get_provider(period.provider)
    except UnknownProvider:
        raise Http404("This way of paying is no longer offered.")
    if hasattr(provider, "create_invoice"):
        try:
            invoice = provider.create_invoice(
                period, thanks, attempt=period.attempts + 1, expiration_minutes=None
            )
        except ProviderError as exc:
            log.warning("pay link for #%s: %s", period.pk, exc)
            context = {"unavailable": True, **period_context(period)}
            return _private(render(request, "contributions/pay_period.html", context, status=503))
        type(period).objects.filter(pk=period.pk).update(checkout_ref=str(invoice["id"])[:100])
        return _private(redirect(invoice["checkoutLink"]))
    return _private(render(request, "contributions/pay_period.html", period_context(period)))
