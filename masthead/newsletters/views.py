"""Reader views: sign-up, confirmation, unsubscribe (one click for mail programs), web
versions and the archive.

Sign-up forms sit on cached pages that anonymous readers get without cookies, so the POST
views are CSRF-exempt; what protects them instead: nothing they do needs the reader's
session, the honeypot, the rate limits, and double opt-in (a forged sign-up only sends a
confirmation email, which the rate limits bound).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core import signing
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from masthead.core.crypto import email_index
from masthead.core.pagecache import mark_public
from masthead.core.ratelimit import client_address, spend
from masthead.reach.hosts import on_reader_host

from . import tokens
from .forms import SignupForm
from .models import Edition, Newsletter, Subscription
from .subscriptions import subscription_confirm, subscription_request, subscription_unsubscribe


def _latest_edition(newsletter: Newsletter | None) -> Edition | None:
    if newsletter is None:
        return None
    return (
        Edition.objects.filter(newsletter=newsletter, status=Edition.Status.SENT)
        .order_by("-sent_at")
        .first()
    )


def index(request):
    newsletters = list(Newsletter.objects.active())
    for newsletter in newsletters:
        newsletter.latest = _latest_edition(newsletter)
    default = Newsletter.objects.default_for(get_language())
    context = {"newsletters": newsletters, "default": default}
    return mark_public(render(request, "newsletters/index.html", context))


def archive(request, newsletter):
    newsletter = get_object_or_404(Newsletter, slug=newsletter, active=True)
    editions = Edition.objects.filter(newsletter=newsletter, status=Edition.Status.SENT).order_by(
        "-sent_at"
    )
    context = {"newsletter": newsletter, "editions": editions}
    return mark_public(render(request, "newsletters/archive.html", context))


def _edition_response(request, edition: Edition):
    context = {
        "edition": edition,
        "newsletter": edition.newsletter,
        "items": edition.articles(),
        "canonical_url": edition.full_url,
    }
    return mark_public(render(request, "newsletters/edition_page.html", context))


def edition(request, newsletter, pk, slug):
    found = get_object_or_404(
        Edition.objects.select_related("newsletter"),
        pk=pk,
        newsletter__slug=newsletter,
        status=Edition.Status.SENT,
    )
    return _edition_response(request, found)


def latest(request):
    """The Preview link: the web version of the newest sent edition in this language."""
    newsletter = Newsletter.objects.default_for(get_language())
    found = _latest_edition(newsletter)
    if found is None:
        return mark_public(
            render(request, "newsletters/no_edition.html", {"newsletter": newsletter})
        )
    return _edition_response(request, found)


_MAX_ID = 2**63 - 1  # BigAutoField, on SQLite and PostgreSQL


@never_cache
def click(request, edition, link):
    """Count a click on an edition's link (aggregate only) and go on to it. Only links that
    the edition itself contains exist here, so this is no open redirect."""
    from django.db.models import F
    from django.http import HttpResponseRedirect

    from .models import EditionLink

    if not (0 < edition <= _MAX_ID and 0 < link <= _MAX_ID):
        # The URL converter takes any digits; the database's integers stop at 2**63 - 1.
        raise Http404("No such link")
    found = get_object_or_404(EditionLink, pk=link, edition_id=edition)
    EditionLink.objects.filter(pk=found.pk).update(clicks=F("clicks") + 1)
    # A link to our own site continues on the host the click came in on (a mirror).
    return HttpResponseRedirect(on_reader_host(found.url, request))


# --- Sign-up ----------------------------------------------------------------------------------


def _ip_key(ip: str) -> str:
    return "newsletters:signup:ip:" + hashlib.sha256(ip.encode()).hexdigest()[:32]


@never_cache
@csrf_exempt
@require_POST
def subscribe(request):
    language = get_language()
    form = SignupForm(request.POST, language=language)
    if not spend(_ip_key(client_address(request)), settings.MASTHEAD_NEWSLETTER_SIGNUPS_PER_IP):
        return render(
            request,
            "newsletters/signup_error.html",
            {"form": form, "message": _(
                "Too many sign-ups have come from your network in the last hour. "
                "Please try again later."
            )},
            status=429,
        )
    if not form.is_valid():
        return render(request, "newsletters/signup_error.html", {"form": form}, status=400)
    email = form.cleaned_data["email"]
    if not form.is_bot:
        # Per address: a bounded number of emails an hour, however many people ask; past it
        # the reader sees the same page (nothing to learn) and no further email goes out.
        address_key = "newsletters:signup:address:" + email_index(email)[:32]
        if spend(address_key, settings.MASTHEAD_NEWSLETTER_SIGNUPS_PER_ADDRESS):
            for newsletter in form.cleaned_data["newsletters"]:
                subscription_request(
                    email,
                    newsletter,
                    name=form.cleaned_data.get("name", ""),
                    source=form.cleaned_data.get("source") or "website",
                )
    return render(
        request,
        "newsletters/check_inbox.html",
        {"newsletters": form.cleaned_data["newsletters"], "email": email},
    )


@never_cache
@csrf_exempt
@require_http_methods(["GET", "POST"])
def confirm(request, token):
    try:
        subscription_id, index_prefix = tokens.read_confirm_token(token)
    except signing.SignatureExpired:
        return render(request, "newsletters/link_problem.html", {"expired": True}, status=410)
    except signing.BadSignature:
        return render(request, "newsletters/link_problem.html", {}, status=400)
    if request.method == "GET":
        # A page with a button, not an immediate confirmation: mail scanners that follow
        # links must not confirm on the reader's behalf.
        return render(request, "newsletters/confirm.html", {"token": token})
    subscription = subscription_confirm(subscription_id, index_prefix, source="confirm link")
    if subscription is None:
        return render(request, "newsletters/link_problem.html", {"expired": True}, status=410)
    newsletter = subscription.newsletter
    return render(
        request,
        "newsletters/confirmed.html",
        {"newsletter": newsletter, "latest": _latest_edition(newsletter)},
    )


def _noindex(response: HttpResponse) -> HttpResponse:
    """Link pages carrying a token: never cached (``never_cache``), never indexed."""
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@never_cache
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token):
    """The footer link (GET) shows a page with one button; its POST unsubscribes. Mail
    scanners that follow links must not unsubscribe the reader (as with confirmation).
    RFC 8058's one-click POST (``List-Unsubscribe=One-Click``) unsubscribes at once, and
    the page after unsubscribing offers to undo it."""
    try:
        subscription_id = tokens.read_unsubscribe_token(token)
    except signing.BadSignature:
        if request.method == "POST":
            return HttpResponse(
                "This unsubscribe link is damaged.", status=400, content_type="text/plain"
            )
        return _noindex(render(request, "newsletters/link_problem.html", {}, status=400))
    if request.method != "POST":
        subscription = (
            Subscription.objects.select_related("newsletter").filter(pk=subscription_id).first()
        )
        if subscription is None:
            raise Http404("No such subscription")
        return _noindex(render(
            request,
            "newsletters/unsubscribe.html",
            {"newsletter": subscription.newsletter, "token": token},
        ))
    action = request.POST.get("action")
    if action == "resubscribe":
        subscription = subscription_confirm(subscription_id, "", source="undo on unsubscribe page")
        if subscription is None:
            raise Http404("No such subscription")
        newsletter = subscription.newsletter
        return _noindex(render(
            request,
            "newsletters/confirmed.html",
            {"newsletter": newsletter, "latest": _latest_edition(newsletter)},
        ))
    from_page = action == "unsubscribe"
    subscription = subscription_unsubscribe(
        subscription_id,
        source="link (unsubscribe page)" if from_page else "one-click (List-Unsubscribe-Post)",
    )
    if subscription is None:
        raise Http404("No such subscription")
    if not from_page:
        # RFC 8058: the mail program posts "List-Unsubscribe=One-Click" and shows nothing.
        return HttpResponse("Unsubscribed.", content_type="text/plain; charset=utf-8")
    return _noindex(render(
        request,
        "newsletters/unsubscribed.html",
        {"newsletter": subscription.newsletter, "token": token},
    ))
