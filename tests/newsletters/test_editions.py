"""Editions: the email as rendered once and personalised, its headers (List-Id, RFC 8058),
the web version and archive, scheduling, and the editor's admin (preview, test send,
schedule, send now, live progress)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from email import message_from_bytes, policy

import pytest
from django.core import mail
from django.utils import timezone

from masthead.newsletters.delivery import delivery_run, delivery_start, start_due_editions
from masthead.newsletters.models import Delivery, Edition, Newsletter
from masthead.newsletters.rendering import MessageTemplate, Recipient, render_edition
from masthead.newsletters.tokens import make_unsubscribe_token, read_unsubscribe_token

from .conftest import add_subscribers

pytestmark = pytest.mark.django_db


def raw_message(edition, recipient):
    rendered = render_edition(edition)
    template = MessageTemplate(
        newsletter=edition.newsletter, subject=rendered.subject, html_body=rendered.html,
        text_body=rendered.text, message_id_prefix=f"edition-{edition.pk}",
    )
    data = template.raw(recipient).replace(b"\r\n..", b"\r\n.")  # undo SMTP dot-stuffing
    return template, message_from_bytes(data, policy=policy.default)


def test_the_email_has_list_headers_inlined_html_and_a_text_part(newsletter, edition_factory):
    edition = edition_factory(newsletter)
    token = make_unsubscribe_token(41)
    _, message = raw_message(edition, Recipient(1, 41, "ann@example.org", "Ann", token))
    assert message["To"] == "ann@example.org"
    assert message["From"] == "The Friday Lantern <newsroom@localhost>"
    assert message["Subject"] == edition.subject
    assert message["List-Id"] == "The Friday Lantern <friday-lantern.127.0.0.1>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = f"http://127.0.0.1:8000/newsletter/unsubscribe/{token}/"
    assert message["List-Unsubscribe"] == (
        f"<{unsubscribe}>, <mailto:unsubscribe@localhost?subject=unsubscribe%20{token}>")
    assert message["Message-ID"] == f"<edition-{edition.pk}.41@127.0.0.1>"
    assert message["Date"]
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert 'style="' in html and "<style>" in html and "@media" in html  # inlined, media kept
    assert "Hello Ann," in html and "Hello Ann," in text
    assert html.count(unsubscribe) == 1 and f"Unsubscribe with one click: {unsubscribe}" in text
    for item in edition.articles():
        assert item.article.title in html and item.article.full_url in text
    assert "The week in the Orlin valley" in html  # preheader
    assert 'src="http://127.0.0.1:8000/media/' in html  # absolute image URLs
    # No tracking: no pixels, no redirects through us.
    assert "/track" not in html and 'width="1"' not in html
    first = edition.articles()[0].article
    assert first.body[0].value.source[:40].split("<p>")[-1][:20] in html  # full text included


def test_personalisation_escapes_and_handles_other_languages(russian_newsletter, edition_factory):
    edition = edition_factory(russian_newsletter, subject="Лёд на реке и открытые контракты")
    template, message = raw_message(
        edition, Recipient(1, 7, "ivan@example.org", "<b>Иван</b>", "tok"))
    assert message["Subject"] == "Лёд на реке и открытые контракты"
    assert message["From"] == "Фонарь по пятницам <newsroom@localhost>"
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "Здравствуйте, &lt;b&gt;Иван&lt;/b&gt;!" in html and "<b>Иван</b>" not in html
    assert "Здравствуйте, <b>Иван</b>!" in text
    assert "/ru/newsletter/unsubscribe/tok/" in text
    _, anonymous = raw_message(edition, Recipient(1, 8, "x@example.org", "", "tok"))
    assert "Здравствуйте!" in anonymous.get_body(("plain",)).get_content()
    # Lines stay within SMTP's limit whatever the substitution.
    assert max(len(line) for line in template.raw(
        Recipient(1, 7, "ivan@example.org", "Иван" * 25, "t" * 80)).split(b"\r\n")) < 998


def test_unsubscribe_tokens_are_signed(newsletter):
    token = make_unsubscribe_token(12)
    assert read_unsubscribe_token(token) == 12
    from django.core.signing import BadSignature

    with pytest.raises(BadSignature):
        read_unsubscribe_token(token.replace("12.", "13.", 1))


def test_web_version_archive_and_preview_link(client, newsletter, edition_factory):
    edition = edition_factory(newsletter)
    draft = edition_factory(newsletter, subject="Not yet")
    assert client.get("/newsletter/latest/").status_code == 200  # "on its way" page
    delivery_run(delivery_start(edition, enqueue=False).pk)
    edition.refresh_from_db()
    url = edition.get_absolute_url()
    page = client.get(url)
    assert page.status_code == 200 and not page.cookies
    assert "public" in page["Cache-Control"]
    html = page.content.decode()
    assert edition.subject in html and edition.articles()[0].article.title in html
    assert "%%MASTHEAD" not in html and "unsubscribe/" not in html
    assert 'style="' not in html  # the reader's CSP allows no inline styles
    latest = client.get("/newsletter/latest/").content.decode()
    assert edition.subject in latest
    archive = client.get(f"/newsletter/{newsletter.slug}/").content.decode()
    assert url in archive and "Not yet" not in archive
    assert client.get(draft.get_absolute_url()).status_code == 404
    index = client.get("/newsletter/")
    assert index.status_code == 200 and f'href="{url}"' in index.content.decode()
    assert 'name="newsletter" value="friday-lantern"' in index.content.decode()


def test_next_default_send_time_is_friday_nine_local():
    newsletter = Newsletter(send_weekday=4, send_time=dt.time(9), timezone="Europe/Moscow")
    zone = zoneinfo.ZoneInfo("Europe/Moscow")
    wednesday = dt.datetime(2026, 11, 25, 12, 0, tzinfo=zone)
    assert newsletter.next_send_time(wednesday) == dt.datetime(2026, 11, 27, 9, 0, tzinfo=zone)
    friday_late = dt.datetime(2026, 11, 27, 9, 1, tzinfo=zone)
    assert newsletter.next_send_time(friday_late) == dt.datetime(2026, 12, 4, 9, 0, tzinfo=zone)


def test_scheduled_editions_start_on_time(newsletter, edition_factory):
    add_subscribers(newsletter, 2)
    due = edition_factory(newsletter)
    later = edition_factory(newsletter, subject="Later")
    now = timezone.now()
    Edition.objects.filter(pk=due.pk).update(status="scheduled", scheduled_at=now)
    Edition.objects.filter(pk=later.pk).update(
        status="scheduled", scheduled_at=now + dt.timedelta(hours=1))
    assert start_due_editions() == [due.pk]
    assert Delivery.objects.get().edition == due
    from django_tasks_db.models import DBTaskResult

    assert DBTaskResult.objects.filter(task_path="masthead.newsletters.tasks.deliver").exists()


@pytest.fixture
def editor(client, django_user_model):
    """A newsletter editor: admin access and the newsletter permissions, nothing else."""
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.create(name="Newsletter editors")
    group.permissions.set(
        Permission.objects.filter(content_type__app_label="newsletters")
        | Permission.objects.filter(codename="access_admin")
    )
    user = django_user_model.objects.create_user("ed", "ed@example.com", "pw-123456789")
    user.groups.add(group)
    client.force_login(user)
    return client


def test_admin_preview_test_send_schedule_send_and_progress(editor, newsletter, edition_factory):
    add_subscribers(newsletter, 3)
    edition = edition_factory(newsletter)
    assert editor.get("/admin/snippets/newsletters/edition/").status_code == 200
    edit = editor.get(f"/admin/snippets/newsletters/edition/edit/{edition.pk}/")
    assert edit.status_code == 200
    assert f"/admin/newsletters/edition/{edition.pk}/send/" in edit.content.decode()
    preview = edition.serve_preview(None, "")
    assert b"Hello," in preview.content and b"style=" in preview.content
    assert b"Hello," in edition.serve_preview(None, "text").content

    send_url = f"/admin/newsletters/edition/{edition.pk}/send/"
    page = editor.get(send_url)
    assert page.status_code == 200 and "3 confirmed subscribers" in page.content.decode()
    bad = editor.post(send_url, {"action": "test", "addresses": "ok@example.org, not-an-address"})
    assert bad.status_code == 400 and "not-an-address" in bad.content.decode()
    assert not mail.outbox
    editor.post(send_url, {"action": "test", "addresses": "a@example.org b@example.org"})
    assert [m.to for m in mail.outbox] == [["a@example.org"], ["b@example.org"]]
    assert mail.outbox[0].subject.startswith("[Test] ")
    assert Edition.objects.get(pk=edition.pk).status == "draft"

    past = editor.post(send_url, {"action": "schedule", "send_at": "2020-01-01T09:00"})
    assert past.status_code == 400 and "That time has passed" in past.content.decode()
    editor.post(send_url, {"action": "schedule", "send_at": "2099-01-02T09:00"})
    edition.refresh_from_db()
    assert edition.status == "scheduled"
    london = zoneinfo.ZoneInfo("Europe/London")
    assert edition.scheduled_at == dt.datetime(2099, 1, 2, 9, tzinfo=london)
    editor.post(send_url, {"action": "unschedule"})
    assert Edition.objects.get(pk=edition.pk).status == "draft"

    # "Send now" only leads to the confirmation page; its POST sends (tests/newsletters/
    # test_admin_editions.py has the details).
    asked = editor.post(send_url, {"action": "send_now"})
    assert asked.status_code == 302 and Edition.objects.get(pk=edition.pk).status == "draft"
    editor.post(asked["Location"])
    assert Edition.objects.get(pk=edition.pk).status == "sending"
    progress = editor.get(f"/admin/newsletters/edition/{edition.pk}/progress/").json()
    assert progress["total"] == 3 and progress["remaining"] == 3 and progress["status"] == "sending"
    again = editor.post(asked["Location"], follow=True)
    assert "already been sent" in again.content.decode()
    assert Delivery.objects.filter(edition=edition).count() == 1
    delivery_run(Delivery.objects.get().pk)
    done = editor.get(f"/admin/newsletters/edition/{edition.pk}/progress/").json()
    assert done["sent"] == 3 and done["remaining"] == 0 and done["status"] == "done"
    assert "Sent" in editor.get(send_url).content.decode()


def test_admin_lists_newsletters_and_subscribers(editor, newsletter):
    add_subscribers(newsletter, 2)
    listing = editor.get("/admin/snippets/newsletters/subscription/")
    assert listing.status_code == 200 and "reader1@example.org" in listing.content.decode()
    assert editor.get("/admin/snippets/newsletters/newsletter/").status_code == 200
    from masthead.newsletters.models import Subscription

    pk = Subscription.objects.first().pk
    assert editor.get(f"/admin/snippets/newsletters/subscription/inspect/{pk}/").status_code == 200


def test_admin_cannot_add_a_subscription_behind_the_readers_back(editor, newsletter):
    """Subscriptions come only from double opt-in: no add button, and the add view refuses."""
    from masthead.newsletters.models import Subscription

    listing = editor.get("/admin/snippets/newsletters/subscription/").content.decode()
    assert "/admin/snippets/newsletters/subscription/add/" not in listing
    for method in (editor.get, editor.post):
        response = method("/admin/snippets/newsletters/subscription/add/")
        assert response.status_code in (302, 403)
    assert not Subscription.objects.exists()


def test_admin_pages_need_permission(client, django_user_model, newsletter, edition_factory):
    edition = edition_factory(newsletter)
    assert client.get(f"/admin/newsletters/edition/{edition.pk}/send/").status_code == 302
    user = django_user_model.objects.create_user("reader", "r@example.com", "pw-123456789")
    client.force_login(user)
    response = client.get(f"/admin/newsletters/edition/{edition.pk}/progress/")
    assert response.status_code in (302, 403)


def test_no_click_tracking_by_default_and_only_aggregate_counts_when_on(
    client, newsletter, edition_factory, settings
):
    from masthead.newsletters.models import EditionLink

    edition = edition_factory(newsletter)
    article_url = edition.articles()[0].article.full_url
    assert f'href="{article_url}"' in render_edition(edition).html
    assert not EditionLink.objects.exists()

    settings.MASTHEAD_NEWSLETTER_CLICK_COUNTS = True
    html = render_edition(edition).html
    assert f'href="{article_url}"' not in html and "/newsletter/r/" in html
    assert "%%MASTHEAD_UNSUBSCRIBE%%" in html  # the unsubscribe link is never rewritten
    link = EditionLink.objects.get(edition=edition, url=article_url)
    path = f"/newsletter/r/{edition.pk}/{link.pk}/"
    assert path in html
    for _ in range(2):
        response = client.get(path)
        # It continues on the host the click came in on (here the test client's).
        on_host = "http://testserver" + edition.articles()[0].article.url
        assert response.status_code == 302 and response["Location"] == on_host
        assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    link.refresh_from_db()
    assert link.clicks == 2
    # Only the edition's own links exist: no open redirect.
    assert client.get(f"/newsletter/r/{edition.pk + 1}/{link.pk}/").status_code == 404


@pytest.mark.parametrize("edition_id, link_id", [
    (2**63, 1), (1, 2**63), (10**30, 10**30), (2**31, 1), (0, 0),
])
def test_click_counter_ids_out_of_any_database_range_are_404(
    client, newsletter, edition_factory, edition_id, link_id
):
    edition_factory(newsletter)
    response = client.get(f"/newsletter/r/{edition_id}/{link_id}/")
    assert response.status_code == 404


def test_admin_live_preview_can_be_framed_by_the_admin(editor, newsletter, edition_factory):
    from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text

    edition = edition_factory(newsletter)
    items = [{"article": item.article_id, "full_text": item.full_text, "id": item.pk,
              "ORDER": index} for index, item in enumerate(edition.items.all())]
    data = nested_form_data({
        "newsletter": newsletter.pk,
        "subject": "Changed in the editor, not saved yet",
        "preheader": "",
        "intro": rich_text("<p>Live intro</p>"),
        "items": inline_formset(items, initial=len(items)),
    })
    url = f"/admin/snippets/newsletters/edition/preview/{edition.pk}/"
    assert editor.post(url, data).json()["is_valid"] is True
    for mode, marker in (("", b"Live intro"), ("text", b"Live intro")):
        response = editor.get(url, {"mode": mode, "in_preview_panel": "true"})
        assert response.status_code == 200 and marker in response.content
        assert "frame-ancestors" not in response.get("Content-Security-Policy", "")
        assert response.get("X-Frame-Options", "SAMEORIGIN") == "SAMEORIGIN"
