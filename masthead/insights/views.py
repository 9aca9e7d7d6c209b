"""The Insights page and its CSV downloads: check the permission, read the period, hand
over to :mod:`report`. Aggregates only, so no two-factor step (donor pages have one)."""

from __future__ import annotations

import csv

from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode

from . import report
from .aggregates import newsroom_zone
from .forms import PeriodForm

PERMISSION = "insights.view_insights"


def _forbidden(request) -> HttpResponse | None:
    """A 403 for staff without the permission (raising PermissionDenied in the admin would
    become Wagtail's redirect to the dashboard, which hides what is missing)."""
    if request.user.has_perm(PERMISSION):
        return None
    if request.path.endswith(".csv"):
        return HttpResponseForbidden("You may not view Insights.",
                                     content_type="text/plain; charset=utf-8")
    return render(request, "insights/forbidden.html", status=403)


def _period_or_errors(request):
    form = PeriodForm(request.GET)
    return form, (form.cleaned_data["period"] if form.is_valid() else None)


def index(request):
    if denied := _forbidden(request):
        return denied
    form, period = _period_or_errors(request)
    if period is None:
        return render(request, "insights/index.html", {"form": form}, status=400)
    built = report.build(period)
    query = urlencode({"start": period.label(period.first), "end": period.label(period.last)})
    for _title, tables in built.sections:
        for table in tables:
            table.csv_url = reverse("insights:csv", args=[table.slug]) + "?" + query
    return render(request, "insights/index.html", {
        "form": form, "report": built, "period": period, "zone": newsroom_zone(),
        "first_label": period.first.strftime("%B %Y"),
        "last_label": period.last.strftime("%B %Y"),
    })


def table_csv(request, slug: str):
    if denied := _forbidden(request):
        return denied
    form, period = _period_or_errors(request)
    if period is None:
        errors = "; ".join(e for errs in form.errors.values() for e in errs)
        return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
    table = report.build(period).table(slug)
    if table is None:
        raise Http404("No such table")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"insights-{slug}-{period.label(period.first)}-to-{period.label(period.last)}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    csv.writer(response).writerows(table.csv_rows())
    return response
