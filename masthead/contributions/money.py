"""Money: integer minor units plus an ISO 4217 currency; parsing, formatting, validating.

Floats never touch an amount. A reader's custom amount ("5", "5.50", "5,50") is parsed with
:class:`decimal.Decimal` into minor units using the currency's ISO 4217 exponent (JPY has no
minor unit, KWD has three). Which currencies are accepted, and the minimum and maximum of
each, is the typed configuration in :mod:`masthead.contributions.options`; the functions here
that need them read it from there, and ``manage.py check`` refuses a configuration it cannot
use (``contributions.E010`` …), so nothing here falls back to a guess.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _

# ISO 4217 minor-unit exponents of the currencies a newsroom can reasonably accept (funds,
# precious metals and currencies without a minor unit definition are left out). A code that
# is not here is refused by the system checks: an unknown exponent must never be guessed.
EXPONENTS = {
    # two decimals
    "AED": 2, "ARS": 2, "AUD": 2, "BAM": 2, "BGN": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2,
    "COP": 2, "CZK": 2, "DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2, "GEL": 2, "HKD": 2, "HUF": 2,
    "ILS": 2, "INR": 2, "KZT": 2, "MAD": 2, "MDL": 2, "MKD": 2, "MXN": 2, "MYR": 2, "NOK": 2,
    "NZD": 2, "PEN": 2, "PHP": 2, "PKR": 2, "PLN": 2, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2,
    "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2, "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2, "ZAR": 2,
    "AMD": 2, "AZN": 2, "BDT": 2, "BYN": 2, "KGS": 2, "LKR": 2, "NGN": 2, "KES": 2, "TJS": 2,
    "MNT": 2,
    # no minor unit
    "CLP": 0, "ISK": 0, "JPY": 0, "KRW": 0, "PYG": 0, "UGX": 0, "VND": 0, "XAF": 0, "XOF": 0,
    # three decimals
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "JPY": "¥"}


class AmountError(ValueError):
    """An amount or currency a reader (or an editor) gave that we will not accept."""


def exponent(currency: str) -> int:
    """The ISO 4217 minor-unit exponent of ``currency`` (2 for USD, 0 for JPY, 3 for KWD)."""
    try:
        return EXPONENTS[currency.upper()]
    except KeyError:
        raise AmountError(_("Unknown currency.")) from None


def currencies() -> list[str]:
    """The accepted currency codes, in the configured order."""
    from .options import money_config

    return list(money_config().codes)


def minimum(currency: str) -> int:
    from .options import money_config

    try:
        return money_config().currency(currency).minimum
    except KeyError:
        # e.g. a plan in a currency since removed from MASTHEAD_CURRENCIES
        raise AmountError(
            _("Choose one of these currencies: %(list)s.") % {"list": ", ".join(currencies())}
        ) from None


def maximum() -> int:
    from .options import money_config

    return money_config().maximum


def format_money(amount: int, currency: str) -> str:
    """``500, "USD"`` → ``$5`` ; ``550, "EUR"`` → ``€5.50``."""
    places = exponent(currency)
    major = Decimal(amount).scaleb(-places)
    text = f"{major:,.{places}f}"
    if places and text.endswith("." + "0" * places):
        text = text[: -places - 1]
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


def to_major_text(amount: int, currency: str) -> str:
    """``750, "USD"`` → ``"7.50"``; ``1000`` → ``"10"`` (for prefilling an amount field)."""
    places = exponent(currency)
    text = f"{Decimal(amount).scaleb(-places):.{places}f}"
    return text[: -places - 1] if places and text.endswith("." + "0" * places) else text


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


def _decimal_re(places: int) -> re.Pattern[str]:
    return re.compile(rf"^\d{{1,12}}(?:[.,]\d{{1,{places}}})?$")


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
    places = exponent(currency)
    # At most as many decimals as the currency has (but "5.50" stays a valid way to write
    # 5 in a currency without a minor unit: the check below then says what is wrong).
    if not text.isascii() or not _decimal_re(max(places, 2)).match(text):
        raise AmountError(_("Enter the amount as a number, like 5 or 12.50."))
    try:
        major = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise AmountError(_("Enter the amount as a number, like 5 or 12.50."))
    minor = major.scaleb(places)
    if minor != minor.to_integral_value():
        raise AmountError(_("That amount has too many decimal places."))
    return int(minor)
