"""The period selector: whole months, from and to (``YYYY-MM``), last 12 months by default."""

from __future__ import annotations

import datetime as dt
import re

from django import forms

from .aggregates import MAX_MONTHS, Period, newsroom_zone

MONTH_RE = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")


class MonthField(forms.CharField):
    widget = forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM",
                                    "pattern": r"\d{4}-\d{2}", "inputmode": "numeric"})

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        match = MONTH_RE.match(value)
        if not match or not (1 <= int(match[2]) <= 12) or not (2000 <= int(match[1]) <= 2100):
            raise forms.ValidationError("Enter a month as YYYY-MM, e.g. 2026-03.")
        return dt.date(int(match[1]), int(match[2]), 1)


class PeriodForm(forms.Form):
    start = MonthField(label="From", required=False)
    end = MonthField(label="To", required=False)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        current = Period.last_months(1).last
        first, last = data.get("start"), data.get("end")
        if first is None and last is None:
            last = current
        if first is None:
            first = _months_before(last, 11)
        if last is None:
            last = max(first, min(_months_before(first, -11), current))
        if first > last:
            raise forms.ValidationError("“From” must not be after “To”.")
        n = (last.year - first.year) * 12 + last.month - first.month + 1
        if n > MAX_MONTHS:
            raise forms.ValidationError(f"Choose at most {MAX_MONTHS} months.")
        data["period"] = Period(first, last, newsroom_zone())
        return data


def _months_before(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 - n
    return dt.date(index // 12, index % 12 + 1, 1)
