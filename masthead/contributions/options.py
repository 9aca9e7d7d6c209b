"""What a reader may give: frequencies, preset amounts, minimums, currencies, payment methods.

:func:`giving_options` is part of the contract with the campaigns app (the appeal renders its
amounts from it) and feeds the contribution page itself. Presets come from the
:class:`~masthead.contributions.models.AmountPreset` rows editors manage; where a frequency and
currency has none, the built-in defaults below apply.
"""

from __future__ import annotations

from typing import Any

from .models import AmountPreset, Frequency
from .money import currencies, format_money, maximum, minimum
from .providers import enabled_providers

# Major units; the same numbers in every currency (editors localise them in the admin).
DEFAULT_PRESETS: dict[str, tuple[list[int], int]] = {
    Frequency.ONCE: ([10, 25, 50, 100], 25),
    Frequency.MONTHLY: ([2, 5, 10, 20], 5),
    Frequency.ANNUAL: ([25, 50, 100, 200], 50),
}


def _presets(currency: str) -> dict[str, dict[str, Any]]:
    rows: dict[str, list[AmountPreset]] = {}
    for preset in AmountPreset.objects.filter(currency=currency):
        rows.setdefault(preset.frequency, []).append(preset)
    result = {}
    for frequency in Frequency.values:
        if frequency in rows:
            amounts = [p.amount for p in rows[frequency]]
            suggested = next((p.amount for p in rows[frequency] if p.suggested), amounts[0])
        else:
            defaults, default_ask = DEFAULT_PRESETS[frequency]
            amounts = [a * 100 for a in defaults]
            suggested = default_ask * 100
        amounts = [a for a in amounts if minimum(currency) <= a <= maximum()] or [minimum(currency)]
        if suggested not in amounts:
            suggested = amounts[0]
        result[frequency] = {
            "amounts": amounts,
            "labels": [format_money(a, currency) for a in amounts],
            "presets": [{"amount": a, "label": format_money(a, currency)} for a in amounts],
            "suggested": suggested,
        }
    return result


def giving_options(currency: str | None = None) -> dict[str, Any]:
    """Everything a giving form needs, for one currency (the default one when ``None``).

    Returns ``{"currency", "currencies", "frequencies": [{"value", "label", "amounts",
    "labels", "suggested"}], "suggested": {"frequency", "amount", "label"}, "minimum",
    "minimums", "minimum_label", "methods": [{"key", "name", "marks"}]}``; amounts are in minor
    units.
    """
    from django.conf import settings

    accepted = currencies()
    code = (currency or settings.MASTHEAD_DEFAULT_CURRENCY).upper()
    if code not in accepted:
        code = accepted[0]
    presets = _presets(code)
    frequencies = [
        {"value": value, "label": str(label), **presets[value]}
        for value, label in Frequency.choices
    ]
    monthly = presets[Frequency.MONTHLY]
    return {
        "currency": code,
        "currencies": accepted,
        "frequencies": frequencies,
        "suggested": {
            "frequency": Frequency.MONTHLY.value,
            "amount": monthly["suggested"],
            "label": format_money(minimum(code), code),
        },
        "minimum": minimum(code),
        "minimums": {c: minimum(c) for c in accepted},
        "minimum_label": format_money(minimum(code), code),
        "methods": [
            {"key": p.key, "name": str(p.display_name), "marks": [str(m) for m in p.marks]}
            for p in enabled_providers()
        ],
    }
