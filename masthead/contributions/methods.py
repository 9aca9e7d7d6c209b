"""How each payment method is shown to readers: its name in their language, its marks, and
one line on what it costs them in privacy.

The marks are first-party text badges (no logos fetched from anyone). Stripe's marks follow
the payment method types configured in ``MASTHEAD_STRIPE_PAYMENT_METHODS`` (wallets come
with ``card``), so the page never promises a method Checkout will not offer.
:func:`describe` feeds :class:`~masthead.contributions.options.Method`.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _

NAMES = {
    "stripe": _("Card, Apple Pay, Google Pay (Stripe)"),
    "paypal": _("PayPal"),
    "btcpay": _("Bitcoin"),
    "banktransfer": _("Bank transfer"),
    "sandbox": _("Sandbox (no real money)"),
}

PRIVACY = {
    "stripe": _("Your card issuer or wallet will see the payee on your statement."),
    "paypal": _("PayPal and your bank will see the payee in your history."),
    "btcpay": _(
        "No card or bank needed; paid straight to our own server. "
        "Bitcoin payments are public, though not your name."
    ),
    "banktransfer": _("No card needed; your bank will see the payee."),
    "sandbox": _("A test: no money moves and nobody is told."),
}

# Stripe Checkout's payment method types and what readers recognise them by.
STRIPE_MARKS = {
    "card": ("Visa", "Mastercard", "American Express", "Apple Pay", "Google Pay"),
    "sepa_debit": ("SEPA Direct Debit",),
    "ideal": ("iDEAL",),
    "bancontact": ("Bancontact",),
    "eps": ("EPS",),
    "p24": ("Przelewy24",),
    "giropay": ("giropay",),
    "sofort": ("Sofort",),
    "link": ("Link",),
    "us_bank_account": ("ACH Direct Debit",),
    "bacs_debit": ("Bacs Direct Debit",),
    "blik": ("BLIK",),
    "revolut_pay": ("Revolut Pay",),
}


def stripe_method_types() -> list[str]:
    return [str(t).strip() for t in settings.MASTHEAD_STRIPE_PAYMENT_METHODS if str(t).strip()]


def describe(provider) -> tuple[str, tuple[str, ...], str]:
    """``(name, marks, privacy note)`` of an enabled provider, in the active language."""
    key = provider.key
    lookup = provider.wording_key or key  # a capability, not a check of its class
    name = str(NAMES.get(lookup, provider.display_name))
    marks = tuple(str(m) for m in provider.marks)
    if lookup == "stripe":
        marks = tuple(m for t in stripe_method_types() for m in STRIPE_MARKS.get(t, (t,)))
    note = str(PRIVACY.get(lookup, ""))
    return name, marks, note
