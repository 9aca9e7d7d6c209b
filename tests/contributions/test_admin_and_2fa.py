"""The Giving admin (lists, filters, totals, CSV export, donor export and erasure) and the
two-factor requirement for staff who can see donors."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from masthead.contributions import ledger, tokens
from masthead.contributions.models import Contribution, Donor, RecurringPlan

pytestmark = pytest.mark.django_db


def verified_login(client, user):
    """Sign in as a user with a confirmed TOTP device, through the verify page."""
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.force_login(user)
    response = client.post(
        reverse("staff_otp_verify"),
        {
            "otp_token": f"{totp(device.bin_key, step=device.step, digits=device.digits):06d}",
            "next": "/admin/",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    return device


def make_records():
    donor = Donor(name="Erin")
    donor.set_email("erin@example.org")
    donor.save()
    now = timezone.now()
    rows = [
        (2500, "USD", "once", now, 0),
        (500, "USD", "monthly", now, 0),
        (1000, "EUR", "once", now, 400),
        (999, "GBP", "once", None, 0),
    ]
    for amount, currency, frequency, paid, refunded in rows:
        Contribution.objects.create(
            donor=donor,
            amount=amount,
            currency=currency,
            frequency=frequency,
            provider="sandbox",
            paid_at=paid,
            refunded_amount=refunded,
            source="-1+1",
            status="succeeded" if paid else "pending",
        )
    RecurringPlan.objects.create(
        donor=donor,
        provider="sandbox",
        frequency="annual",
        amount=12000,
        currency="USD",
        status="active",
    )
    return donor


def test_staff_who_can_see_donors_must_set_up_two_factor(client, site):
    admin = User.objects.create_superuser("boss", "boss@example.org", "pw-123456789")
    client.force_login(admin)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/two_factor/setup/?next=")
    assert client.get(response["Location"]).status_code == 200  # the setup wizard
    response = client.get("/django-admin/")
    assert response["Location"].startswith("/account/two_factor/setup/")


def test_staff_with_a_device_must_enter_a_code(client, site):
    admin = User.objects.create_superuser("boss", "boss@example.org", "pw-123456789")
    device = TOTPDevice.objects.create(user=admin, name="phone", confirmed=True)
    client.force_login(admin)
    response = client.get("/admin/contributions_contribution/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/verify/?next=")
    wrong = client.post(reverse("staff_otp_verify"), {"otp_token": "000000", "next": "/admin/"})
    assert wrong.status_code == 400
    assert client.get("/admin/").status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # repeated guesses are slowed down
    device.throttle_reset()
    code = f"{totp(device.bin_key, step=device.step, digits=device.digits):06d}"
    evil_next = client.post(
        reverse("staff_otp_verify"), {"otp_token": code, "next": "https://evil.example/"}
    )
    assert evil_next["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_editors_without_donor_permissions_and_the_login_page_are_untouched(client, site):
    assert client.get("/admin/login/").status_code == 200
    editor = User.objects.create_user("ed", "ed@example.org", "correct horse battery")
    editors = (
        Group.objects.get(name="Editors")
        if Group.objects.filter(name="Editors").exists()
        else Group.objects.create(name="Editors")
    )
    editors.permissions.add(Permission.objects.get(codename="access_admin"))
    editor.groups.add(editors)
    response = client.post("/admin/login/", {"username": "ed", "password": "correct horse battery"})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    # Given the right to see contributions, the same editor must now use two factors.
    editor.user_permissions.add(Permission.objects.get(codename="view_contribution"))
    editor = User.objects.get(pk=editor.pk)
    assert client.get("/admin/").status_code == 302


def test_contribution_list_filters_totals_and_csv(client, site):
    make_records()
    admin = User.objects.create_superuser("boss", "boss@example.org", "pw-123456789")
    verified_login(client, admin)
    url = "/admin/contributions_contribution/"
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "$30" in html and "€6" in html  # net of the refund; the pending GBP row excluded
    filtered = client.get(url, {"currency": "EUR"}).content.decode()
    assert "€6" in filtered and "$30" not in filtered
    export = client.get(url, {"export": "csv", "currency": "USD"})
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert sorted(r["Amount (minor units)"] for r in rows) == ["2500", "500"]
    assert rows[0]["Source"] == "'-1+1"  # no formula injection
    assert "erin@example.org" not in json.dumps(rows)
    # Financial records are read-only in the admin.
    contribution = Contribution.objects.first()
    assert client.get(f"{url}edit/{contribution.pk}/").status_code == 404
    assert client.get(f"{url}inspect/{contribution.pk}/").status_code == 200
    plans = client.get("/admin/contributions_plan/").content.decode()
    assert "$10 / month" in plans  # 120 a year


def test_donor_export_and_erasure_from_the_admin(client, site):
    donor = make_records()
    admin = User.objects.create_superuser("boss", "boss@example.org", "pw-123456789")
    verified_login(client, admin)
    found = client.get("/admin/contributions_donor/", {"email": "ERIN@example.org"})
    assert "erin@example.org" in found.content.decode()
    exported = client.get(reverse("contributions_donor:export", args=[donor.pk]))
    data = json.loads(exported.content)
    assert data["donor"]["email"] == "erin@example.org" and len(data["contributions"]) == 4
    assert client.get(reverse("contributions_donor:erase", args=[donor.pk])).status_code == 200
    token = tokens.manage_token(donor)
    erased = client.post(reverse("contributions_donor:erase", args=[donor.pk]))
    assert erased.status_code == 302
    donor.refresh_from_db()
    assert donor.erased_at and donor.email == "" and donor.name == ""
    assert Contribution.objects.filter(donor=donor).count() == 4  # the money record stays
    assert RecurringPlan.objects.get().status == "cancelled"
    assert tokens.donor_from_manage_token(token) is None
    assert not mail.outbox


def test_erasure_changes_nothing_when_the_provider_cannot_cancel(client, site, stripe_api):
    donor = make_records()
    RecurringPlan.objects.create(
        donor=donor,
        provider="stripe",
        provider_ref="sub_unknown_to_stripe",
        frequency="monthly",
        amount=500,
        currency="USD",
        status="active",
    )
    admin = User.objects.create_superuser("boss", "boss@example.org", "pw-123456789")
    verified_login(client, admin)
    response = client.post(reverse("contributions_donor:erase", args=[donor.pk]), follow=True)
    assert response.status_code == 200
    assert "Nothing was erased" in response.content.decode()
    donor.refresh_from_db()
    assert donor.erased_at is None and donor.email == "erin@example.org"
    assert stripe_api.calls("DELETE", "/v1/subscriptions/sub_unknown_to_stripe")


def test_preset_amounts_are_validated_in_the_admin(client, site):
    from masthead.contributions.models import AmountPreset

    admin = User.objects.create_superuser("boss", "boss@example.org", "pw-123456789")
    verified_login(client, admin)
    url = "/admin/contributions_preset/new/"
    data = {"frequency": "monthly", "currency": "XYZ", "amount": "500", "sort_order": "0"}
    response = client.post(url, data)
    assert (
        response.status_code == 200
        and "Choose one of these currencies" in response.content.decode()
    )
    response = client.post(url, {**data, "currency": "usd", "amount": "150"})
    assert "The smallest contribution we can accept is $2." in response.content.decode()
    response = client.post(url, {**data, "currency": "usd", "amount": "700", "suggested": "on"})
    assert response.status_code == 302
    preset = AmountPreset.objects.get()
    assert (preset.currency, preset.amount, preset.suggested) == ("USD", 700, True)
    give = client.get("/support/?frequency=monthly&currency=USD").content.decode()
    assert 'value="700" checked' in give


def test_dashboard_shows_the_giving_summary_only_to_those_who_may_see_it(client, site):
    make_records()
    admin = User.objects.create_superuser("boss", "boss@example.org", "pw-123456789")
    verified_login(client, admin)
    html = client.get("/admin/").content.decode()
    assert "Last 30 days (net of refunds)" in html
    assert "$30 — 2 payments" in html and "$10 / month — 1 supporter" in html
    client.logout()
    editor = User.objects.create_user("ed", "ed@example.org", "correct horse battery")
    editor.user_permissions.add(Permission.objects.get(codename="access_admin"))
    client.force_login(editor)
    html = client.get("/admin/").content.decode()
    assert "Last 30 days" not in html


def test_provider_events_list_and_inspect(client, site):
    event = ledger.store_event(
        "sandbox", "evt_admin_1", "checkout.completed", {"data": {"email": "p@example.org"}}
    )
    admin = User.objects.create_superuser("boss", "boss@example.org", "pw-123456789")
    verified_login(client, admin)
    listing = client.get("/admin/contributions_event/", {"status": "received"})
    assert listing.status_code == 200 and "evt_admin_1" in listing.content.decode()
    inspect = client.get(f"/admin/contributions_event/inspect/{event.pk}/")
    assert inspect.status_code == 200 and "p@example.org" in inspect.content.decode()


def test_setting_up_an_authenticator_verifies_the_session(client, site):
    import base64

    admin = User.objects.create_superuser("boss", "boss@example.org", "pw-123456789")
    client.force_login(admin)
    setup = client.get("/admin/", follow=True)
    assert setup.redirect_chain[-1][0].startswith("/account/two_factor/setup/")
    url = "/account/two_factor/setup/?next=/admin/"
    page = client.post(url, {"setup_view-current_step": "welcome"})
    if b'name="method"' in page.content:
        page = client.post(url, {"setup_view-current_step": "method", "method-method": "generator"})
    assert page.status_code == 200 and b"generator" in page.content
    key = base64.b32decode(client.session["django_two_factor-qr_secret_key"])
    done = client.post(
        url,
        {"setup_view-current_step": "generator", "generator-token": f"{totp(key):06d}"},
    )
    assert done.status_code == 302, done.content.decode()[:500]
    assert TOTPDevice.objects.filter(user=admin, confirmed=True).count() == 1
    assert client.get("/admin/").status_code == 200
