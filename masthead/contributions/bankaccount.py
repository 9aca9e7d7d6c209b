"""The newsroom's bank account, as readers who pay by bank transfer see it.

Staff edit it in the admin (Settings → Bank account for transfers); the pledge page, the
pledge email and the monthly reminders show it beside the donor's reference. The model is
registered with the app from ``models.py``.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel
from wagtail.contrib.settings.models import BaseGenericSetting, register_setting


@register_setting(icon="doc-full")
class BankAccountSettings(BaseGenericSetting):
    account_holder = models.CharField(
        _("account holder"), max_length=140, blank=True, help_text="The name on the account."
    )
    iban = models.CharField("IBAN", max_length=42, blank=True)
    swift = models.CharField(_("SWIFT / BIC"), max_length=11, blank=True)
    bank_name = models.CharField(_("bank"), max_length=140, blank=True)
    bank_address = models.CharField(_("bank address"), max_length=200, blank=True)
    other_details = models.TextField(
        _("other details"),
        blank=True,
        help_text="Anything else a sender needs (account number and sort code, routing "
        "number, a correspondent bank). Shown as written.",
    )

    panels = [
        FieldPanel("account_holder"),
        FieldPanel("iban"),
        FieldPanel("swift"),
        FieldPanel("bank_name"),
        FieldPanel("bank_address"),
        FieldPanel("other_details"),
    ]

    class Meta:
        app_label = "contributions"
        verbose_name = "Bank account for transfers"

    def rows(self) -> list[tuple[str, str]]:
        """``(label, value)`` pairs that are filled in, in display order."""
        fields = [
            (_("Account holder"), self.account_holder),
            ("IBAN", " ".join(self.iban[i : i + 4] for i in range(0, len(self.iban), 4))),
            (_("SWIFT / BIC"), self.swift),
            (_("Bank"), self.bank_name),
            (_("Bank address"), self.bank_address),
            (_("Other details"), self.other_details),
        ]
        return [(str(label), value) for label, value in fields if value]

    @property
    def is_complete(self) -> bool:
        return bool(self.account_holder and (self.iban or self.other_details))
