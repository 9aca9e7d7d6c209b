"""Reader views of contributions: give, checkout, this site's own checkout page (the
sandbox's), thanks, self-service, and the webhook endpoint.

Views only validate input and turn bad input into clear 4xx pages; every write goes through
:mod:`~masthead.contributions.giving` (the reader's and donor's actions) or
:mod:`~masthead.contributions.ledger` (webhooks), never around them. The give page is the
same for every reader and is cacheable; checkout is ``csrf_exempt`` because it is posted from
cached pages (it only creates a pending record and a hosted checkout: no money moves without
the provider's confirmation).
Pages that reveal a donor (thanks, manage) are private: ``no-store``, never in the page cache,
no referrer leaks of their tokens.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from masthead.core.crypto import email_index
from masthead.core.pagecache import mark_public
from masthead.core.ratelimit import client_address, spend
from masthead.reach.hosts import reader_base_url

from . import giving, ledger
from .forms import ChangePlanForm, GiveForm, ManageLinkForm, SandboxPayForm
from .models import Contribution, ContributionStatus, Frequency, PlanStatus
from .money import currencies, format_money, parse_minor, to_major_text
from .options import giving_options
from .providers import UnknownProvider, WebhookError, get_provider
from .providers.base import ProviderError
from .tokens import contribution_from_token, donor_from_manage_token

log = logging.getLogger(__name__)
MAX_WEBHOOK_BYTES = 1024 * 1024


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store, private, max-age=0"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _give_context(request: HttpRequest, form: GiveForm | None, **extra) -> dict:
    if form is not None and form.is_bound:
        data = form.data
    else:
        data = request.GET
    currency = (data.get("currency") or "").upper()
    options = giving_options(currency if currency in currencies() else None)
    frequency = data.get("frequency") or Frequency.MONTHLY
    if frequency not in Frequency.values:
        frequency = Frequency.MONTHLY
    selected = next(f for f in options["frequencies"] if f["value"] == frequency)
    amount = None
    try:
        amount = parse_minor(data.get("amount") or "")
    except ValueError:
        amount = None
    custom = ""
    if amount is not None and amount not in selected["amounts"]:
        custom = to_major_text(amount, options["currency"])
        amount = None
    if form is not None and form.is_bound:
        custom = data.get("custom_amount", "")[:30]
    if amount is None and not custom:
        amount = selected["suggested"]
    return {
        "options": options,
        "form": form,
        "frequency": frequency,
        "amount": amount,
        "custom_amount": custom,
        "name": data.get("name", "")[:80] if form is not None else "",
        "message": data.get("message", "")[:500] if form is not None else "",
        "public": bool(data.get("public")) if form is not None else False,
        "source": data.get("source", "")[:100],
        "provider": data.get("provider", ""),
        **extra,
    }


@require_http_methods(["GET", "HEAD"])
def give(request: HttpRequest) -> HttpResponse:
    """The contribution page: the full form, prefilled from ``frequency/amount/currency``."""
    response = render(request, "contributions/give.html", _give_context(request, None))
    return mark_public(response)


@csrf_exempt
@require_POST
def checkout(request: HttpRequest) -> HttpResponse:
    """Validate the giving form and hand the reader to the chosen provider's checkout."""
    form = GiveForm(request.POST)
    limit = settings.MASTHEAD_CHECKOUTS_PER_IP
    if not spend(f"contrib:checkout:ip:{client_address(request)}", limit):
        # Each checkout creates a record here and a session at the provider: no floods.
        context = _give_context(
            request,
            form,
            provider_error=_(
                "Too many attempts from your connection. Nothing was charged; please wait a "
                "little and try again."
            ),
        )
        return _private(render(request, "contributions/give.html", context, status=429))
    if not form.is_valid():
        context = _give_context(request, form)
        return _private(render(request, "contributions/give.html", context, status=400))
    data = form.cleaned_data
    # One submission, one checkout: the page's one-time key, else (no JavaScript) who sent
    # it; always with what was chosen, so changing the amount and resubmitting is new.
    submission = "|".join(
        str(part)
        for part in (
            data["submission"] or client_address(request),
            data["frequency"],
            data["amount_minor"],
            data["currency"],
            data["provider"],
            data["name"],
            data["public"],
            data["message"],
            data["source"],
        )
    )
    try:
        url = giving.start_contribution_once(
            submission,
            reuse_seconds=(
                giving.SUBMISSION_REUSE_SECONDS
                if data["submission"]
                else giving.SUBMISSION_REUSE_SECONDS_WITHOUT_KEY
            ),
            frequency=data["frequency"],
            amount=data["amount_minor"],
            currency=data["currency"],
            provider_key=data["provider"],
            name=data["name"],
            is_public=data["public"],
            message=data["message"],
            source=data["source"],
            # The provider returns the reader to the host they gave from (a mirror, the onion).
            base_url=reader_base_url(request),
        )
    except ProviderError as exc:
        log.warning("checkout at %s failed: %s", data["provider"], exc)
        context = _give_context(
            request,
            form,
            provider_error=_(
                "We could not reach the payment provider. Nothing was charged; "
                "please try again in a moment or choose another payment method."
            ),
        )
        return _private(render(request, "contributions/give.html", context, status=503))
    response = HttpResponseRedirect(url)
    response.status_code = 303  # See Other: the browser GETs the provider's checkout
    return _private(response)


def _contribution_or_404(token: str) -> Contribution:
    contribution = contribution_from_token(token)
    if contribution is None:
        raise Http404("This link is not valid.")
    return contribution


@never_cache
@csrf_exempt
@require_http_methods(["GET", "POST"])
def hosted_checkout(request: HttpRequest, token: str) -> HttpResponse:
    """This site's checkout page, for a provider that hosts it here (the sandbox): complete,
    fail or cancel. The choice becomes the provider's signed webhook, accepted by the very
    code the webhook endpoint runs (:func:`accept_webhook`)."""
    contribution = _contribution_or_404(token)
    try:
        provider = get_provider(contribution.provider)
    except UnknownProvider:
        raise Http404("Not a payment checked out here.")
    if not provider.hosts_checkout_page:
        raise Http404("Not a payment checked out here.")
    if contribution.paid_at:
        return redirect("contributions:thanks", token=token)
    form = SandboxPayForm(request.POST or None)
    declined = False
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "cancel":
            _deliver(provider.key, provider.checkout_page_webhook(contribution, "cancel"))
            return _private(redirect("contributions:cancelled", token=token))
        if action not in ("complete", "fail"):
            status = 400
            form.add_error(None, _("Choose to complete, decline or cancel the payment."))
        elif not form.is_valid():
            status = 400
        else:
            signed = provider.checkout_page_webhook(
                contribution,
                action,
                email=form.cleaned_data["email"],
                name=form.cleaned_data["name"],
            )
            _deliver(provider.key, signed)
            if action == "fail":
                declined = True
            else:
                return _private(redirect("contributions:thanks", token=token, permanent=False))
    context = {
        "contribution": contribution,
        "amount": format_money(contribution.amount, contribution.currency),
        "form": form,
        "declined": declined,
    }
    template = provider.checkout_page_template
    return _private(render(request, template, context, status=status))


@never_cache
@require_http_methods(["GET", "HEAD"])
def thanks(request: HttpRequest, token: str) -> HttpResponse:
    contribution = _contribution_or_404(token)
    context = {
        "contribution": contribution,
        "amount": format_money(contribution.amount, contribution.currency),
        "confirmed": contribution.status == ContributionStatus.SUCCEEDED,
        "failed": contribution.status in (ContributionStatus.FAILED, ContributionStatus.ABANDONED),
    }
    return _private(render(request, "contributions/thanks.html", context))


@never_cache
@require_http_methods(["GET", "HEAD"])
def cancelled(request: HttpRequest, token: str) -> HttpResponse:
    """The reader left the provider's checkout: nothing was charged; offer to try again."""
    giving.abandon_checkout(_contribution_or_404(token))
    context = _give_context(
        request,
        None,
        notice=_("You left the checkout, so nothing was charged. You can try again below."),
    )
    return _private(render(request, "contributions/give.html", context))


@never_cache
@require_http_methods(["GET"])
def checkout_return(request: HttpRequest, token: str) -> HttpResponse:
    """The reader is back from the provider (PayPal): confirm with it, then say thanks."""
    contribution = _contribution_or_404(token)
    params = {k: v[:200] for k, v in request.GET.items()}
    try:
        giving.confirm_return(contribution, params)
    except UnknownProvider:
        # Switched off since this checkout began: nothing to confirm with; the thank-you
        # page shows what is known (webhooks and the reconcile job settle the rest).
        pass
    except ProviderError as exc:
        log.warning("return from %s for #%s: %s", contribution.provider, contribution.pk, exc)
    return _private(redirect("contributions:thanks", token=token))


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, provider_key: str) -> HttpResponse:
    """Provider webhooks: verify, store once, apply. Refusals are 4xx and change nothing."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_WEBHOOK_BYTES:
        return JsonResponse({"error": "payload too large"}, status=413)
    return accept_webhook(provider_key, request.body, request.headers)


def accept_webhook(provider_key: str, body: bytes, headers, *, apply_now: bool = False
                   ) -> JsonResponse:
    """The webhook endpoint's answer to one delivery: ``ledger.receive_webhook`` verifies,
    stores once and wakes the worker, which applies it. The answer is the event's status:
    "received" (stored; applied in the worker), or what became of it if it was stored before
    ("processed", "ignored", "waiting"). This site's checkout page calls it too (``apply_now``:
    see :func:`_deliver`), with the
    request the provider signed, rather than POSTing to itself: the same code and
    verification run, without a second HTTP request to the host the reader used (a mirror or
    onion address the server may not reach, and a deadlock on a one-worker server)."""
    try:
        event = ledger.receive_webhook(provider_key, body, headers, apply_now=apply_now)
    except UnknownProvider:
        return JsonResponse({"error": "unknown provider"}, status=404)
    except WebhookError as exc:
        log.warning("webhook %s refused: %s", provider_key, exc)
        return JsonResponse({"error": str(exc)}, status=exc.status)
    status = 202 if event.status == "failed" else 200
    return JsonResponse({"status": event.status, "id": event.event_id}, status=status)


def _deliver(provider_key: str, signed) -> None:
    """The sandbox's checkout page: its webhook, then at once what the reader's return from a
    real provider does (``giving.confirm_return`` asks the provider): the reader's choice is
    applied before the thank-you page, not when the worker gets to it."""
    response = accept_webhook(provider_key, signed.body, signed.headers, apply_now=True)
    if response.status_code >= 400:
        log.error("a webhook this site signed was refused: %s", response.content[:200])


@never_cache
@csrf_exempt
@require_http_methods(["GET", "POST"])
def manage_request(request: HttpRequest) -> HttpResponse:
    """Ask for a "manage my support" link. Same answer whether or not the email is known."""
    form = ManageLinkForm(request.POST or None)
    if request.method == "POST":
        if not form.is_valid():
            return _private(
                render(request, "contributions/manage_request.html", {"form": form}, status=400)
            )
        from .models import Donor
        from .tasks import send_manage_link

        index = email_index(form.cleaned_data["email"])
        ip = client_address(request)
        limited = not spend(f"contrib:manage:e:{index}", 3) or not spend(
            f"contrib:manage:ip:{ip}", 30
        )
        donor = Donor.objects.filter(email_index=index, erased_at__isnull=True).first()
        if donor is not None and not limited:
            send_manage_link.enqueue(donor.pk, request.LANGUAGE_CODE)
        return _private(render(request, "contributions/manage_sent.html", {}))
    return _private(render(request, "contributions/manage_request.html", {"form": form}))


@never_cache
@csrf_exempt
@require_http_methods(["GET", "POST"])
def manage(request: HttpRequest, token: str) -> HttpResponse:
    """A donor's own page: contributions, and change or cancel of recurring plans."""
    donor = donor_from_manage_token(token)
    if donor is None:
        response = render(
            request,
            "contributions/manage_request.html",
            {"form": ManageLinkForm(), "expired": True},
            status=403,
        )
        return _private(response)
    notice = error = ""
    status = 200
    confirming = None
    change_forms: dict[int, ChangePlanForm] = {}
    if request.method == "POST":
        plan = donor.plans.filter(pk=_int(request.POST.get("plan"))).first()
        action = request.POST.get("action")
        if plan is None or action not in ("cancel", "change", "restart"):
            error, status = _("That plan or action is not valid."), 400
        elif action == "restart":
            if plan.status != PlanStatus.CANCELLED:
                error, status = _("That plan or action is not valid."), 400
            elif not spend(
                f"contrib:checkout:ip:{client_address(request)}",
                settings.MASTHEAD_CHECKOUTS_PER_IP,
            ):
                error, status = _("Too many attempts; please wait a little and try again."), 429
            else:
                try:
                    url = giving.start_again(plan, base_url=reader_base_url(request))
                except UnknownProvider:
                    error, status = (
                        _("That payment method is no longer offered; please choose another."),
                        400,
                    )
                except giving.CannotStartAgain as exc:
                    error, status = str(exc), 400  # the donor's reason (currency, amount)
                except ProviderError as exc:
                    log.warning("start plan %s again: %s", plan.pk, exc)
                    error, status = (
                        _("We could not reach the payment provider; please try again."),
                        503,
                    )
                else:
                    response = HttpResponseRedirect(url)
                    response.status_code = 303
                    return _private(response)
        elif action == "cancel" and request.POST.get("confirm") != "yes":
            # One click never ends a plan: the first asks, with the plan's terms, and only
            # the second post (confirm=yes) cancels. No JavaScript needed; GET changes nothing.
            confirming = plan.pk
        elif action == "cancel":
            try:
                giving.cancel_plan(plan)
                notice = _(
                    "Your recurring support is cancelled. No further payments will be taken."
                )
            except ProviderError as exc:
                log.warning("cancel plan %s: %s", plan.pk, exc)
                error, status = _("We could not reach the payment provider; please try again."), 503
        elif not plan.is_live:
            # Only a live plan changes; an ended one can be started again instead.
            error, status = _("That plan or action is not valid."), 400
        else:
            form = ChangePlanForm(request.POST, currency=plan.currency)
            if not form.is_valid():
                change_forms[plan.pk] = form
                error, status = _("Please correct the amount below."), 400
            else:
                try:
                    giving.change_plan(
                        plan,
                        amount=form.cleaned_data["amount"],
                        frequency=form.cleaned_data["frequency"],
                    )
                    notice = _("Your recurring support is updated.")
                except ProviderError as exc:
                    log.warning("change plan %s: %s", plan.pk, exc)
                    error, status = (
                        _("We could not change this plan right now: %(e)s") % {"e": exc},
                        503,
                    )
    plans = list(donor.plans.exclude(status__in=[PlanStatus.PENDING, PlanStatus.ABANDONED]))
    for plan in plans:
        plan.change_form = change_forms.get(plan.pk)
        plan.display_amount = format_money(plan.amount, plan.currency)
        plan.major_amount = to_major_text(plan.amount, plan.currency)
    contributions = [
        c
        for c in donor.contributions.select_related("plan").order_by("-created_at")
        if c.paid_at or c.status == ContributionStatus.FAILED
    ]
    context = {
        "donor": donor,
        "plans": plans,
        "contributions": contributions,
        "notice": notice,
        "error": error,
        "token": token,
        "confirming": confirming,
        "recurring": [
            (Frequency.MONTHLY, Frequency.MONTHLY.label),
            (Frequency.ANNUAL, Frequency.ANNUAL.label),
        ],
        "give_url": reverse("contributions:give"),
    }
    return _private(render(request, "contributions/manage.html", context, status=status))


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
