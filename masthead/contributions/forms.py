"""Validation of what readers post: the giving form, the manage-link request, plan changes.

Every rule is server-side (the browser's ``min``/``pattern`` attributes are a courtesy); each
error is a sentence a reader understands.
"""

from __future__ import annotations

import re
import unicodedata

from django import forms
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import RECURRING, Frequency
from .money import AmountError, parse_major, parse_minor, validate_amount, validate_currency

SOURCE_RE = re.compile(r"^[A-Za-z0-9:_-]{0,100}$")


def clean_text(value: str) -> str:
    """Drop control and format characters (no header or bidi tricks), collapse whitespace."""
    kept = "".join(ch for ch in value if ch in "\n " or unicodedata.category(ch)[0] not in ("C",))
    return " ".join(kept.split())


SUBMISSION_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


class GiveForm(forms.Form):
    frequency = forms.CharField(required=False)
    amount = forms.CharField(required=False)
    custom_amount = forms.CharField(required=False, max_length=30)
    currency = forms.CharField(required=False, max_length=10)
    provider = forms.CharField(required=False, max_length=30)
    name = forms.CharField(required=False, max_length=80)
    public = forms.BooleanField(required=False)
    message = forms.CharField(required=False, max_length=500)
    source = forms.CharField(required=False, max_length=100)
    # A one-time key the page's script sets on submit: a double click is one checkout.
    submission = forms.CharField(required=False)

    def clean_submission(self) -> str:
        value = (self.cleaned_data.get("submission") or "").strip()
        return value if SUBMISSION_RE.fullmatch(value) else ""

    def clean_frequency(self) -> str:
        value = (self.cleaned_data.get("frequency") or "").strip().lower()
        if value not in Frequency.values:
            raise forms.ValidationError(_("Choose how often to give: once, monthly or annual."))
        return value

    def clean_currency(self) -> str:
        try:
            return validate_currency(self.cleaned_data.get("currency") or "")
        except AmountError as exc:
            raise forms.ValidationError(str(exc))

    def clean_provider(self) -> str:
        value = (self.cleaned_data.get("provider") or "").strip().lower()
        configured = list(settings.MASTHEAD_PAYMENT_PROVIDERS)
        if not value and len(configured) == 1:
            return configured[0]
        if value not in configured:
            raise forms.ValidationError(_("Choose a payment method."))
        return value

    def clean_name(self) -> str:
        return clean_text(self.cleaned_data.get("name") or "")

    def clean_message(self) -> str:
        return clean_text(self.cleaned_data.get("message") or "")

    def clean_source(self) -> str:
        value = (self.cleaned_data.get("source") or "").strip()
        if not SOURCE_RE.match(value):
            raise forms.ValidationError(_("Invalid source."))
        return value

    def clean(self):
        data = super().clean()
        currency = data.get("currency")
        if not currency:
            return data
        custom = (data.get("custom_amount") or "").strip()
        preset = (data.get("amount") or "").strip()
        try:
            if custom:
                minor = parse_major(custom, currency)
            elif preset:
                minor = parse_minor(preset)
            else:
                raise AmountError(_("Choose an amount or enter your own."))
            data["amount_minor"] = validate_amount(minor, currency)
        except AmountError as exc:
            self.add_error("custom_amount" if custom or not preset else "amount", str(exc))
        return data


class ManageLinkForm(forms.Form):
    email = forms.EmailField(
        max_length=254,
        label=gettext_lazy("Email address you gave with"),
        error_messages={"invalid": gettext_lazy("Enter a valid email address.")},
    )


class SandboxPayForm(forms.Form):
    email = forms.EmailField(
        max_length=254,
        label=gettext_lazy("Email for your receipt"),
        error_messages={"invalid": gettext_lazy("Enter a valid email address.")},
    )
    name = forms.CharField(required=False, max_length=80, label=gettext_lazy("Name (optional)"))

    def clean_name(self) -> str:
        return clean_text(self.cleaned_data.get("name") or "")


class ChangePlanForm(forms.Form):
    plan = forms.IntegerField(min_value=1)
    frequency = forms.ChoiceField(choices=[(f.value, f.label) for f in RECURRING])
    amount = forms.CharField(max_length=30)

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency

    def clean_amount(self) -> int:
        try:
            return validate_amount(
                parse_major(self.cleaned_data.get("amount") or "", self.currency), self.currency
            )
        except AmountError as exc:
            raise forms.ValidationError(str(exc))
