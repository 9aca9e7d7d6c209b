"""The "Giving" menu in Wagtail's admin: contributions, recurring plans, donors, provider
events and preset amounts.

Lists are filterable (status, frequency, currency, provider, date), exportable as CSV/XLSX, and
show totals per currency for the filtered rows (net of refunds; recurring income per month for
plans). Financial records are read-only here: they change through provider events, and
through the two staff actions on their inspect pages — cancel a recurring plan (at the
provider, then here) and record a refund made outside the provider's webhooks — which go
through the ledger with the acting user. The inspect pages of contributions and plans show
their history as a timeline (every status change: from, to, when, which provider event or
which staff member).
Donors are searched by exact email (through the blind index); exporting a donor's data and
erasing it are admin actions, guarded by their own permissions. Every view that shows a
donor's decrypted details (inspect views, the donor list, export, erasure) writes an entry in
core's access log.
"""

from __future__ import annotations

import datetime as dt
import json

import django_filters
from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from wagtail import hooks
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet
from wagtail.admin.ui.components import Component
from wagtail.admin.ui.tables import Column
from wagtail.admin.views.generic import IndexView, InspectView
from wagtail.admin.viewsets.base import ViewSetGroup
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.permissions import register_permission_policy

from masthead.core import csvexport
from masthead.core.audit import AuditEntry, record_admin_view
from masthead.core.crypto import email_index

from . import giving, ledger
from .models import (
    AmountPreset,
    ChangeCause,
    Contribution,
    Donor,
    Frequency,
    PlanStatus,
    ProviderEvent,
    RecurringPlan,
)
from .money import AmountError, format_money, parse_major
from .privacy import erase_donor, export_donor
from .providers import ProviderError
from .reports import totals_by_currency

READ_ONLY_VIEWS = {"add", "edit", "delete", "copy", "history", "usage"}


class ViewOnlyPermissionPolicy(ModelPermissionPolicy):
    """Nobody adds, edits or deletes these in the admin, whatever their permissions say."""

    def user_has_permission(self, user, action):
        if action in ("add", "change", "delete"):
            return False
        return super().user_has_permission(user, action)

    def users_with_any_permission(self, actions):
        actions = [a for a in actions if a not in ("add", "change", "delete")]
        return super().users_with_any_permission(actions)


for _model in (Contribution, RecurringPlan, Donor, ProviderEvent):
    register_permission_policy(_model, ViewOnlyPermissionPolicy(_model), exact_class=True)


class ReadOnlyViewSet(ModelViewSet):
    """Index, inspect and export only: these records change through provider events."""

    inspect_view_enabled = True
    copy_view_enabled = False
    exclude_form_fields = []  # no add/edit views are routed; the form is never shown

    def get_urlpatterns(self):
        return [p for p in super().get_urlpatterns() if p.name not in READ_ONLY_VIEWS]

    def get_index_view_kwargs(self, **kwargs):
        return super().get_index_view_kwargs(add_url_name=None, edit_url_name=None, **kwargs)

    def get_inspect_view_kwargs(self, **kwargs):
        return super().get_inspect_view_kwargs(edit_url_name=None, delete_url_name=None, **kwargs)


class AuditedInspectView(InspectView):
    """An inspect view that shows a donor's decrypted details: each opening is logged."""

    audit_subject = "donor"

    def audit_subject_id(self) -> int | None:
        return self.object.donor_id

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        subject_id = self.audit_subject_id()
        if subject_id is not None:
            opened = f"{self.object._meta.verbose_name} #{self.object.pk}"
            record_admin_view(request, self.audit_subject, subject_id, detail=opened)
        return response


class RefundForm(forms.Form):
    refunded = forms.CharField(
        label=_("Total refunded so far"),
        max_length=20,
        help_text=_("In the contribution's currency, e.g. 5.00. Refunds only grow."),
    )
    note = forms.CharField(label=_("Note"), max_length=200, required=False)


class CancelPlanForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("Cancel at the payment provider: no further payments"), required=True
    )


class HistoryInspectView(AuditedInspectView):
    """Inspect a contribution or plan: its fields, its history as a timeline, and the staff
    action that applies to it (if the user may take it)."""

    template_name = "contributions/admin/inspect_history.html"

    def staff_action(self) -> dict | None:
        return None

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["history"] = self.object.history.select_related("event")
        context["staff_action"] = self.staff_action()
        return context


class ContributionInspectView(HistoryInspectView):
    def get_fields(self):
        # The reference (not editable, so not among the defaults) first: it is what the
        # donor's receipt and thank-you page quote.
        return ["reference", *[f for f in super().get_fields() if f != "reference"]]

    def staff_action(self):
        c = self.object
        allowed = self.request.user.has_perm("contributions.change_contribution")
        if not allowed or not c.paid_at or c.refunded_amount >= c.amount:
            return None
        return {
            "title": _("Record a refund"),
            "help": _(
                "For a refund made outside the provider's notifications (a bank transfer, a "
                "refund the provider did not report). It is written to the history with your "
                "name."
            ),
            "form": RefundForm(),
            "url": reverse("contributions_contribution:refund", args=[c.pk]),
            "button": _("Record refund"),
            "serious": False,
        }


class PlanInspectView(HistoryInspectView):
    def staff_action(self):
        plan = self.object
        if not plan.is_live or not self.request.user.has_perm(
            "contributions.change_recurringplan"
        ):
            return None
        return {
            "title": _("Cancel this plan"),
            "help": _(
                "Cancels the subscription at the payment provider, then here; the donor is "
                "told by email. Written to the history with your name."
            ),
            "form": CancelPlanForm(),
            "url": reverse("contributions_plan:cancel", args=[plan.pk]),
            "button": _("Cancel plan"),
            "serious": True,
        }


class DonorInspectView(AuditedInspectView):
    def audit_subject_id(self) -> int | None:
        return self.object.pk


class ProviderEventInspectView(AuditedInspectView):
    """The decrypted payload carries what the provider knows of the donor (email, name)."""

    audit_subject = "provider event"

    def audit_subject_id(self) -> int | None:
        return self.object.pk


class DonorIndexView(IndexView):
    """The donor list shows each row's email: one log entry per page view, with the count."""

    def get_context_data(self, *args, **kwargs):
        context = super().get_context_data(*args, **kwargs)
        shown = sum(1 for donor in context["object_list"] if not donor.erased_at)
        if shown:
            record_admin_view(self.request, "donor", count=shown)
        return context


class TotalsIndexView(IndexView):
    """An index that also shows totals per currency for the filtered rows."""

    results_template_name = "contributions/admin/index_results.html"

    def get_context_data(self, *args, **kwargs):
        context = super().get_context_data(*args, **kwargs)
        context["totals"] = self.totals(self.get_queryset())
        return context

    def totals(self, queryset):
        return totals_by_currency(queryset)


class ContributionIndexView(TotalsIndexView):
    pass


def recurring_totals(queryset) -> list[dict]:
    """Live plans per currency and what they bring in a month (annual plans count 1/12)."""
    rows: dict[str, dict] = {}
    for plan in queryset.filter(status__in=[PlanStatus.ACTIVE, PlanStatus.PAST_DUE]):
        monthly = plan.amount if plan.frequency == Frequency.MONTHLY else plan.amount / 12
        row = rows.setdefault(plan.currency, {"currency": plan.currency, "count": 0, "net": 0})
        row["count"] += 1
        row["net"] += monthly
    return [
        {
            **row,
            "net_label": format_money(round(row["net"]), row["currency"]) + " / month",
            "gross_label": "",
        }
        for row in sorted(rows.values(), key=lambda r: r["currency"])
    ]


class PlanIndexView(TotalsIndexView):
    def totals(self, queryset):
        return recurring_totals(queryset)


class AmountColumn(Column):
    def get_value(self, instance):
        return format_money(instance.amount, instance.currency)


class ContributionFilterSet(WagtailFilterSet):
    created_at = django_filters.DateFromToRangeFilter(label=_("Date"), widget=DateRangePickerWidget)

    class Meta:
        model = Contribution
        fields = ["status", "frequency", "currency", "provider", "is_renewal", "created_at"]


class ContributionViewSet(ReadOnlyViewSet):
    model = Contribution
    icon = "success"
    menu_label = _("Contributions")
    inspect_view_class = ContributionInspectView
    index_view_class = ContributionIndexView
    filterset_class = ContributionFilterSet
    list_display = [
        "reference",
        AmountColumn("amount", label=_("Amount")),
        "frequency",
        "status",
        "provider",
        "is_renewal",
        "source",
        "created_at",
    ]
    list_export = [
        "id",
        "reference",
        "created_at",
        "paid_at",
        "amount",
        "currency",
        "frequency",
        "status",
        "provider",
        "payment_ref",
        "refunded_amount",
        "dispute_status",
        "is_renewal",
        "plan_id",
        "donor_id",
        "export_source",
    ]
    # The admin's one CSV heading style (core.csvexport): "Title case", in any admin language.
    export_headings = csvexport.export_headings(
        list_export,
        amount="Amount (minor units)",
        refunded_amount="Refunded (minor units)",
        payment_ref="Payment reference",
        is_renewal="Renewal",
        export_source="Source",
    )
    export_filename = "contributions"

    def get_urlpatterns(self):
        return [
            *super().get_urlpatterns(),
            path("<int:pk>/refund/", require_POST(self.refund_view), name="refund"),
        ]

    def refund_view(self, request, pk):
        if not request.user.has_perm("contributions.change_contribution"):
            raise PermissionDenied
        contribution = get_object_or_404(Contribution, pk=pk)
        form = RefundForm(request.POST)
        back = redirect("contributions_contribution:inspect", pk)
        if not form.is_valid():
            messages.error(request, _("Enter the total refunded so far."))
            return back
        try:
            minor = parse_major(form.cleaned_data["refunded"], contribution.currency)
            ledger.record_refund(
                contribution, minor, actor=request.user, note=form.cleaned_data["note"]
            )
        except (AmountError, ValueError) as exc:
            messages.error(request, _("Nothing recorded: %(error)s") % {"error": exc})
            return back
        messages.success(request, _("The refund is recorded."))
        return back
    inspect_view_fields = [
        "id",
        "status",
        "frequency",
        "amount",
        "currency",
        "provider",
        "checkout_ref",
        "payment_ref",
        "is_renewal",
        "plan",
        "donor",
        "source",
        "created_at",
        "paid_at",
        "failed_at",
        "failure_reason",
        "attempts",
        "refunded_amount",
        "dispute_status",
        "receipt_sent_at",
        "is_public",
        "public_name",
        "message",
    ]


class PlanFilterSet(WagtailFilterSet):
    created_at = django_filters.DateFromToRangeFilter(
        label=_("Started"), widget=DateRangePickerWidget
    )

    class Meta:
        model = RecurringPlan
        fields = ["status", "frequency", "currency", "provider", "created_at"]


class RecurringPlanViewSet(ReadOnlyViewSet):
    model = RecurringPlan
    icon = "repeat"
    menu_label = _("Recurring plans")
    inspect_view_class = PlanInspectView
    index_view_class = PlanIndexView
    filterset_class = PlanFilterSet
    list_display = [
        "id",
        AmountColumn("amount", label=_("Amount")),
        "frequency",
        "status",
        "provider",
        "failed_attempts",
        "created_at",
    ]
    list_export = [
        "id",
        "created_at",
        "amount",
        "currency",
        "frequency",
        "status",
        "provider",
        "provider_ref",
        "failed_attempts",
        "last_paid_at",
        "cancelled_at",
        "donor_id",
    ]
    export_headings = csvexport.export_headings(
        list_export, amount="Amount (minor units)", provider_ref="Provider reference"
    )
    export_filename = "recurring-plans"

    def get_urlpatterns(self):
        return [
            *super().get_urlpatterns(),
            path("<int:pk>/cancel/", require_POST(self.cancel_view), name="cancel"),
        ]

    def cancel_view(self, request, pk):
        if not request.user.has_perm("contributions.change_recurringplan"):
            raise PermissionDenied
        plan = get_object_or_404(RecurringPlan, pk=pk)
        back = redirect("contributions_plan:inspect", pk)
        if not CancelPlanForm(request.POST).is_valid():
            messages.error(request, _("Tick the box to confirm the cancellation."))
            return back
        try:
            giving.cancel_plan(plan, reason=ChangeCause.STAFF, actor=request.user)
        except ProviderError as exc:
            messages.error(
                request,
                _("The payment provider could not cancel it (%(error)s). Try again later.")
                % {"error": exc},
            )
            return back
        messages.success(request, _("The plan is cancelled."))
        return back


class DonorFilterSet(WagtailFilterSet):
    email = django_filters.CharFilter(label=_("Exact email"), method="filter_email")

    def filter_email(self, queryset, name, value):
        return queryset.filter(email_index=email_index(value)) if value else queryset

    class Meta:
        model = Donor
        fields = ["email"]


class DonorActionsColumn(Column):
    def get_value(self, instance):
        if instance.erased_at:
            return _("erased")
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            reverse("contributions_donor:export", args=[instance.pk]),
            _("Export data"),
            reverse("contributions_donor:erase", args=[instance.pk]),
            _("Erase"),
        )


class DonorViewSet(ReadOnlyViewSet):
    model = Donor
    icon = "user"
    menu_label = _("Donors")
    url_namespace = "contributions_donor"
    index_view_class = DonorIndexView
    inspect_view_class = DonorInspectView
    filterset_class = DonorFilterSet
    list_display = ["id", "__str__", "created_at", DonorActionsColumn("actions", label="")]
    inspect_view_fields = ["id", "email", "name", "created_at", "erased_at"]

    def get_urlpatterns(self):
        return [
            *super().get_urlpatterns(),
            path("<int:pk>/export/", self.export_view, name="export"),
            path("<int:pk>/erase/", self.erase_view, name="erase"),
        ]

    def export_view(self, request, pk):
        if not request.user.has_perm("contributions.view_donor"):
            raise PermissionDenied
        donor = get_object_or_404(Donor, pk=pk)
        data = json.dumps(export_donor(donor), indent=2, ensure_ascii=False)
        record_admin_view(request, "donor", donor.pk, action=AuditEntry.Action.EXPORT)
        response = HttpResponse(data, content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="donor-{donor.pk}.json"'
        response["Cache-Control"] = "no-store"
        return response

    def erase_view(self, request, pk):
        if not request.user.has_perm("contributions.delete_donor"):
            raise PermissionDenied
        donor = get_object_or_404(Donor, pk=pk)
        if request.method == "POST":
            try:
                erase_donor(donor, actor=request.user)
            except ProviderError as exc:
                messages.error(
                    request,
                    _(
                        "Nothing was erased: a recurring plan could not be cancelled at the "
                        "payment provider (%(error)s). Try again later."
                    )
                    % {"error": exc},
                )
                return redirect("contributions_donor:index")
            record_admin_view(request, "donor", donor.pk, action=AuditEntry.Action.ERASE)
            messages.success(request, _("The donor's personal data is erased."))
            return redirect("contributions_donor:index")
        return TemplateResponse(
            request,
            "contributions/admin/confirm_erase.html",
            {"donor": donor, "plans": donor.plans.filter(status__in=["active", "past_due"])},
        )


class ProviderEventFilterSet(WagtailFilterSet):
    class Meta:
        model = ProviderEvent
        fields = ["provider", "status", "event_type"]


class ProviderEventViewSet(ReadOnlyViewSet):
    model = ProviderEvent
    icon = "resubmit"
    menu_label = _("Provider events")
    inspect_view_class = ProviderEventInspectView
    filterset_class = ProviderEventFilterSet
    list_display = ["event_id", "provider", "event_type", "status", "attempts", "received_at"]
    inspect_view_fields = [
        "provider",
        "event_id",
        "event_type",
        "status",
        "error",
        "attempts",
        "received_at",
        "processed_at",
        "payload",
    ]


class AmountPresetViewSet(ModelViewSet):
    model = AmountPreset
    icon = "list-ul"
    menu_label = _("Preset amounts")
    form_fields = ["frequency", "currency", "amount", "suggested", "sort_order"]
    list_display = ["__str__", "frequency", "currency", "amount", "suggested", "sort_order"]
    list_filter = ["frequency", "currency"]


class GivingGroup(ViewSetGroup):
    menu_label = _("Giving")
    menu_icon = "pick"
    menu_order = 250
    items = (
        ContributionViewSet("contributions_contribution"),
        RecurringPlanViewSet("contributions_plan"),
        DonorViewSet("contributions_donor"),
        ProviderEventViewSet("contributions_event"),
        AmountPresetViewSet("contributions_preset"),
    )


@hooks.register("register_admin_viewset")
def register_giving():
    return GivingGroup()


class GivingSummaryPanel(Component):
    """The dashboard's giving summary: the last 30 days and recurring income, per currency."""

    name = "giving_summary"
    template_name = "contributions/admin/summary_panel.html"
    order = 90

    def get_context_data(self, parent_context=None):
        since = timezone.now() - dt.timedelta(days=30)
        recent = Contribution.objects.filter(paid_at__gte=since)
        plans = RecurringPlan.objects.all()
        return {
            "recent": totals_by_currency(recent),
            "recurring": recurring_totals(plans),
            "past_due": plans.filter(status=PlanStatus.PAST_DUE).count(),
            "contributions_url": reverse("contributions_contribution:index"),
            "plans_url": reverse("contributions_plan:index"),
        }


@hooks.register("construct_homepage_panels")
def add_giving_summary(request, panels):
    if request.user.has_perm("contributions.view_contribution"):
        panels.append(GivingSummaryPanel())


from . import transfer_admin  # noqa: E402, F401  (Giving → Bank transfers)
