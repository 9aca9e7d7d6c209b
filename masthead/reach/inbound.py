"""Email as a way in: readers who cannot open any site write to the newsroom.

Mail reaches us through an email provider's inbound webhook (``/anymail/<esp>/inbound/``,
authenticated in ``masthead.newsletters.webhooks``); anymail sends the ``inbound`` signal and
:func:`handle_inbound` dispatches on the address it was sent to:

* **the subscribe address** (``MASTHEAD_REACH_SUBSCRIBE_EMAIL``): a message starts the double
  opt-in through ``subscription_request`` — the ordinary confirmation email, which then also
  carries a *reply code* (in its subject and text) and ``Reply-To`` this address. A reply
  from the same address with that code confirms through ``subscription_confirm``, consent
  recorded with the source "email". The code names the subscription and the day it was
  issued, signed together with the address's blind index, so only the address it went to can
  use it, and only for ``MASTHEAD_NEWSLETTER_CONFIRM_DAYS``;
* **the auto-reply address** (``MASTHEAD_REACH_AUTOREPLY_EMAIL``): the latest sent edition
  with every article in full, and the published mirrors (as GetTor does for Tor Browser).

A tag after ``+`` in the address (``subscribe+fonar@…``, ``latest+ru@…``) picks a newsletter
by slug or language; otherwise the default newsletter.

Loops and abuse: automatic mail (RFC 3834 ``Auto-Submitted``, ``Precedence: bulk``, list
mail, mailer-daemons, no-reply senders, replies to our own mail without a valid code) is
ignored; our answers carry ``Auto-Submitted: auto-replied`` and the auto-reply has no
``Reply-To``. Replies are rate-limited per sender (a keyed hash of the address) and per
sender domain. Nothing about the writer is stored here: a sign-up stores what the web form's
does (the address encrypted), the auto-reply nothing.
"""

from __future__ import annotations

import copy
import itertools
import logging
import re
import time
from email.utils import make_msgid, parseaddr
from urllib.parse import urlsplit

from anymail.signals import inbound
from django import forms
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.dispatch import receiver
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.crypto import constant_time_compare, salted_hmac

from masthead.core.crypto import blind_index, email_index
from masthead.core.ratelimit import spend
from masthead.core.state import add_and_incr

log = logging.getLogger(__name__)

REPLY_CODE_SALT = "masthead.reach.inbound.reply-code"
# "<subscription id>-<day, base 36>-<20 hex digits>", e.g. 42-k9x-3f2a…; found in the
# subject ("Re: Confirm your subscription … (42-k9x-…)") or the quoted text of a reply.
REPLY_CODE = re.compile(r"\b(\d{1,12})-([0-9a-z]{1,6})-([0-9a-f]{20})\b")
AUTOMATIC_SENDERS = {
    "mailer-daemon", "postmaster", "noreply", "no-reply", "no_reply", "donotreply",
    "do-not-reply", "do_not_reply", "bounce", "bounces", "abuse",
}
MAX_CODES = 10  # code-like strings tried per text: a message stuffed with them costs little
SEEN_SECONDS = 7 * 86400  # how long a Message-ID is remembered, so a provider's retry is dropped


# --- the reply code ----------------------------------------------------------------------------


def subscribe_address() -> str:
    return (settings.MASTHEAD_REACH_SUBSCRIBE_EMAIL or "").strip()


def autoreply_address() -> str:
    return (settings.MASTHEAD_REACH_AUTOREPLY_EMAIL or "").strip()


def _today() -> int:
    return int(time.time() // 86400)


def _to36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _mac(subscription_id: int, day: str, index: str, secret: str) -> str:
    value = f"{subscription_id}:{day}:{index}"
    return salted_hmac(REPLY_CODE_SALT, value, secret=secret, algorithm="sha256").hexdigest()[:20]


def reply_code(subscription_id: int, email: str) -> str:
    """The code a reply quotes to confirm ``subscription_id`` from ``email``, and only it."""
    day = _to36(_today())
    mac = _mac(subscription_id, day, email_index(email), settings.SECRET_KEY)
    return f"{subscription_id}-{day}-{mac}"


def read_reply_code(text: str, email: str) -> int | None:
    """The subscription id of a valid, unexpired code for ``email`` found in ``text``."""
    index = email_index(email)
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    for match in itertools.islice(REPLY_CODE.finditer(text or ""), MAX_CODES):
        subscription_id, day, mac = int(match[1]), match[2], match[3]
        age = _today() - int(day, 36)
        if not 0 <= age <= settings.MASTHEAD_NEWSLETTER_CONFIRM_DAYS:
            continue
        if any(constant_time_compare(mac, _mac(subscription_id, day, index, secret))
               for secret in secrets):
            return subscription_id
    return None


# --- what a message is -------------------------------------------------------------------------


def _split(address: str) -> tuple[str, str, str]:
    """(local part without its +tag, tag, domain), lower-cased."""
    local, _, domain = parseaddr(address)[1].lower().rpartition("@")
    base, _, tag = local.partition("+")
    return base, tag, domain


def _addressed_to(message) -> tuple[str, str] | None:
    """("subscribe" | "autoreply", tag) for mail sent to one of our addresses, else None."""
    ours = {}
    for kind, address in (("subscribe", subscribe_address()), ("autoreply", autoreply_address())):
        if address:
            base, _tag, domain = _split(address)
            ours[(base, domain)] = kind
    if not ours:
        return None
    candidates = [message.envelope_recipient or ""]
    for header in ("To", "Cc", "Delivered-To", "X-Original-To"):
        candidates += [a.addr_spec for a in message.get_address_header(header)]
    for candidate in candidates:
        base, tag, domain = _split(candidate)
        if (base, domain) in ours:
            return ours[(base, domain)], tag
    return None


def _header(message, name: str) -> str:
    return str(message.get(name, "") or "").strip().lower()


def loop_reason(message) -> str:
    """Why a message must get no answer (automatic or list mail), or "" if it may."""
    auto = _header(message, "Auto-Submitted").split(";")[0].strip()
    if auto and auto != "no":
        return "auto-submitted"
    if _header(message, "Precedence") in ("bulk", "junk", "list", "auto_reply"):
        return "precedence"
    for name in ("List-Id", "List-Unsubscribe", "List-Post", "X-Autoreply", "X-Autorespond"):
        if name in message:
            return "list or auto-responder header"
    if message.envelope_sender == "" or _header(message, "Return-Path") == "<>":
        return "bounce (null sender)"
    if message.spam_detected:
        return "spam"
    return ""


def valid_sender(message) -> str | None:
    """The sender's address, checked like the sign-up form's; None for anything else."""
    from masthead.newsletters.forms import clean_address

    sender = message.from_email
    if sender is None or isinstance(sender, list):  # none, or several From addresses
        return None
    try:
        address = clean_address(sender.addr_spec)
    except forms.ValidationError:
        return None
    local, _, domain = address.partition("@")
    if local.lower().partition("+")[0] in AUTOMATIC_SENDERS or "." not in domain:
        return None  # a mailer-daemon or no-reply address, or a host no mail reaches
    own = {parseaddr(a)[1].lower() for a in (
        subscribe_address(), autoreply_address(), settings.DEFAULT_FROM_EMAIL,
        settings.SERVER_EMAIL, settings.MASTHEAD_NEWSLETTER_UNSUBSCRIBE_EMAIL,
    ) if a}
    if address.lower() in own:
        return None
    return address


def _answers_our_mail(message) -> bool:
    """A reply to a message we sent (our Message-IDs end in our host)."""
    host = (urlsplit(settings.MASTHEAD_BASE_URL).hostname or "localhost").lower()
    threads = _header(message, "In-Reply-To") + " " + _header(message, "References")
    return f"@{host}>" in threads


def _first_seen(message) -> bool:
    """False for a message handled before (a provider retrying a webhook)."""
    message_id = _header(message, "Message-ID")
    if not message_id:
        return True
    key = "reach:inbound:seen:" + blind_index(message_id)[:32]
    try:
        return add_and_incr(key, 1, timeout=SEEN_SECONDS) == 1
    except Exception:  # noqa: BLE001 - no store: the rate limits still bound the answers
        log.exception("could not record an inbound message as seen")
        return True


def _may_answer(address: str) -> bool:
    """Spend one answer from the sender's and the sender domain's hourly budgets."""
    domain = address.rpartition("@")[2].lower()
    return spend(
        "reach:inbound:sender:" + email_index(address)[:32],
        settings.MASTHEAD_REACH_EMAIL_REPLIES_PER_SENDER,
    ) and spend(
        "reach:inbound:domain:" + blind_index("domain:" + domain)[:32],
        settings.MASTHEAD_REACH_EMAIL_REPLIES_PER_DOMAIN,
        refund_refused=True,
    )


def _newsletter(tag: str):
    from masthead.newsletters.models import Newsletter

    active = Newsletter.objects.active()
    if tag:
        found = active.filter(slug=tag).first() or Newsletter.objects.default_for(tag)
        if found is not None and (found.slug == tag or found.language == tag):
            return found
    return Newsletter.objects.default_for(None)


# --- what we do ----------------------------------------------------------------------------------


def handle_message(message, esp_name: str = "") -> str:
    """Act on one inbound message; returns what happened (for logs and tests)."""
    addressed = _addressed_to(message)
    if addressed is None:
        return "not ours"
    kind, tag = addressed
    subject = str(message.subject or "")
    if subject.strip().lower().startswith("unsubscribe"):
        # "unsubscribe <token>" is the List-Unsubscribe mailto's (masthead.newsletters.signals)
        return "ignored: unsubscribe request"
    reason = loop_reason(message)
    if reason:
        return f"ignored: {reason}"
    sender = valid_sender(message)
    if sender is None:
        return "ignored: sender"
    if not _first_seen(message):
        return "ignored: seen before"
    if kind == "subscribe":
        return _subscribe(message, sender, subject, tag, esp_name)
    return _autoreply(message, sender, tag)


def _subscribe(message, sender: str, subject: str, tag: str, esp_name: str) -> str:
    from masthead.newsletters.subscriptions import subscription_confirm, subscription_request

    subscription_id = read_reply_code(subject, sender) or read_reply_code(
        str(message.text or ""), sender
    )
    if subscription_id is not None:
        confirmed = subscription_confirm(
            subscription_id, email_index(sender)[:12], source="email"
        )
        return "confirmed" if confirmed is not None else "ignored: no such sign-up"
    if _answers_our_mail(message):
        # a reply that lost its code, or an auto-responder answering our confirmation
        return "ignored: reply without a valid code"
    newsletter = _newsletter(tag)
    if newsletter is None:
        return "ignored: no newsletter"
    if not _may_answer(sender):
        return "rate-limited"
    # the web form's per-address budget too: however it is asked, an address gets few emails
    if not spend("newsletters:signup:address:" + email_index(sender)[:32],
                 settings.MASTHEAD_NEWSLETTER_SIGNUPS_PER_ADDRESS):
        return "rate-limited"
    subscription_request(sender, newsletter, source="email", auto_reply=True)
    return "subscribe"


def latest_edition(newsletter):
    from masthead.newsletters.models import Edition

    return (
        Edition.objects.filter(newsletter=newsletter, status=Edition.Status.SENT)
        .order_by("-sent_at", "-pk").first()
    )


def _autoreply(message, sender: str, tag: str) -> str:
    newsletter = _newsletter(tag)
    if newsletter is None:
        return "ignored: no newsletter"
    if not _may_answer(sender):
        return "rate-limited"
    edition = latest_edition(newsletter)
    email = autoreply_email(newsletter, edition, sender)
    incoming = str(message.get("Message-ID", "") or "").strip()
    if incoming and "\n" not in incoming and "\r" not in incoming:
        email.extra_headers["In-Reply-To"] = incoming
        email.extra_headers["References"] = incoming
    try:
        email.send()
    except Exception:  # noqa: BLE001 - a mail server hiccup must not fail the webhook
        log.exception("could not send the auto-reply")
        return "failed"
    return "autoreply"


def autoreply_email(newsletter, edition, to: str) -> EmailMultiAlternatives:
    """The latest edition with every article in full, and the published mirrors."""
    from masthead.newsletters.rendering import _context
    from masthead.reach.mirrors import email_mirror_links

    with translation.override(newsletter.language):
        context = {
            "newsletter": newsletter,
            "outlet_name": settings.MASTHEAD_OUTLET_NAME,
            "mirror_links": email_mirror_links(),
            "subscribe_address": subscribe_address(),
            "edition": edition,
        }
        if edition is not None:
            edition.newsletter = copy.copy(newsletter)
            edition.newsletter.full_text = True  # this copy only: every article in full
            context.update(_context(edition))
            subject = f"{newsletter.name}: {edition.subject}"
        else:
            subject = translation.gettext("%(name)s: where to read us") % {
                "name": newsletter.name
            }
        text = render_to_string("reach/email/latest_edition.txt", context)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    host = urlsplit(settings.MASTHEAD_BASE_URL).hostname or "localhost"
    return EmailMultiAlternatives(
        subject,
        text,
        from_email=newsletter.sender,
        to=[to],
        headers={
            "Message-ID": make_msgid("latest", domain=host),
            # RFC 3834: an automatic answer, which responders must not answer in turn
            "Auto-Submitted": "auto-replied",
            "X-Auto-Response-Suppress": "All",
        },
    )


@receiver(inbound, dispatch_uid="masthead.reach.inbound")
def handle_inbound(sender, event, esp_name, **kwargs) -> None:
    message = getattr(event, "message", None)
    if message is None:
        return
    try:
        outcome = handle_message(message, esp_name)
    except Exception:  # noqa: BLE001 - bad mail gets no answer, never a 500 (and a retry)
        log.exception("inbound %s message could not be handled", esp_name)
        return
    if outcome != "not ours":
        # no address, subject or code in the log: only what happened
        log.info("inbound %s message: %s", esp_name, outcome)
