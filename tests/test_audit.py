"""The access log (core.audit): every staff access to a donor's or a subscriber's decrypted
details — admin pages, exports, erasures, the data-request commands — writes one entry with
who, what and where, never the address; superusers read it, nobody changes it."""

from __future__ import annotations

import getpass
import io

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from masthead.contributions.models import Contribution, Donor, ProviderEvent, RecurringPlan
from masthead.core.audit import AuditEntry, record_access
from masthead.core.crypto import email_index
from masthead.newsletters.models import Newsletter, Subscriber, Subscription

pytestmark = pytest.mark.django_db


def verified_login(client, user):
    """Sign in through the two-factor verify page with a confirmed TOTP device (staff who can
    see donors — superusers included — must pass it before the admin lets them in)."""
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.force_login(user)
    code = f"{totp(device.bin_key, step=device.step, digits=device.digits):06d}"
    response = client.post(reverse("staff_otp_verify"), {"otp_token": code, "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"


@pytest.fixture
def boss(client, site):
    user = User.objects.create_superuser("boss", "boss@example.org", "pw-123456789")
    verified_login(client, user)
    return user


def make_donor(email="erin@example.org", name="Erin") -> Donor:
    donor = Donor(name=name)
    donor.set_email(email)
    donor.save()
    return donor


def make_subscribers(count=3) -> list[Subscription]:
    newsletter = Newsletter.objects.create(
        name="The Friday Lantern", slug="friday-lantern", language="en", is_default=True
    )
    subscriptions = []
    for i in range(count):
        address = f"reader{i}@example.org"
        person = Subscriber.objects.create(email=address, email_index=email_index(address))
        subscriptions.append(
            Subscription.objects.create(
                subscriber=person, newsletter=newsletter, status="confirmed",
                confirmed_at=timezone.now(),
            )
        )
    return subscriptions


def only_entry(**expected) -> AuditEntry:
    """Exactly one entry was written, and it says what ``expected`` says."""
    entries = list(AuditEntry.objects.all())
    assert len(entries) == 1, [str(e) for e in entries]
    entry = entries[0]
    for field, value in expected.items():
        assert getattr(entry, field) == value, (field, getattr(entry, field), value)
    AuditEntry.objects.all()._raw_delete(AuditEntry.objects.db)  # the test's own cleanup
    return entry


def assert_no_address_in_the_log():
    for row in AuditEntry.objects.values():
        assert not any("@" in str(value) for value in row.values()), row


# --- The model --------------------------------------------------------------------------------


def test_an_entry_is_written_once_and_never_changed_or_deleted(db):
    user = User.objects.create_user("ed")
    entry = record_access(user, "view", "donor", 7, where="somewhere")
    assert (entry.actor, entry.actor_name, entry.via) == (user, "ed", "admin")
    entry.detail = "tampered"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    assert AuditEntry.objects.get().detail == ""
    with pytest.raises(ValueError):
        record_access(user, "edit", "donor", 7)  # only view, export, erase exist
    user.delete()  # the entry outlives the account and still says who
    entry = AuditEntry.objects.get()
    assert entry.actor is None and entry.actor_name == "ed"


# --- Management commands ------------------------------------------------------------------------


def test_donor_commands_log_who_ran_them(db):
    donor = make_donor()
    Contribution.objects.create(
        donor=donor, amount=500, currency="USD", frequency="once", provider="sandbox"
    )
    call_command("donor_export", "erin@example.org", "--actor", "ops-alice", stdout=io.StringIO())
    only_entry(
        actor=None, actor_name="ops-alice", action="export", subject_type="donor",
        subject_id=donor.pk, via="command", where="donor-export",
    )
    call_command("donor_erase", "erin@example.org", "--yes", stdout=io.StringIO())
    only_entry(
        actor_name=getpass.getuser(), action="erase", subject_type="donor",
        subject_id=donor.pk, via="command", where="donor-erase",
    )


def test_subscriber_commands_log_who_ran_them(db):
    subscription = make_subscribers(1)[0]
    call_command(
        "newsletter_subscriber", "export", "reader0@example.org", "--actor", "ops-bo",
        stdout=io.StringIO(),
    )
    record = only_entry(
        actor_name="ops-bo", action="export", subject_type="subscriber",
        subject_id=subscription.subscriber_id, via="command",
    )
    assert record.where == "newsletter-subscriber export"
    call_command(
        "newsletter_subscriber", "erase", "reader0@example.org", "--yes", "--actor", "ops-bo",
        stdout=io.StringIO(),
    )
    only_entry(action="erase", subject_id=subscription.subscriber_id)


def test_a_command_that_finds_nobody_logs_nothing(db):
    from django.core.management.base import CommandError

    for command, *args in [
        ("donor_export", "nobody@example.org"),
        ("donor_erase", "nobody@example.org", "--yes"),
        ("newsletter_subscriber", "export", "nobody@example.org"),
        ("newsletter_subscriber", "erase", "nobody@example.org", "--yes"),
    ]:
        with pytest.raises(CommandError):
            call_command(command, *args, stdout=io.StringIO())
    assert not AuditEntry.objects.exists()


# --- The Giving admin ---------------------------------------------------------------------------


def test_each_giving_admin_page_with_decrypted_details_logs_one_entry(client, boss):
    donor = make_donor()
    make_donor("finn@example.org", "Finn")
    contribution = Contribution.objects.create(
        donor=donor, amount=500, currency="USD", frequency="once", provider="sandbox"
    )
    plan = RecurringPlan.objects.create(
        donor=donor, provider="sandbox", frequency="monthly", amount=500, currency="USD",
        status="active",
    )
    event = ProviderEvent.objects.create(
        provider="sandbox", event_id="evt_1", event_type="checkout.completed",
        payload={"customer_email": "erin@example.org"},
    )
    AuditEntry.objects.all()._raw_delete(AuditEntry.objects.db)

    page = client.get("/admin/contributions_donor/")
    assert "finn@example.org" in page.content.decode()
    only_entry(
        actor=boss, actor_name="boss", action="view", subject_type="donor", subject_id=None,
        count=2, via="admin", where="contributions_donor:index",
    )
    views = [
        ("contributions_donor:inspect", donor, "donor", donor.pk),
        ("contributions_contribution:inspect", contribution, "donor", donor.pk),
        ("contributions_plan:inspect", plan, "donor", donor.pk),
        ("contributions_event:inspect", event, "provider event", event.pk),
    ]
    for where, record, subject_type, subject_id in views:
        response = client.get(reverse(where, args=[record.pk]))
        assert response.status_code == 200, where
        assert "erin@example.org" in response.content.decode(), where
        only_entry(
            actor=boss, action="view", subject_type=subject_type, subject_id=subject_id,
            where=where, detail=f"{record._meta.verbose_name} #{record.pk}",
        )

    assert client.get(reverse("contributions_donor:export", args=[donor.pk])).status_code == 200
    assert_no_address_in_the_log()
    only_entry(actor=boss, action="export", subject_id=donor.pk, where="contributions_donor:export")
    assert client.get(reverse("contributions_donor:erase", args=[donor.pk])).status_code == 200
    assert not AuditEntry.objects.exists()  # the confirmation page names no address
    assert client.post(reverse("contributions_donor:erase", args=[donor.pk])).status_code == 302
    only_entry(actor=boss, action="erase", subject_id=donor.pk, where="contributions_donor:erase")

    # The contribution list shows no donor details: nothing to log.
    assert client.get("/admin/contributions_contribution/").status_code == 200
    assert not AuditEntry.objects.exists()


# --- The Newsletters admin ----------------------------------------------------------------------


def test_each_subscriber_admin_page_logs_one_entry(client, boss):
    subscriptions = make_subscribers(3)
    first = subscriptions[0]
    page = client.get(reverse("wagtailsnippets_newsletters_subscription:list"))
    assert "reader2@example.org" in page.content.decode()
    only_entry(actor=boss, action="view", subject_type="subscriber", subject_id=None, count=3)
    chooser = "/admin/snippets/choose/newsletters/subscription/"
    for url in (chooser, chooser + "results/"):
        response = client.get(url)
        assert response.status_code == 200 and "reader2@example.org" in response.content.decode()
        only_entry(actor=boss, action="view", subject_type="subscriber", count=3)
    pages = [
        reverse(f"wagtailsnippets_newsletters_subscription:{name}", args=[first.pk])
        for name in ("inspect", "edit", "delete", "history", "usage")
    ]
    for url in [*pages, f"{chooser}chosen/{first.pk}/"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "reader0@example.org" in response.content.decode()
        entry = only_entry(
            actor=boss, action="view", subject_type="subscriber",
            subject_id=first.subscriber_id,
        )
        assert entry.detail in ("", f"subscription #{first.pk}")


def test_the_subscription_chooser_is_closed_to_editors_who_cannot_view_subscribers(client, site):
    make_subscribers(1)
    editor = User.objects.create_user("ed", "ed@example.org", "correct horse battery")
    editor.user_permissions.add(Permission.objects.get(codename="access_admin"))
    client.force_login(editor)
    chooser = "/admin/snippets/choose/newsletters/subscription/"
    for url in (chooser, chooser + "results/", chooser + "chosen/1/"):
        response = client.get(url)
        assert response.status_code in (302, 403), url
        assert "reader0@example.org" not in response.content.decode()
    assert not AuditEntry.objects.exists()


# --- The listing ---------------------------------------------------------------------------------


def test_superusers_read_the_log_filtered_by_action_and_actor(client, boss):
    record_access("ops-alice", "export", "donor", 11, via="command", where="donor-export")
    record_access(boss, "erase", "subscriber", 12, where="x")
    record_access(boss, "view", "donor", count=25, where="contributions_donor:index")
    assert "/admin/access-log/" in client.get("/admin/").content.decode()  # Settings menu
    listing = client.get("/admin/access-log/")
    assert listing.status_code == 200
    text = listing.content.decode()
    assert "ops-alice" in text and "donor #11" in text and "subscriber #12" in text
    assert "25 × donor" in text
    exports = client.get("/admin/access-log/", {"action": "export"}).content.decode()
    assert "donor #11" in exports and "subscriber #12" not in exports
    by_boss = client.get("/admin/access-log/", {"actor_name": "BOSS"}).content.decode()
    assert "subscriber #12" in by_boss and "donor #11" not in by_boss
    assert not AuditEntry.objects.filter(action="view", where__startswith="access").exists()


def test_the_log_is_read_only_everywhere(client, boss):
    entry = record_access("ops-alice", "export", "donor", 11, via="command", where="donor-export")
    inspect = client.get(f"/admin/access-log/inspect/{entry.pk}/")
    assert inspect.status_code == 200 and "donor-export" in inspect.content.decode()
    assert f"/admin/access-log/edit/{entry.pk}/" not in inspect.content.decode()
    for url in (
        "/admin/access-log/new/",
        f"/admin/access-log/edit/{entry.pk}/",
        f"/admin/access-log/delete/{entry.pk}/",
        f"/admin/access-log/copy/{entry.pk}/",
        f"/admin/access-log/history/{entry.pk}/",
        "/django-admin/core/auditentry/",
        f"/django-admin/core/auditentry/{entry.pk}/change/",
    ):
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"actor_name": "nobody"}).status_code == 404, url
    entry = AuditEntry.objects.get()
    assert entry.actor_name == "ops-alice"


def test_staff_who_are_not_superusers_never_see_the_log(client, site):
    entry = record_access("ops-alice", "export", "donor", 11, via="command", where="donor-export")
    staff = User.objects.create_user("ed", "ed@example.org", "correct horse battery")
    for codename in ("access_admin", "view_donor", "view_contribution"):
        staff.user_permissions.add(Permission.objects.get(codename=codename))
    verified_login(client, staff)
    assert client.get("/admin/").status_code == 200
    assert "/admin/access-log/" not in client.get("/admin/").content.decode()
    for url in ("/admin/access-log/", f"/admin/access-log/inspect/{entry.pk}/"):
        response = client.get(url)
        assert response.status_code in (302, 403), url
        assert "ops-alice" not in response.content.decode()
        if response.status_code == 302:
            assert response["Location"] == "/admin/"  # Wagtail's "no permission" redirect
