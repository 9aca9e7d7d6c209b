"""The appeal's view of the contribution settings: currencies, preset amounts, the suggested
ask and the payment methods, read from ``masthead.contributions.options.giving_options()``.

This is the campaigns side of the contract with the contributions app. It degrades
gracefully: if that module is missing or answers in an unexpected shape, the appeal still
renders with sensible defaults that the checkout accepts (USD presets, the sandbox provider),
and the problem is logged rather than breaking every article page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

FREQUENCIES = ("once", "monthly", "annual")
FREQUENCY_LABELS = {"once": "Once", "monthly": "Monthly", "annual": "Annual"}
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}

FALLBACK_PRESETS = {
    "once": [1000, 2500, 5000, 10000],
    "monthly": [200, 500, 1000, 2000],
    "annual": [5000, 10000, 20000, 50000],
}


@dataclass
class GivingChoices:
    """What the appeal form offers, in minor units of ``currency``."""

    currency: str = "USD"
    currencies: list[str] = field(default_factory=lambda: ["USD"])
    # {currency: {frequency: [amounts in minor units]}}
    presets: dict[str, dict[str, list[int]]] = field(
        default_factory=lambda: {"USD": {k: list(v) for k, v in FALLBACK_PRESETS.items()}}
    )
    suggested_frequency: str = "monthly"
    suggested_amount: int = 200
    minimum: dict[str, int] = field(default_factory=lambda: {"USD": 100})
    # (provider key, display name, payment marks such as "Visa")
    methods: list[tuple[str, str, tuple[str, ...]]] = field(
        default_factory=lambda: [("sandbox", "Sandbox (no real money)", ())]
    )
    from_contributions: bool = False

    def presets_for(self, frequency: str, currency: str | None = None) -> list[int]:
        by_frequency = self.presets.get(currency or self.currency) or {}
        return list(by_frequency.get(frequency) or FALLBACK_PRESETS.get(frequency, []))


def _amounts(value: Any) -> list[int] | None:
    if isinstance(value, list | tuple) and value and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    ):
        return list(value)
    return None


def _frequency_presets(options: dict) -> tuple[dict[str, list[int]], dict[str, int]]:
    presets: dict[str, list[int]] = {}
    suggested: dict[str, int] = {}
    for spec in options.get("frequencies") or []:
        key = spec.get("value") if isinstance(spec, dict) else None
        if key not in FREQUENCIES:
            continue
        amounts = _amounts(spec.get("amounts"))
        if amounts:
            presets[key] = amounts
            if spec.get("suggested") in amounts:
                suggested[key] = spec["suggested"]
    for key in FREQUENCIES:
        presets.setdefault(key, list(FALLBACK_PRESETS[key]))
    return presets, suggested


def normalise(options: dict, others: dict[str, dict] | None = None) -> GivingChoices:
    """Read ``giving_options()``'s answer for the default currency (and, in ``others``, its
    answers for the other currencies) into the appeal's terms."""
    choices = GivingChoices(from_contributions=True)
    choices.currency = str(options.get("currency") or "USD").upper()
    currencies = [str(c).upper() for c in options.get("currencies") or []] or [choices.currency]
    if choices.currency not in currencies:
        currencies.insert(0, choices.currency)
    choices.currencies = currencies
    presets, suggested_by_frequency = _frequency_presets(options)
    choices.presets = {choices.currency: presets}
    for currency, other in (others or {}).items():
        choices.presets[currency.upper()] = _frequency_presets(other)[0]
    ask = options.get("suggested") or {}
    if ask.get("frequency") in FREQUENCIES:
        choices.suggested_frequency = ask["frequency"]
    amount = ask.get("amount") or suggested_by_frequency.get(choices.suggested_frequency)
    if isinstance(amount, int) and amount > 0:
        choices.suggested_amount = amount
    minimums = options.get("minimums")
    if isinstance(minimums, dict):
        choices.minimum = {str(k).upper(): int(v) for k, v in minimums.items()}
    methods = []
    for method in options.get("methods") or []:
        if isinstance(method, dict) and method.get("key"):
            key = str(method["key"])
            marks = tuple(str(m) for m in method.get("marks") or ())
            methods.append((key, str(method.get("name") or key), marks))
    if methods:
        choices.methods = methods
    return choices


def giving_choices(currency: str | None = None) -> GivingChoices:
    """The current giving options, or the built-in defaults if contributions can't say."""
    try:
        from masthead.contributions.options import giving_options
    except ImportError:
        return GivingChoices()
    try:
        options = giving_options(currency)
        others = {
            str(code): giving_options(str(code))
            for code in options.get("currencies") or []
            if str(code).upper() != str(options.get("currency")).upper()
        }
        return normalise(options, others)
    except Exception:
        log.exception("giving_options() failed or changed shape; the appeal uses defaults")
        return GivingChoices()


def format_amount(minor: int, currency: str) -> str:
    """``200, "USD"`` → ``$2``; ``250`` → ``$2.50``."""
    symbol = CURRENCY_SYMBOLS.get(currency, "")
    major, cents = divmod(int(minor), 100)
    text = f"{major:,}" if not cents else f"{major:,}.{cents:02d}"
    return f"{symbol}{text}" if symbol else f"{text} {currency}"
