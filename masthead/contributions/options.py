"""What a reader may give: currencies (with their minor units), minimums, frequencies, preset
amounts, the suggested ask and the payment methods — one typed source for the give page, the
give form's validation and the campaigns app (banner links, the appeal's amounts).

Two layers:

- :func:`money_config` reads the settings (``MASTHEAD_CURRENCIES``,
  ``MASTHEAD_DEFAULT_CURRENCY``, ``MASTHEAD_MINIMUM_AMOUNTS``, ``MASTHEAD_MAXIMUM_AMOUNT``)
  into a :class:`MoneyConfig`. It never guesses: :func:`config_problems` lists what is wrong
  and :mod:`masthead.contributions.checks` reports it at start-up (``contributions.E010`` …).
- :func:`load_giving_options` adds the preset amounts (the
  :class:`~masthead.contributions.models.AmountPreset` rows editors manage, else the
  built-in defaults below, scaled by each currency's exponent) and the enabled payment
  methods: a :class:`GivingOptions`, read with one query.

:func:`giving_options` is the same answer for one currency as plain data (the give page's
template context, and part of the contract with campaigns).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .models import AmountPreset, Frequency
from .money import EXPONENTS, SYMBOLS, format_money, to_major_text

# Major units; the same numbers in every currency (editors localise them in the admin).
DEFAULT_PRESETS: dict[str, tuple[list[int], int]] = {
    Frequency.ONCE: ([10, 25, 50, 100], 25),
    Frequency.MONTHLY: ([2, 5, 10, 20], 5),
    Frequency.ANNUAL: ([25, 50, 100, 200], 50),
}
# The frequency the suggested ask names ("monthly, from just $2").
SUGGESTED_FREQUENCY = Frequency.MONTHLY.value


@dataclass(frozen=True)
class Currency:
    """An accepted currency: ISO code, minor-unit exponent and the limits, in minor units."""

    code: str
    exponent: int
    minimum: int
    maximum: int

    @property
    def symbol(self) -> str:
        return SYMBOLS.get(self.code, "")

    def format(self, amount: int) -> str:
        return format_money(amount, self.code)

    def major_text(self, amount: int) -> str:
        return to_major_text(amount, self.code)

    def from_major(self, major: int) -> int:
        """Whole major units (``5``) → minor units (500 cents, ¥5, 5000 fils)."""
        return major * 10**self.exponent

    def accepts(self, amount: int) -> bool:
        return self.minimum <= amount <= self.maximum


@dataclass(frozen=True)
class MoneyConfig:
    """The accepted currencies (configured order) and the default one."""

    currencies: tuple[Currency, ...]
    default: str
    maximum: int

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.currencies)

    def currency(self, code: str | None = None) -> Currency:
        """The accepted currency ``code`` (the default one for ``None``); ``KeyError`` else."""
        wanted = (self.default if code is None else code).upper()
        for currency in self.currencies:
            if currency.code == wanted:
                return currency
        raise KeyError(wanted)


@dataclass(frozen=True)
class Presets:
    """The preset amounts (minor units) offered for one frequency in one currency."""

    frequency: str
    amounts: tuple[int, ...]
    suggested: int


@dataclass(frozen=True)
class Method:
    """An enabled payment provider as readers see it."""

    key: str
    name: str
    marks: tuple[str, ...]
    note: str = ""  # what the method costs the reader in privacy (methods.py)


@dataclass(frozen=True)
class CurrencyOptions:
    """One currency with its presets per frequency."""

    currency: Currency
    presets: Mapping[str, Presets]

    def amounts(self, frequency: str) -> list[int]:
        return list(self.presets[frequency].amounts)

    @property
    def suggested(self) -> Presets:
        return self.presets[SUGGESTED_FREQUENCY]


@dataclass(frozen=True)
class GivingOptions:
    """Everything a giving form offers: currencies (default first is *not* implied — see
    ``default``), frequencies with their labels, presets, the suggested ask, methods."""

    config: MoneyConfig
    currencies: tuple[CurrencyOptions, ...]
    methods: tuple[Method, ...]

    @property
    def default(self) -> CurrencyOptions:
        return self.get(self.config.default)

    @property
    def codes(self) -> list[str]:
        return list(self.config.codes)

    @property
    def frequencies(self) -> list[tuple[str, str]]:
        """``(value, translated label)`` in display order."""
        return [(value, str(label)) for value, label in Frequency.choices]

    @property
    def suggested_frequency(self) -> str:
        return SUGGESTED_FREQUENCY

    def get(self, code: str | None = None) -> CurrencyOptions:
        wanted = self.config.currency(code).code
        return next(c for c in self.currencies if c.currency.code == wanted)


# --- configuration -------------------------------------------------------------------------


def _codes() -> list[str]:
    return [str(c).strip().upper() for c in settings.MASTHEAD_CURRENCIES if str(c).strip()]


def _minimums() -> dict[str, Any]:
    return {str(k).strip().upper(): v for k, v in settings.MASTHEAD_MINIMUM_AMOUNTS.items()}


def config_problems() -> list[tuple[str, str]]:
    """What is wrong with the money settings, as ``(check id, sentence)`` pairs."""
    problems: list[tuple[str, str]] = []
    codes = _codes()
    minimums = _minimums()
    maximum = settings.MASTHEAD_MAXIMUM_AMOUNT
    if not codes:
        problems.append(("contributions.E010", "MASTHEAD_CURRENCIES is empty."))
    for code in codes:
        if code not in EXPONENTS:
            problems.append(
                (
                    "contributions.E011",
                    f"MASTHEAD_CURRENCIES lists {code!r}, which is not an ISO 4217 currency "
                    "whose minor unit Masthead knows.",
                )
            )
    if len(set(codes)) != len(codes):
        problems.append(("contributions.E012", "MASTHEAD_CURRENCIES lists a currency twice."))
    default = str(settings.MASTHEAD_DEFAULT_CURRENCY or "").strip().upper()
    if codes and default not in codes:
        problems.append(
            (
                "contributions.E013",
                f"MASTHEAD_DEFAULT_CURRENCY {default!r} is not in MASTHEAD_CURRENCIES "
                f"({', '.join(codes)}).",
            )
        )
    for code in minimums:
        if code not in codes:
            problems.append(
                (
                    "contributions.E014",
                    f"MASTHEAD_MINIMUM_AMOUNTS sets a minimum for {code!r}, which is not in "
                    "MASTHEAD_CURRENCIES.",
                )
            )
    if not _positive_int(maximum):
        problems.append(
            (
                "contributions.E016",
                f"MASTHEAD_MAXIMUM_AMOUNT must be a whole number of minor units above 0, "
                f"not {maximum!r}.",
            )
        )
    for code in codes:
        if code not in minimums:
            problems.append(
                (
                    "contributions.E015",
                    f"MASTHEAD_MINIMUM_AMOUNTS has no minimum for {code!r} (minor units, e.g. "
                    f"'{code}:{2 * 10 ** max(EXPONENTS.get(code, 2), 2)}').",
                )
            )
        elif not _positive_int(minimums[code]):
            problems.append(
                (
                    "contributions.E016",
                    f"The minimum for {code!r} must be a whole number of minor units above 0, "
                    f"not {minimums[code]!r}.",
                )
            )
        elif _positive_int(maximum) and minimums[code] > maximum:
            problems.append(
                (
                    "contributions.E016",
                    f"The minimum for {code!r} ({minimums[code]}) is above "
                    f"MASTHEAD_MAXIMUM_AMOUNT ({maximum}).",
                )
            )
    return problems


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def money_config() -> MoneyConfig:
    """The accepted currencies and their limits, from the settings.

    Raises :class:`~django.core.exceptions.ImproperlyConfigured` for a configuration the
    system checks refuse (they report it at start-up; this is for code run without them).
    """
    problems = config_problems()
    if problems:
        raise ImproperlyConfigured("; ".join(f"{pid}: {text}" for pid, text in problems))
    minimums = _minimums()
    maximum = settings.MASTHEAD_MAXIMUM_AMOUNT
    return MoneyConfig(
        currencies=tuple(
            Currency(code=code, exponent=EXPONENTS[code], minimum=minimums[code], maximum=maximum)
            for code in _codes()
        ),
        default=str(settings.MASTHEAD_DEFAULT_CURRENCY).strip().upper(),
        maximum=maximum,
    )


# --- presets -------------------------------------------------------------------------------


def default_presets(currency: Currency) -> dict[str, tuple[list[int], int]]:
    """The built-in presets for ``currency``, in its minor units: ``{frequency: (amounts,
    suggested)}``."""
    return {
        frequency: ([currency.from_major(a) for a in amounts], currency.from_major(suggested))
        for frequency, (amounts, suggested) in DEFAULT_PRESETS.items()
    }


def preset_rows(codes) -> dict[tuple[str, str], list[AmountPreset]]:
    """The editors' preset rows for ``codes``, by ``(currency, frequency)``, in one query."""
    rows: dict[tuple[str, str], list[AmountPreset]] = {}
    for preset in AmountPreset.objects.filter(currency__in=list(codes)):
        rows.setdefault((preset.currency, preset.frequency), []).append(preset)
    return rows


def configured_presets(
    currency: Currency, rows: dict[tuple[str, str], list[AmountPreset]]
) -> dict[str, tuple[list[int], int]]:
    """Presets as configured (rows, else the built-in defaults), before any range check."""
    defaults = default_presets(currency)
    result = {}
    for frequency in Frequency.values:
        own = rows.get((currency.code, frequency))
        if own:
            amounts = [p.amount for p in own]
            suggested = next((p.amount for p in own if p.suggested), amounts[0])
            result[frequency] = (amounts, suggested)
        else:
            result[frequency] = defaults[frequency]
    return result


def _presets(currency: Currency, rows) -> dict[str, Presets]:
    result = {}
    for frequency, (amounts, suggested) in configured_presets(currency, rows).items():
        # The system check (contributions.E017) reports presets out of range; a reader is
        # never offered an amount the checkout would refuse.
        usable = tuple(a for a in amounts if currency.accepts(a)) or (currency.minimum,)
        result[frequency] = Presets(
            frequency=frequency,
            amounts=usable,
            suggested=suggested if suggested in usable else usable[0],
        )
    return result


def _methods() -> tuple[Method, ...]:
    from .methods import describe
    from .providers import enabled_providers

    return tuple(Method(p.key, *describe(p)) for p in enabled_providers())


def load_giving_options(codes: list[str] | None = None) -> GivingOptions:
    """Every accepted currency (or only ``codes``, which must include the default) with its
    presets, and the enabled payment methods; one query."""
    config = money_config()
    wanted = [config.currency(c) for c in codes] if codes else list(config.currencies)
    rows = preset_rows(c.code for c in wanted)
    return GivingOptions(
        config=config,
        currencies=tuple(CurrencyOptions(c, _presets(c, rows)) for c in wanted),
        methods=_methods(),
    )


def giving_options(currency: str | None = None) -> dict[str, Any]:
    """:func:`load_giving_options` for one currency (the default one when ``None`` or not
    accepted) as plain data, for templates.

    Returns ``{"currency", "currencies", "exponent", "frequencies": [{"value", "label",
    "amounts", "labels", "presets": [{"amount", "label"}], "suggested"}], "suggested":
    {"frequency", "amount", "label"}, "minimum", "minimums", "minimum_label", "methods":
    [{"key", "name", "marks"}]}``; amounts are in minor units.
    """
    config = money_config()
    code = (currency or config.default).upper()
    if code not in config.codes:
        code = config.default
    options = load_giving_options([code])
    chosen = options.get(code)
    money = chosen.currency
    frequencies = []
    for value, label in options.frequencies:
        presets = chosen.presets[value]
        labels = [money.format(a) for a in presets.amounts]
        frequencies.append(
            {
                "value": value,
                "label": label,
                "amounts": list(presets.amounts),
                "labels": labels,
                "presets": [
                    {"amount": a, "label": t} for a, t in zip(presets.amounts, labels, strict=True)
                ],
                "suggested": presets.suggested,
            }
        )
    return {
        "currency": code,
        "currencies": list(config.codes),
        "exponent": money.exponent,
        "frequencies": frequencies,
        "suggested": {
            "frequency": options.suggested_frequency,
            "amount": chosen.suggested.suggested,
            "label": money.format(money.minimum),
        },
        "minimum": money.minimum,
        "minimums": {c.code: c.minimum for c in config.currencies},
        "minimum_label": money.format(money.minimum),
        "methods": [
            {"key": m.key, "name": m.name, "marks": list(m.marks), "note": m.note}
            for m in options.methods
        ],
    }
