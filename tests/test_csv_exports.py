"""Every CSV the admin exports has headings in one style, "Title case" English (issue 13):
the Wagtail list exports (subscribers, contributions, plans — found by walking the registered
viewsets, so a new export is checked too) and the Insights tables' downloads, in any admin
language. The subscribers export itself: decrypted for 2FA-verified staff, defused against
spreadsheet formulas, and written to the access log."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.contrib.auth.models import User
from django.urls import get_resolver, reverse
from django.utils import timezone
from wagtail.admin.viewsets import viewsets
from wagtail.admin.viewsets.base import ViewSetGroup
from wagtail.users.models import UserProfile

from masthead.core.audit import AuditEntry
from masthead.core.crypto import email_index
from masthead.core.csvexport import export_headings, is_heading, title_case
from masthead.newsletters.models import Newsletter, Subscriber, Subscription

pytestmark = pytest.mark.django_db


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(body.decode("utf-8"))))


def exporting_viewsets():
    assert get_resolver().url_patterns  # the admin registers its viewsets as its URLs load

    def walk(items):
        for viewset in items:
            if isinstance(viewset, ViewSetGroup):
                yield from walk(viewset.registerables)
            else:
                yield viewset

    return [
        v for v in walk(viewsets.viewsets)
        if isinstance(getattr(v, "list_export", None), (list, tuple)) and v.list_export
    ]


def test_title_case_rule():
    assert title_case("created_at") == "Created at"
    assert title_case("donor_id") == "Donor ID"
    assert title_case("newsletter.slug") == "Newsletter slug"
    good = ("ID", "Amount (minor units)", "Contributions per impression")
    assert all(is_heading(h) for h in good)
    assert not any(is_heading(h) for h in ("created_at", "amount (minor units)", "source", ""))
    assert export_headings(["id", "paid_at"], paid_at="Paid") == {"id": "ID", "paid_at": "Paid"}
    with pytest.raises(ValueError):
        export_headings(["id"], id="id")
    with pytest.raises(ValueError):
        export_headings(["id"], amount="Amount")


def test_every_admin_list_export_has_title_case_headings(admin_client):
    exports = exporting_viewsets()
    names = {v.name for v in exports}
    assert {"subscription", "contributions_contribution", "contributions_plan"} <= names
    for viewset in exports:
        url = viewset.menu_url
        response = admin_client.get(url, {"export": "csv"})
        assert response.status_code == 200, url
        assert response["Content-Type"].startswith("text/csv"), url
        headings = csv_rows(response)[0]
        assert len(headings) == len(viewset.list_export), url
        bad = [h for h in headings if not is_heading(h)]
        assert not bad, f"{url}: {bad}"


def test_the_insights_downloads_have_title_case_headings(admin_client):
    page = admin_client.get("/admin/insights/")
    assert page.status_code == 200
    links = sorted(set(re.findall(r'href="([^"]+\.csv[^"]*)"', page.content.decode())))
    assert links
    for link in links:
        response = admin_client.get(link.replace("&amp;", "&"))
        assert response.status_code == 200, link
        headings = csv_rows(response)[0]
        bad = [h for h in headings if not is_heading(h)]
        assert not bad, f"{link}: {bad}"


def subscribe(newsletter, email: str, status=Subscription.Status.CONFIRMED) -> Subscription:
    person = Subscriber.objects.create(email=email, email_index=email_index(email))
    return Subscription.objects.create(
        subscriber=person, newsletter=newsletter, status=status,
        confirmed_at=timezone.now() if status == Subscription.Status.CONFIRMED else None,
    )


def test_the_subscribers_export(admin_client, admin_user, site):
    letter = Newsletter.objects.create(name="The Friday Lantern", slug="friday", language="en")
    subscribe(letter, "ana@example.org")
    subscribe(letter, "=HYPERLINK(evil)@example.org", Subscription.Status.PENDING)
    url = reverse("wagtailsnippets_newsletters_subscription:list")
    response = admin_client.get(url, {"export": "csv"})
    rows = csv_rows(response)
    assert rows[0] == [
        "ID", "Email", "Newsletter", "Status", "Created at", "Confirmed at", "Unsubscribed at",
    ]
    emails = sorted(r[1] for r in rows[1:])
    assert emails == ["'=HYPERLINK(evil)@example.org", "ana@example.org"]
    assert {r[2] for r in rows[1:]} == {"friday"}
    assert 'filename="subscribers.csv"' in response["Content-Disposition"]
    entry = AuditEntry.objects.get(action=AuditEntry.Action.EXPORT)
    assert (entry.subject_type, entry.count, entry.actor_id) == ("subscriber", 2, admin_user.pk)

    # The same headings whatever language the editor's admin is in.
    profile = UserProfile.get_for_user(admin_user)
    profile.preferred_language = "ru"
    profile.save()
    again = csv_rows(admin_client.get(url, {"export": "csv"}))
    assert again[0] == rows[0]


def test_a_writer_without_the_subscribers_permission_cannot_export(client, site):
    from django.contrib.auth.models import Permission

    writer = User.objects.create_user("w", "w@example.org", "pw-123456789")
    writer.user_permissions.add(Permission.objects.get(codename="access_admin"))
    client.force_login(writer)
    response = client.get(
        reverse("wagtailsnippets_newsletters_subscription:list"), {"export": "csv"}
    )
    assert response.status_code in (302, 403)
    assert not response.get("Content-Type", "").startswith("text/csv")
