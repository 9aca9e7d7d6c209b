"""Admin pages for bank transfers (Giving → Bank transfers): record one transfer that
arrived, or import a bank statement's CSV, and see what matched and what needs a look.

Thin views over :mod:`masthead.contributions.statements`; recording needs the right to
change contributions (and so two-factor authentication, like every page that shows donors'
payments). Registered from ``wagtail_hooks.py``.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.menu import MenuItem

from . import statements
from .money import currencies

PERMISSION = "contributions.change_contribution"
MAX_UPLOAD = 5 * 1024 * 1024


class TransferForm(forms.Form):
    reference = forms.CharField(label=_("Reference"), max_length=200)
    amount = forms.CharField(label=_("Amount"), max_length=40, help_text=_("e.g. 25.00"))
    currency = forms.ChoiceField(label=_("Currency"))
    date = forms.DateField(label=_("Date received"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = [(c, c) for c in currencies()]


class StatementForm(forms.Form):
    statement = forms.FileField(
        label=_("Bank statement (CSV)"),
        help_text=_("Columns: reference, amount, currency, date (YYYY-MM-DD)."),
    )

    def clean_statement(self):
        upload = self.cleaned_data["statement"]
        if upload.size > MAX_UPLOAD:
            raise forms.ValidationError(_("The file is larger than 5 MB: split it."))
        return upload


def transfers_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    one = TransferForm(prefix="one")
    upload = StatementForm()
    report = None
    recorded_line = None
    error = ""
    status = 200
    if request.method == "POST" and request.POST.get("action") == "one":
        one = TransferForm(request.POST, prefix="one")
        if one.is_valid():
            data = one.cleaned_data
            recorded_line = statements.record_transfer(
                data["reference"],
                data["amount"],
                data["currency"],
                data["date"].isoformat(),
                actor=request.user,
            )
            if recorded_line.outcome == statements.RECORDED:
                one = TransferForm(prefix="one")
        else:
            status = 400
    elif request.method == "POST" and request.POST.get("action") == "statement":
        upload = StatementForm(request.POST, request.FILES)
        if upload.is_valid():
            try:
                report = statements.import_statement(
                    upload.cleaned_data["statement"].read(), actor=request.user
                )
            except statements.StatementError as exc:
                error = str(exc)
                status = 400
        else:
            status = 400
    context = {
        "one": one,
        "upload": upload,
        "report": report,
        "line": recorded_line,
        "error": error,
        "outcomes": [
            statements.RECORDED,
            statements.ALREADY,
            statements.MISMATCHED,
            statements.UNMATCHED,
            statements.UNREADABLE,
        ],
    }
    return render(request, "contributions/admin/transfers.html", context, status=status)


@hooks.register("register_admin_urls")
def register_transfer_urls():
    return [path("giving/transfers/", transfers_view, name="contributions_transfers")]


class TransfersMenuItem(MenuItem):
    def is_shown(self, request):
        return request.user.has_perm(PERMISSION)


@hooks.register("register_admin_menu_item")
def register_transfers_menu_item():
    return TransfersMenuItem(
        _("Bank transfers"),
        reverse("contributions_transfers"),
        icon_name="doc-full",
        order=260,
    )
