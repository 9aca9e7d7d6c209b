"""Per-variant results for editors: rates and a two-proportion z-test against the control.

The control is a campaign's first variant. For each other variant the test asks whether its
conversion rate (completed contributions per impression) differs from the control's by more
than chance would explain; below 30 conversions in total the answer is "too early".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .counters import flush_counters
from .models import Campaign, VariantCounter

MIN_CONVERSIONS = 30


@dataclass
class VariantResult:
    variant_id: int
    label: str
    impressions: int
    clicks: int
    dismissals: int
    conversions: int
    is_control: bool = False
    z: float | None = None
    p_value: float | None = None
    verdict: str = ""

    @property
    def click_rate(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def conversion_rate(self) -> float | None:
        return self.conversions / self.impressions if self.impressions else None

    @property
    def dismissal_rate(self) -> float | None:
        return self.dismissals / self.impressions if self.impressions else None

    @property
    def click_rate_pct(self) -> str:
        return _pct(self.click_rate)

    @property
    def conversion_rate_pct(self) -> str:
        return _pct(self.conversion_rate)


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.2f}%"


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float] | None:
    """z and two-sided p for H0: x1/n1 == x2/n2 (pooled); None when undefined."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return None
    z = (x2 / n2 - x1 / n1) / se
    p = math.erfc(abs(z) / math.sqrt(2))
    return z, p


def campaign_results(campaign: Campaign, *, flush: bool = True) -> list[VariantResult]:
    """The campaign's variants with their counts, rates and verdicts (control first)."""
    if flush:
        flush_counters()
    counters = {
        c.variant_id: c for c in VariantCounter.objects.filter(variant__campaign=campaign)
    }
    results = []
    for index, variant in enumerate(campaign.variants.order_by("sort_order", "id")):
        counter = counters.get(variant.pk)
        results.append(
            VariantResult(
                variant_id=variant.pk,
                label=variant.label,
                impressions=counter.impressions if counter else 0,
                clicks=counter.clicks if counter else 0,
                dismissals=counter.dismissals if counter else 0,
                conversions=counter.conversions if counter else 0,
                is_control=index == 0,
            )
        )
    if not results:
        return results
    control = results[0]
    control.verdict = "control"
    for result in results[1:]:
        test = two_proportion_z(
            control.conversions, control.impressions, result.conversions, result.impressions
        )
        if test is None:
            result.verdict = "not enough data"
            continue
        result.z, result.p_value = test
        if control.conversions + result.conversions < MIN_CONVERSIONS:
            result.verdict = "too early"
        elif result.p_value < 0.05:
            result.verdict = "better (95%)" if result.z > 0 else "worse (95%)"
        else:
            result.verdict = "no clear difference"
    return results
