"""Editor views in the Wagtail admin: an edition's send page (test send, schedule, pause and
resume), the confirmation that "Send now" asks for (naming how many readers will get it; only
its POST sends) and the live progress of a delivery as a small JSON status."""

from __future__ import annotations

import datetime as dt
import re

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from .delivery import (
    DeliveryError,
    delivery_pause,
    delivery_progress,
    delivery_resume,
    delivery_start,
    edition_schedule,
    edition_unschedule,
    send_test,
)
from .forms import clean_address
from .models import Delivery, Edition

MAX_TEST_ADDRESSES = 10


class TestSendForm(forms.Form):
    addresses = forms.CharField(
        label="Send a test to",
        help_text=f"Up to {MAX_TEST_ADDRESSES} addresses, separated by commas or spaces.",
        widget=forms.TextInput(attrs={"placeholder": "editor@example.org, me@example.org"}),
        max_length=3000,
    )

    def clean_addresses(self) -> list[str]:
        raw = [a for a in re.split(r"[\s,;]+", self.cleaned_data["addresses"]) if a]
        if not raw:
            raise forms.ValidationError("Enter at least one address.")
        if len(raw) > MAX_TEST_ADDRESSES:
            raise forms.ValidationError(f"At most {MAX_TEST_ADDRESSES} addresses at once.")
        cleaned, errors = [], []
        for address in raw:
            try:
                cleaned.append(clean_address(address))
            except forms.ValidationError as exc:
                errors.append(f"{address[:80]}: {' '.join(exc.messages)}")
        if errors:
            raise forms.ValidationError(errors)
        return cleaned


class ScheduleForm(forms.Form):
    send_at = forms.DateTimeField(
        label="Send at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )

    def __init__(self, *args, zone, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone

    def clean_send_at(self) -> dt.datetime:
        value = self.cleaned_data["send_at"]
        local = timezone.make_naive(value, timezone.get_current_timezone()) if timezone.is_aware(
            value
        ) else value
        aware = local.replace(tzinfo=self.zone)
        if aware < timezone.now() - dt.timedelta(minutes=1):
            raise forms.ValidationError("That time has passed: choose a time in the future.")
        return aware


@permission_required("newsletters.change_edition", raise_exception=True)
def send_page(request, pk):
    edition = get_object_or_404(Edition.objects.select_related("newsletter"), pk=pk)
    zone = edition.newsletter.zone
    default_time = edition.scheduled_at or edition.newsletter.next_send_time()
    test_form = TestSendForm()
    schedule_form = ScheduleForm(
        zone=zone,
        initial={"send_at": timezone.localtime(default_time, zone).strftime("%Y-%m-%dT%H:%M")},
    )
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        here = reverse("newsletters_admin:send", args=[edition.pk])
        try:
            if action == "test":
                test_form = TestSendForm(request.POST)
                if test_form.is_valid():
                    count = send_test(edition, test_form.cleaned_data["addresses"])
                    messages.success(request, f"Test sent to {count} address(es).")
                    return redirect(here)
                status = 400
            elif action == "schedule":
                schedule_form = ScheduleForm(request.POST, zone=zone)
                if schedule_form.is_valid():
                    edition_schedule(edition, schedule_form.cleaned_data["send_at"])
                    messages.success(request, "Scheduled.")
                    return redirect(here)
                status = 400
            elif action == "unschedule":
                edition_unschedule(edition)
                messages.success(request, "No longer scheduled: the edition is a draft again.")
                return redirect(here)
            elif action == "send_now":
                # Sending needs the confirmation page, which names the number of readers.
                return redirect("newsletters_admin:send_now", edition.pk)
            elif action in ("pause", "resume") and hasattr(edition, "delivery"):
                (delivery_pause if action == "pause" else delivery_resume)(edition.delivery)
                messages.success(request, "Paused." if action == "pause" else "Resumed.")
                return redirect(here)
            else:
                messages.error(request, "Unknown action.")
                status = 400
        except DeliveryError as exc:
            messages.error(request, str(exc))
            status = 400
    delivery = Delivery.objects.filter(edition=edition).first()
    context = {
        "edition": edition,
        "newsletter": edition.newsletter,
        "test_form": test_form,
        "schedule_form": schedule_form,
        "zone": zone,
        "delivery": delivery,
        "progress": progress_status(delivery) if delivery else None,
        "progress_url": reverse("newsletters_admin:progress", args=[edition.pk]),
        "edit_url": reverse("wagtailsnippets_newsletters_edition:edit", args=[edition.pk]),
        "scheduled_local": timezone.localtime(edition.scheduled_at, zone)
        if edition.scheduled_at else None,
        "links": edition.links.order_by("-clicks", "pk"),
        "recipients_now": recipients_now(edition),
        "send_now_url": reverse("newsletters_admin:send_now", args=[edition.pk]),
        **admin_chrome(edition, "Send"),
    }
    return render(request, "newsletters/admin/send.html", context, status=status)


def admin_chrome(edition: Edition, title: str, *, last_url: str = "") -> dict:
    """Wagtail's slim header for these pages: breadcrumbs Editions › subject › title."""
    return {
        "header_title": f"{title}: {edition.subject}",
        "header_icon": "mail",
        "breadcrumbs_items": [
            {"url": reverse("wagtailadmin_home"), "label": "Home"},
            {"url": reverse("wagtailsnippets_newsletters_edition:list"), "label": "Editions"},
            {
                "url": reverse("wagtailsnippets_newsletters_edition:edit", args=[edition.pk]),
                "label": edition.subject,
            },
            {"url": last_url, "label": title},
        ],
    }


def recipients_now(edition: Edition) -> int:
    """Readers who would get the edition if it were sent now (as delivery_start counts)."""
    return edition.newsletter.subscriptions.filter(
        status="confirmed", subscriber__suppressed_at__isnull=True
    ).count()


@require_http_methods(["GET", "POST"])
@permission_required("newsletters.change_edition", raise_exception=True)
def send_now(request, pk):
    """GET: "Send to N readers now?" with a button; POST: start sending. Works without JS."""
    edition = get_object_or_404(Edition.objects.select_related("newsletter"), pk=pk)
    here = reverse("newsletters_admin:send", args=[edition.pk])
    if edition.status in (Edition.Status.SENDING, Edition.Status.SENT):
        messages.error(request, f"“{edition}” has already been sent.")
        return redirect(here)
    count = recipients_now(edition)
    status = 200
    if request.method == "POST":
        try:
            delivery_start(edition)
        except DeliveryError as exc:
            messages.error(request, str(exc))
            status = 400
        else:
            messages.success(request, f"Sending has started ({count} reader{pluralize(count)}).")
            return redirect(here)
    context = {
        "edition": edition,
        "newsletter": edition.newsletter,
        "recipients": count,
        "send_url": here,
        **admin_chrome(edition, "Send now"),
    }
    return render(request, "newsletters/admin/confirm_send.html", context, status=status)


def progress_status(delivery: Delivery) -> dict:
    """The delivery's counts plus the words the page shows, from one read of each row: the
    edition's status and the summary line always describe the same moment."""
    data = delivery_progress(delivery)
    edition = Edition.objects.only("status").get(pk=delivery.edition_id)
    label = Delivery.Status(delivery.status).label
    if delivery.status == Delivery.Status.SENDING and not data["remaining"]:
        label = "Finishing"
    summary = f"{label}: {data['sent']} of {data['total']} sent"
    extras = [f"{data[k]} {word}" for k, word in (("failed", "failed"), ("skipped", "skipped"))
              if data[k]]
    if extras:
        summary += f" ({', '.join(extras)})"
    return {
        **data,
        "status_label": label,
        "summary": summary,
        "edition_status": edition.status,
        "edition_status_label": Edition.Status(edition.status).label,
    }


@require_GET
@permission_required("newsletters.view_edition", raise_exception=True)
def progress(request, pk):
    delivery = Delivery.objects.filter(edition_id=pk).first()
    if delivery is None:
        return JsonResponse({"status": "not started"}, status=404)
    return JsonResponse(progress_status(delivery))  # the admin's URLs are never cached
