"""The edition pages of the Newsletters admin as an editor uses them (issue 13): "Send now"
asks first, naming how many readers will get it, and only a POST sends; the send, schedule and
test actions are buttons on the edition and in the list, not in "⋯" menus; while sending, the
page follows the delivery live and says "Sent" when it is done, without a reload; edition
slugs end at a whole word."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone
from playwright.sync_api import Page, expect

from masthead.core.crypto import email_index
from masthead.newsletters.delivery import delivery_run, delivery_start
from masthead.newsletters.models import Delivery, Edition, Subscriber, Subscription

from .conftest import add_subscribers

SHOTS = Path(__file__).resolve().parents[2] / "data" / "screenshots"


def make_editor(username: str = "ed") -> User:
    group, _ = Group.objects.get_or_create(name="Newsletter editors")
    group.permissions.set(
        Permission.objects.filter(content_type__app_label="newsletters")
        | Permission.objects.filter(codename="access_admin")
    )
    user = User.objects.create_user(username, f"{username}@example.com", "pw-123456789")
    user.groups.add(group)
    return user


@pytest.fixture
def editor(client):
    client.force_login(make_editor())
    return client


def add_reader(newsletter, email: str, status: str, suppressed: bool = False) -> None:
    person = Subscriber.objects.create(
        email=email,
        email_index=email_index(email),
        suppressed_at=timezone.now() if suppressed else None,
    )
    Subscription.objects.create(subscriber=person, newsletter=newsletter, status=status)


@pytest.mark.django_db
def test_send_now_asks_first_naming_the_recipients_and_only_post_sends(
    editor, newsletter, edition_factory
):
    add_subscribers(newsletter, 3)
    add_reader(newsletter, "waiting@example.org", Subscription.Status.PENDING)
    add_reader(newsletter, "bounced@example.org", Subscription.Status.CONFIRMED, suppressed=True)
    edition = edition_factory(newsletter)
    send_url = f"/admin/newsletters/edition/{edition.pk}/send/"
    confirm_url = f"/admin/newsletters/edition/{edition.pk}/send-now/"

    page = editor.get(send_url).content.decode()
    assert f'href="{confirm_url}"' in page
    assert 'value="send_now"' not in page  # no one-click send on the page

    # The old one-click form post now only leads to the question.
    asked = editor.post(send_url, {"action": "send_now"})
    assert asked.status_code == 302 and asked["Location"] == confirm_url
    confirm = editor.get(confirm_url)
    html = confirm.content.decode()
    assert confirm.status_code == 200
    assert "to 3 subscribers now?" in html and "Send to 3 subscribers" in html
    assert re.search(r'<form method="post"[^>]*>', html)
    assert f'href="{send_url}"' in html  # Cancel
    assert not Delivery.objects.exists()
    assert Edition.objects.get(pk=edition.pk).status == Edition.Status.DRAFT
    assert editor.put(confirm_url).status_code == 405
    assert not Delivery.objects.exists()

    sent = editor.post(confirm_url)
    assert sent.status_code == 302 and sent["Location"] == send_url
    delivery = Delivery.objects.get(edition=edition)
    assert delivery.total == 3
    assert Edition.objects.get(pk=edition.pk).status == Edition.Status.SENDING

    # Once sending, neither the question nor its POST is offered again.
    again = editor.get(confirm_url)
    assert again.status_code == 302 and again["Location"] == send_url
    assert "already been sent" in editor.post(confirm_url, follow=True).content.decode()
    assert Delivery.objects.count() == 1


@pytest.mark.django_db
def test_send_now_needs_the_right_to_change_editions(client, newsletter, edition_factory):
    edition = edition_factory(newsletter)
    viewer = User.objects.create_user("viewer", "v@example.com", "pw-123456789")
    viewer.user_permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="view_edition"),
    )
    client.force_login(viewer)
    url = f"/admin/newsletters/edition/{edition.pk}/send-now/"
    # Wagtail turns the PermissionDenied into a redirect to the dashboard with a message.
    for response in (client.get(url), client.post(url)):
        assert response.status_code in (302, 403)
        assert response.get("Location", "/admin/") == "/admin/"
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_an_empty_edition_is_refused_with_a_clear_error(editor, newsletter):
    add_subscribers(newsletter, 1)
    edition = Edition.objects.create(newsletter=newsletter, subject="Nothing yet")
    response = editor.post(f"/admin/newsletters/edition/{edition.pk}/send-now/")
    assert response.status_code == 400
    assert "The edition is empty" in response.content.decode()
    assert not Delivery.objects.exists()


def header_links(html: str) -> dict[str, str]:
    """Label → href of the header's own buttons (not those inside its "⋯" dropdown)."""
    header = html.split("</header>", 1)[0]
    dropdowns = re.findall(r'<div[^>]*data-controller="w-dropdown".*?</div>\s*</div>', header, re.S)
    for dropdown in dropdowns:
        header = header.replace(dropdown, "")
    links = re.findall(
        r'<a[^>]*href="([^"]+)"[^>]*class="[^"]*w-header-button[^"]*"[^>]*>(.*?)</a>'
        r'|<a[^>]*class="[^"]*w-header-button[^"]*"[^>]*href="([^"]+)"[^>]*>(.*?)</a>',
        header,
        re.S,
    )
    found = {}
    for href, label, href2, label2 in links:
        text = re.sub(r"<[^>]+>", "", label or label2).strip()
        found[text] = (href or href2).replace("&amp;", "&")
    return found


@pytest.mark.django_db
def test_send_schedule_and_test_are_buttons_on_the_edition_and_in_the_list(
    editor, newsletter, edition_factory
):
    edition = edition_factory(newsletter)
    send_url = f"/admin/newsletters/edition/{edition.pk}/send/"
    edit = editor.get(f"/admin/snippets/newsletters/edition/edit/{edition.pk}/").content.decode()
    buttons = header_links(edit)
    assert buttons["Send now…"] == f"/admin/newsletters/edition/{edition.pk}/send-now/"
    assert buttons["Schedule"] == f"{send_url}#schedule"
    assert buttons["Send a test"] == f"{send_url}#test"

    listing = editor.get("/admin/snippets/newsletters/edition/").content.decode()
    row = listing[listing.index(edition.subject):]
    row = row[: row.index("</tr>")]
    assert f'href="/admin/newsletters/edition/{edition.pk}/send-now/"' in row
    assert f'href="{send_url}#schedule"' in row and f'href="{send_url}#test"' in row

    # The send page has an anchor for each, and each action is a visible button.
    page = editor.get(send_url).content.decode()
    assert 'id="schedule"' in page and 'id="test"' in page and 'id="send-now"' in page
    assert 'value="schedule"' in page and 'value="test"' in page

    # A sent edition offers its delivery page instead.
    edition.status = Edition.Status.SENT
    edition.save()
    edit = editor.get(f"/admin/snippets/newsletters/edition/edit/{edition.pk}/").content.decode()
    assert header_links(edit)["Delivery and clicks"] == send_url


@pytest.mark.django_db
def test_progress_status_and_page_agree_when_the_send_finishes(
    editor, newsletter, edition_factory, smtp_server
):
    smtp_server()
    add_subscribers(newsletter, 4)
    edition = edition_factory(newsletter)
    delivery = delivery_start(edition, enqueue=False)
    status_url = f"/admin/newsletters/edition/{edition.pk}/progress/"
    send_url = f"/admin/newsletters/edition/{edition.pk}/send/"

    before = editor.get(status_url)
    assert "no-store" in before["Cache-Control"]
    data = before.json()
    assert (data["status"], data["edition_status"]) == ("sending", "sending")
    assert data["summary"] == "Sending: 0 of 4 sent" and data["edition_status_label"] == "Sending"
    page = editor.get(send_url).content.decode()
    assert "Sending: 0 of 4 sent" in page and "data-progress-url" in page

    delivery_run(delivery.pk)
    data = editor.get(status_url).json()
    assert (data["status"], data["edition_status"]) == ("done", "sent")
    assert data["summary"] == "Done: 4 of 4 sent"
    assert (data["status_label"], data["edition_status_label"]) == ("Done", "Sent")
    page = editor.get(send_url).content.decode()
    assert "Done: 4 of 4 sent" in page
    assert re.search(r"data-edition-status>Sent<", page)
    assert "Sending" not in page


@pytest.mark.django_db
def test_no_status_for_an_edition_never_sent(editor, newsletter, edition_factory):
    edition = edition_factory(newsletter)
    response = editor.get(f"/admin/newsletters/edition/{edition.pk}/progress/")
    assert response.status_code == 404 and response.json() == {"status": "not started"}


@pytest.mark.django_db
def test_edition_slugs_end_at_a_whole_word(newsletter, russian_newsletter):
    english = Edition(
        newsletter=newsletter,
        subject="This week: ice contracts, a letterpress that survived three wars and the flood",
    )
    assert english.slug == "this-week-ice-contracts-a-letterpress-that-survived-three"
    russian = Edition(
        newsletter=russian_newsletter,
        subject="На этой неделе: ледовые контракты, типография, пережившая три войны и наводнение",
    )
    assert russian.slug == "на-этой-неделе-ледовые-контракты-типография-пережившая-три"
    for edition in (english, russian):
        assert len(edition.slug) <= 60
        words = set(re.split(r"\W+", edition.subject.lower()))
        assert set(edition.slug.split("-")) <= words  # every part is a whole word
    assert Edition(newsletter=newsletter, subject="Short").slug == "short"
    assert Edition(newsletter=newsletter, subject="x" * 80).slug == "x" * 60
    assert Edition(newsletter=newsletter, subject="!!!").slug == "edition"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_page_follows_the_send_live_and_says_sent_without_a_reload(
    page: Page, live_server, newsletter, edition_factory, smtp_server
):
    """In Chromium: the confirmation page at phone and laptop widths, then the send page
    while a real worker sends through a real SMTP server; the page turns to "Sent" and
    "Done: 5 of 5 sent" by itself (the same document: no reload)."""
    smtp_server()
    add_subscribers(newsletter, 5)
    edition = edition_factory(newsletter)
    make_editor()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("input[name=username]", "ed")
    page.fill("input[name=password]", "pw-123456789")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))

    page.goto(f"{live_server.url}/admin/snippets/newsletters/edition/edit/{edition.pk}/")
    header = page.locator("header")
    for label in ("Send now…", "Schedule", "Send a test"):
        expect(header.get_by_role("link", name=label)).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(SHOTS / "admin-edition-edit-1280.png"))
    header.get_by_role("link", name="Send now…").click()
    expect(page.get_by_role("heading", name=re.compile("to 5 subscribers now"))).to_be_visible()
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"admin-edition-confirm-{width}.png"), full_page=True)
    page.get_by_role("button", name="Send to 5 subscribers").click()
    page.wait_for_url(re.compile(r"/send/$"))
    summary = page.locator("[data-field=summary]")
    expect(summary).to_have_text("Sending: 0 of 5 sent")
    expect(page.locator("[data-edition-status]")).to_have_text("Sending")
    page.evaluate("window.__sameDocument = true")

    delivery_run(Delivery.objects.get(edition=edition).pk)

    expect(summary).to_have_text("Done: 5 of 5 sent", timeout=15_000)
    expect(page.locator("[data-edition-status]")).to_have_text("Sent")
    expect(page.locator("[data-field=status_label]")).to_have_text("Done")
    expect(page.get_by_role("button", name="Pause sending")).to_have_count(0)
    assert page.evaluate("window.__sameDocument") is True
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"admin-edition-sent-{width}.png"), full_page=True)
