"""The sign-up form: address checks with a clear message for each way an address can fail."""

from __future__ import annotations

from django import forms
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from .models import Newsletter

MAX_EMAIL = 254


def clean_address(value: str) -> str:
    """Validate and normalise an address (lower case, IDN domain in ASCII) or raise."""
    value = (value or "").strip()
    if not value:
        raise forms.ValidationError(_("Please enter your email address."), code="required")
    if len(value) > MAX_EMAIL:
        raise forms.ValidationError(
            _("That address is too long: an email address has at most %(max)d characters."),
            code="too_long",
            params={"max": MAX_EMAIL},
        )
    if any(ch in value for ch in "\r\n\t\x00"):
        raise forms.ValidationError(
            _("An email address cannot contain line breaks or tabs."), code="control"
        )
    if value.count("@") != 1:
        raise forms.ValidationError(
            _("An email address has one @ between a name and a domain, like name@example.org."),
            code="at_sign",
        )
    local, domain = value.rsplit("@", 1)
    if len(local) > 64:
        raise forms.ValidationError(
            _("The part before the @ is too long (at most 64 characters)."), code="local_long"
        )
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise forms.ValidationError(
            _("The part after the @ is not a valid domain name."), code="domain"
        )
    address = f"{local}@{domain}"
    try:
        validate_email(address)
    except forms.ValidationError:
        raise forms.ValidationError(
            _("This does not look like an email address: check it for typos."), code="invalid"
        )
    try:
        address.encode("ascii")
    except UnicodeEncodeError:
        raise forms.ValidationError(
            _("Please use an address made of Latin letters, digits and punctuation."),
            code="non_ascii",
        )
    return local + "@" + domain.lower()


class SignupForm(forms.Form):
    email = forms.CharField(max_length=1000, required=False, label=_("Your email address"))
    name = forms.CharField(max_length=100, required=False, label=_("Your first name (optional)"))
    newsletter = forms.MultipleChoiceField(required=False, choices=())
    # The honeypot: hidden from people by CSS, filled in by naive bots.
    website = forms.CharField(required=False, max_length=1000)
    source = forms.CharField(required=False, max_length=1000)

    def __init__(self, *args, language: str = "en", **kwargs):
        super().__init__(*args, **kwargs)
        self.language = language
        self.newsletters = list(Newsletter.objects.active())
        self.fields["newsletter"].choices = [(n.slug, n.name) for n in self.newsletters]
        self.fields["newsletter"].error_messages["invalid_choice"] = _(
            "Please choose a newsletter from the list."
        )

    def clean_email(self) -> str:
        return clean_address(self.cleaned_data.get("email", ""))

    def clean_name(self) -> str:
        return " ".join(self.cleaned_data.get("name", "").split())

    def clean_source(self) -> str:
        source = self.cleaned_data.get("source", "")
        return "".join(ch for ch in source if ch.isalnum() or ch in ":/_-.")[:100]

    def clean(self):
        data = super().clean()
        slugs = data.get("newsletter") or []
        chosen = [n for n in self.newsletters if n.slug in slugs]
        if not slugs:
            default = Newsletter.objects.default_for(self.language)
            chosen = [default] if default else []
        if not chosen and "newsletter" not in self.errors:
            self.add_error("newsletter", _("There is no newsletter to subscribe to yet."))
        data["newsletters"] = chosen
        return data

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get("website"))
