"""Signed links: the checkout token (thanks, return and sandbox pages of one contribution) and
the donor's "manage my support" token, and absolute URLs for emails and providers.

Tokens are Django signatures over our ids (no table); a manage token is bound to the donor's
current address, so erasure revokes every link.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

from .models import Contribution, Donor

CHECKOUT_SALT = "masthead.contributions.checkout"
MANAGE_SALT = "masthead.contributions.manage"


def checkout_token(contribution: Contribution) -> str:
    return signing.dumps(contribution.pk, salt=CHECKOUT_SALT, compress=True)


def contribution_from_token(token: str, max_age: int = 7 * 24 * 3600) -> Contribution | None:
    try:
        pk = signing.loads(token, salt=CHECKOUT_SALT, max_age=max_age)
    except signing.BadSignature:
        return None
    return Contribution.objects.filter(pk=pk).select_related("plan").first()


def manage_token(donor: Donor) -> str:
    # The blind index binds the link to the current address: erasure revokes every link.
    return signing.dumps({"d": donor.pk, "i": donor.email_index[:16]}, salt=MANAGE_SALT)


def donor_from_manage_token(token: str) -> Donor | None:
    try:
        data = signing.loads(token, salt=MANAGE_SALT, max_age=settings.MASTHEAD_MANAGE_LINK_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    donor = Donor.objects.filter(pk=data.get("d"), erased_at__isnull=True).first()
    if donor is None or donor.email_index[:16] != data.get("i"):
        return None
    return donor


def absolute(path: str, base_url: str | None = None) -> str:
    return (base_url or settings.MASTHEAD_BASE_URL).rstrip("/") + path


def manage_url(donor: Donor) -> str:
    return absolute(reverse("contributions:manage", args=[manage_token(donor)]))

