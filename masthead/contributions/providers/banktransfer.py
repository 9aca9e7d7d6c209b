"""Bank transfer: the reader pledges, gets a reference and the newsroom's account details,
and pays from their own bank; staff record what arrives (one by one or from a statement,
see :mod:`masthead.contributions.statements`).

No money passes through a processor, so there is nothing to call and no webhook: the
checkout is a page on this site showing the reference and the account details, and every
payment is a staff action recorded through the ledger. A one-off pledge has its own
reference (``Contribution.checkout_ref``); a monthly or annual pledge has one standing
reference (``RecurringPlan.provider_ref``) the donor puts on each transfer (a standing order
at their bank), and a reminder each period (:mod:`masthead.contributions.paybylink`).

References are short, unambiguous (no 0/O, 1/I/L) and random, never a database id:
``7KQP-3MXD``. Matching tolerates case, spaces, dashes and dots (:func:`normalise`).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.utils import timezone

from .base import (
    CheckoutUrls,
    EventKind,
    IncomingEvent,
    PaymentEvent,
    PaymentProvider,
    WebhookError,
)

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud or typed, unambiguous
GROUP = 4
LENGTH = 8
_REFERENCE = re.compile(rf"^[{ALPHABET}]{{{LENGTH}}}$")


def new_reference() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return format_reference(raw)


def format_reference(raw: str) -> str:
    return "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))


def normalise(text: str) -> str:
    """A reference as a donor or a bank may have written it, in our canonical form, or ''.

    Case, spaces, dashes, dots and slashes are ignored; banks often put the reference among
    other words ("Payment 7kqp 3mxd thanks"), so a run of exactly eight reference characters
    anywhere in the text is found too — but only when there is exactly one such run.
    """
    compact = re.sub(r"[\s\-./_]", "", (text or "").upper())
    if _REFERENCE.match(compact):
        return format_reference(compact)
    found = {
        m.group(0).replace("-", "").replace(" ", "")
        for m in re.finditer(
            rf"(?<![A-Z0-9])[{ALPHABET}]{{4}}[\s\-]?[{ALPHABET}]{{4}}(?![A-Z0-9])",
            (text or "").upper(),
        )
    }
    return format_reference(found.pop()) if len(found) == 1 else ""


class BankTransferProvider(PaymentProvider):
    display_name = "Bank transfer"
    marks = ("IBAN", "SWIFT")
    wording_key = "banktransfer"
    pay_by_link = True  # recurring pledges: a reminder with the reference each period
    payment_kind = "transfer"

    @property
    def checkout_patience(self) -> dt.timedelta:
        """A pledge waits MASTHEAD_BANK_TRANSFER_PLEDGE_DAYS for its transfer (days, not the
        two a card checkout gets: international transfers take a week or more)."""
        return dt.timedelta(days=settings.MASTHEAD_BANK_TRANSFER_PLEDGE_DAYS)

    def start_checkout(self, contribution, plan, urls: CheckoutUrls) -> str:
        from ..models import Contribution, RecurringPlan

        for _ in range(20):
            reference = new_reference()
            taken = (
                Contribution.objects.filter(provider=self.key, checkout_ref=reference).exists()
                or RecurringPlan.objects.filter(provider=self.key, provider_ref=reference).exists()
            )
            if not taken:
                break
        else:  # 31^8 references: twenty collisions in a row means something else is wrong
            from .base import ProviderError

            raise ProviderError("No free bank transfer reference.")
        contribution.checkout_ref = reference
        if plan is not None:
            plan.provider_ref = reference
        # The pledge page (reference and account details) lives beside the thank-you page:
        # checkout/<token>/transfer/ next to checkout/<token>/thanks/.
        if urls.success.endswith("/thanks/"):
            return urls.success.removesuffix("thanks/") + "transfer/"
        return urls.success

    # --- no webhooks: staff record transfers ------------------------------------------

    def missing_webhook_settings(self) -> list[str]:
        return []  # it needs none (so `manage.py check` passes); its webhook route is a 404

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> IncomingEvent:
        raise WebhookError("Bank transfers have no webhooks.", 404)

    def translate(self, event_type: str, payload: dict[str, Any]) -> list[PaymentEvent]:
        return []

    # --- plans ------------------------------------------------------------------------

    def cancel_plan(self, plan) -> list[PaymentEvent]:
        # The donor's standing order is theirs to stop; we stop expecting and reminding.
        return [
            PaymentEvent(kind=EventKind.PLAN_CANCELLED, occurred_at=timezone.now(), plan_id=plan.pk)
        ]

    def change_plan(self, plan, amount: int, frequency: str) -> list[PaymentEvent]:
        return []

    def fix_payment_url(self, plan, return_url: str) -> str:
        return return_url  # the manage page shows the reference and the account details
