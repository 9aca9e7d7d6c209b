"""Money: integer minor units plus an ISO 4217 currency; parsing and validating amounts.

Floats never touch an amount. A reader's custom amount ("5", "5.50", "5,50") is parsed with
:class:`decimal.Decimal` into minor units; every amount is checked against the configured
minimum for its currency and the site-wide maximum.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils.translation import gettext as _

# Minor-unit exponents for the currencies a newsroom is likely to accept. Zero-decimal
# currencies (JPY) are listed so that a misconfiguration cannot multiply by 100.
EXPONENTS = {
    "USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "CHF": 2, "SEK": 2, "NOK": 2,
    "DKK": 2, "PLN": 2, "CZK": 2, "NZD": 2, "JPY": 0,
}  # fmt: skip
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "JPY": "¥"}
DEFAULT_MINIMUM = 200
_DECIMAL = re.compile(r"^\d{1,12}(?:[.,]\d{1,2})?$")


class AmountError(ValueError):
    """An amount or currency a reader (or an editor) gave that we will not accept."""


def currencies() -> list[str]:
    return [c.upper() for c in settings.MASTHEAD_CURRENCIES if c.upper() in EXPONENTS]


def minimum(currency: str) -> int:
    return int(settings.MASTHEAD_MINIMUM_AMOUNTS.get(currency.upper(), DEFAULT_MINIMUM))


def maximum() -> int:
    return int(settings.MASTHEAD_MAXIMUM_AMOUNT)


def format_money(amount: int, currency: str) -> str:
    """``500, "USD"`` → ``$5`` ; ``550, "EUR"`` → ``€5.50``."""
    exponent = EXPONENTS.get(currency, 2)
    major = Decimal(amount).scaleb(-exponent)
    text = f"{major:,.{exponent}f}"
    if exponent and text.endswith("." + "0" * exponent):
        text = text[: -exponent - 1]
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


def to_major_text(amount: int, currency: str) -> str:
    """``750, "USD"`` → ``"7.50"``; ``1000`` → ``"10"`` (for prefilling an amount field)."""
    exponent = EXPONENTS.get(currency, 2)
    text = f"{Decimal(amount).scaleb(-exponent):.{exponent}f}"
    return text[: -exponent - 1] if exponent and text.endswith("." + "0" * exponent) else text


def validate_currency(value: str) -> str:
    code = (value or "").strip().upper()
    if code not in currencies():
        raise AmountError(
            _("Choose one of these currencies: %(list)s.") % {"list": ", ".join(currencies())}
        )
    return code


def validate_amount(amount: int, currency: str) -> int:
    """Check an amount in minor units; returns it or raises :class:`AmountError`."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise AmountError(_("Enter the amount as a number."))
    if amount <= 0:
        raise AmountError(_("Enter an amount greater than zero."))
    low = minimum(currency)
    if amount < low:
        raise AmountError(
            _("The smallest contribution we can accept is %(min)s.")
            % {"min": format_money(low, currency)}
        )
    if amount > maximum():
        raise AmountError(
            _("For a gift above %(max)s, please write to us.")
            % {"max": format_money(maximum(), currency)}
        )
    return amount


def parse_minor(value: str) -> int:
    """A preset amount as posted: a whole number of minor units."""
    text = (value or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 15:
        raise AmountError(_("Enter the amount as a number."))
    return int(text)


def parse_major(value: str, currency: str) -> int:
    """A custom amount typed by a reader, in major units ("5", "5.50", "5,50")."""
    text = (value or "").strip().replace("\u00a0", "").replace(" ", "")
    for symbol in SYMBOLS.values():
        text = text.removeprefix(symbol)
    if text.startswith("-"):
        raise AmountError(_("Enter an amount greater than zero."))
    if not text.isascii() or not _DECIMAL.match(text):
        raise AmountError(_("Enter the amount as a number, like 5 or 12.50."))
    try:
        major = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise AmountError(_("Enter the amount as a number, like 5 or 12.50."))
    exponent = EXPONENTS.get(currency, 2)
    minor = major.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise AmountError(_("That amount has too many decimal places."))
    return int(minor)
