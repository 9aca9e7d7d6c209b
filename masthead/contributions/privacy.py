"""Donors' data-protection requests: export everything we hold, and erase (anonymise).

Erasure cancels the donor's live plans at the provider first — each call made outside any
database transaction, each cancellation recorded by the ledger with the acting staff member —
and only then wipes the personal data in one transaction. If a provider cannot be reached,
nothing personal is wiped (plans already cancelled stay cancelled) and staff try again.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from .giving import cancel_plan
from .models import Contribution, Donor, PlanStatus


def export_donor(donor: Donor) -> dict[str, Any]:
    """Everything we hold about a donor, as JSON-ready data."""

    def contribution(c: Contribution) -> dict[str, Any]:
        return {
            "id": c.pk,
            "frequency": c.frequency,
            "amount_minor": c.amount,
            "currency": c.currency,
            "status": c.status,
            "provider": c.provider,
            "created_at": c.created_at.isoformat(),
            "paid_at": c.paid_at.isoformat() if c.paid_at else None,
            "refunded_minor": c.refunded_amount,
            "public_name": c.public_name,
            "is_public": c.is_public,
            "message": c.message,
        }

    return {
        "donor": {
            "id": donor.pk,
            "email": donor.email,
            "name": donor.name,
            "created_at": donor.created_at.isoformat(),
            "erased_at": donor.erased_at.isoformat() if donor.erased_at else None,
        },
        "recurring_plans": [
            {
                "id": p.pk,
                "frequency": p.frequency,
                "amount_minor": p.amount,
                "currency": p.currency,
                "status": p.status,
                "provider": p.provider,
                "created_at": p.created_at.isoformat(),
                "cancelled_at": p.cancelled_at.isoformat() if p.cancelled_at else None,
            }
            for p in donor.plans.order_by("pk")
        ],
        "contributions": [contribution(c) for c in donor.contributions.order_by("pk")],
    }


def erase_donor(donor: Donor, *, actor: Any = None) -> Donor:
    """Anonymise a donor: personal data goes, the financial record stays.

    Live plans are cancelled at the provider first (a person asking to be forgotten should not
    keep being charged; raises ProviderError when one cannot be); then email, name, public
    names and messages are wiped and every manage link stops working.
    """
    for plan in donor.plans.filter(status__in=[PlanStatus.ACTIVE, PlanStatus.PAST_DUE]):
        cancel_plan(plan, reason="erasure", actor=actor)
    with transaction.atomic():
        donor = Donor.objects.select_for_update().get(pk=donor.pk)
        donor.email = ""
        donor.name = ""
        donor.email_index = f"erased:{donor.pk}"
        donor.erased_at = timezone.now()
        donor.save()
        donor.contributions.update(public_name="", message="", is_public=False)
    return donor
