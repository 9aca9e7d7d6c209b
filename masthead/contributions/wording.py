"""What a payment is called at the provider: product names, descriptions, statement text.

With ``MASTHEAD_RECEIPT_NEUTRAL`` on, the receipts we send name neither the outlet nor
giving; this module makes what we send to Stripe, PayPal and BTCPay match, so that the
donor's card statement, wallet history or BTCPay receipt does not name the outlet either
(``MASTHEAD_NEUTRAL_PRODUCT_NAME``, ``MASTHEAD_NEUTRAL_STATEMENT_DESCRIPTOR``). The account's
own name at each provider (Stripe's statement descriptor prefix, PayPal's business name, the
BTCPay store name) is set there, by the newsroom: see docs/contributions.md.
"""

from __future__ import annotations

import re

from django.conf import settings


def neutral() -> bool:
    return bool(settings.MASTHEAD_RECEIPT_NEUTRAL)


def product_name(frequency: str = "once") -> str:
    """The line item a donor sees at the provider's checkout and in their history."""
    if neutral():
        return settings.MASTHEAD_NEUTRAL_PRODUCT_NAME
    outlet = settings.MASTHEAD_OUTLET_NAME
    if frequency == "monthly":
        return f"Monthly support for {outlet}"
    if frequency == "annual":
        return f"Annual support for {outlet}"
    return f"Contribution to {outlet}"


def catalogue_name() -> str:
    """A product standing for every recurring plan (PayPal's catalogue product)."""
    if neutral():
        return settings.MASTHEAD_NEUTRAL_PRODUCT_NAME
    return f"Support {settings.MASTHEAD_OUTLET_NAME}"


def brand_name() -> str:
    """The merchant name shown on a hosted checkout page that lets us choose it (PayPal)."""
    return settings.MASTHEAD_NEUTRAL_PRODUCT_NAME if neutral() else settings.MASTHEAD_OUTLET_NAME


def statement_suffix() -> str:
    """Text for the card statement after the account's prefix ('' = the account's default).

    Stripe allows 22 characters in all, Latin letters, digits and spaces, and not only
    digits; we send the neutral descriptor only when neutral receipts are on.
    """
    if not neutral():
        return ""
    text = re.sub(r"[^A-Za-z0-9 ]", "", settings.MASTHEAD_NEUTRAL_STATEMENT_DESCRIPTOR).strip()
    return text[:22] if re.search(r"[A-Za-z]", text) else ""
