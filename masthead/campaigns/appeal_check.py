"""The appeal's amount, checked before the checkout so a reader who typed too little (or
something that is not an amount) is sent back to the appeal on the article, where the reason
is shown, instead of being taken off the article to the give page.

Each appeal carries its possible messages, hidden until their anchor is the page's target
(``#c1v2-error-minimum-usd``): no JavaScript, nothing per reader in the cached page.
"""

from __future__ import annotations

import re

from django.utils.http import url_has_allowed_host_and_scheme

from masthead.contributions.money import AmountError, parse_major, parse_minor
from masthead.contributions.options import money_config

PREFIX_RE = re.compile(r"^c\d+v\d+$")


def amount_problem(data) -> str | None:
    """The anchor suffix naming what is wrong with the posted amount, or None if the
    checkout would take it: ``minimum-usd``, ``maximum-usd`` or ``amount``."""
    config = money_config()
    code = (data.get("currency") or "").strip().upper()
    if code not in config.codes:
        return None  # the checkout explains a currency problem itself
    currency = config.currency(code)
    custom = (data.get("custom_amount") or "").strip()
    preset = (data.get("amount") or "").strip()
    try:
        minor = parse_major(custom, code) if custom else parse_minor(preset) if preset else None
    except (AmountError, ValueError):
        return "amount"
    if minor is None or minor <= 0:
        return "amount"
    if minor < currency.minimum:
        return f"minimum-{code.lower()}"
    if minor > currency.maximum:
        return f"maximum-{code.lower()}"
    return None


def return_anchor(value: str, host: str) -> tuple[str, str] | None:
    """``(path, appeal prefix)`` from the form's ``return_to`` ("/news/story/#c1v2") when it
    is a path on this host and names an appeal; else None."""
    path, _sep, prefix = (value or "").partition("#")
    if not path.startswith("/") or path.startswith("//") or not PREFIX_RE.match(prefix):
        return None
    if not url_has_allowed_host_and_scheme(path, allowed_hosts={host}):
        return None
    return path, prefix
