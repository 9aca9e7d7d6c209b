"""Editors in Wagtail's admin: writing a draft, previewing it, revisions, scheduled publishing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from wagtail.models import Revision
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text, streamfield

from masthead.core import scheduler
from masthead.publishing.models import ArticlePage, Author, SectionPage

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client, django_user_model):
    user = django_user_model.objects.create_superuser("editor", "ed@example.com", "pw-1234567890")
    client.force_login(user)
    return client


def article_form(title: str, **extra) -> dict:
    author = Author.objects.get(name="Mira Castellan")
    data = {
        "title": title,
        "slug": re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"),
        "standfirst": "What the editor wrote under the headline.",
        "body": streamfield([
            ("paragraph", rich_text("<p>The first paragraph of the draft.</p>")),
            ("subhead", "A subhead"),
            ("quote", {"quote": "Every word is checked.", "attribution": "The desk"}),
        ]),
        "article_authors": inline_formset([{"author": author.pk}]),
        "related_links": inline_formset([]),
        "tags": "drafts, desk",
        "lead_caption": "",
        "published_at": "",
        "updated_at": "",
        "seo_title": "",
        "search_description": "",
        "go_live_at": "",
        "expire_at": "",
    }
    data.update(extra)
    return nested_form_data(data)


def add_url(section: SectionPage) -> str:
    return f"/admin/pages/add/publishing/articlepage/{section.pk}/"


def test_admin_edit_page_loads_for_an_editor(demo, editor):
    article = ArticlePage.objects.get(external_id="demo-001")
    response = editor.get(f"/admin/pages/{article.pk}/edit/")
    assert response.status_code == 200
    html = response.content.decode()
    assert article.title in html
    for label in ("Standfirst", "Lead image", "Read more", "Authors"):
        assert label in html, label
    # The image library shows credit and licence fields to editors.
    image = article.lead_image
    assert editor.get(f"/admin/images/{image.pk}/").status_code == 200
    assert "Licence" in editor.get(f"/admin/images/{image.pk}/").content.decode()


def test_admin_requires_login(demo, client):
    article = ArticlePage.objects.get(external_id="demo-001")
    response = client.get(f"/admin/pages/{article.pk}/edit/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_draft_written_in_the_admin_is_not_visible_to_readers(demo, editor, client):
    section = SectionPage.objects.get(title="News")
    response = editor.post(add_url(section), article_form("Draft about the dam"))
    assert response.status_code == 302, response.content.decode()[:3000]
    page = ArticlePage.objects.get(title="Draft about the dam")
    assert not page.live and page.has_unpublished_changes
    assert [b.block_type for b in page.get_latest_revision_as_object().body] == [
        "paragraph", "subhead", "quote"
    ]

    editor.logout()
    assert client.get(f"{section.url}draft-about-the-dam/").status_code == 404
    assert "Draft about the dam" not in client.get("/").content.decode()
    assert "Draft about the dam" not in client.get("/feeds/rss/").content.decode()
    assert "draft-about-the-dam" not in client.get("/sitemap.xml").content.decode()


def test_preview_renders_the_unsaved_article(demo, editor):
    article = ArticlePage.objects.get(external_id="demo-002")
    url = f"/admin/pages/{article.pk}/edit/preview/"
    form = article_form("A headline only the editor sees", slug=article.slug)
    state = editor.post(url, form)
    assert state.status_code == 200
    assert state.json()["is_valid"] is True
    preview = editor.get(url)
    assert preview.status_code == 200
    html = preview.content.decode()
    assert "<h1>A headline only the editor sees</h1>" in html
    assert "Every word is checked." in html
    # Nothing was saved or published by previewing.
    article.refresh_from_db()
    assert article.title != "A headline only the editor sees"


def test_revisions_are_kept_and_viewable(demo, editor):
    article = ArticlePage.objects.get(external_id="demo-003")
    before = Revision.page_revisions.filter(object_id=str(article.pk)).count()
    for title in ("First rewrite of the story", "Second rewrite of the story"):
        response = editor.post(f"/admin/pages/{article.pk}/edit/",
                               article_form(title, slug=article.slug))
        assert response.status_code == 302, response.content.decode()[:3000]
    revisions = Revision.page_revisions.filter(object_id=str(article.pk)).order_by("-created_at")
    assert revisions.count() == before + 2
    assert revisions[0].as_object().title == "Second rewrite of the story"
    history = editor.get(f"/admin/pages/{article.pk}/history/")
    assert history.status_code == 200
    old = revisions[1]
    view = editor.get(f"/admin/pages/{article.pk}/revisions/{old.pk}/view/")
    assert view.status_code == 200 and "First rewrite of the story" in view.content.decode()
    # Saving drafts does not change what readers see until publication.
    article.refresh_from_db()
    assert article.live and article.title not in ("Second rewrite of the story",)


def test_scheduled_article_goes_live_when_the_scheduler_runs(
    transactional_db, demo, editor, client
):
    # transactional_db: the scheduler runs jobs in autocommit mode, as in its own process.
    section = SectionPage.objects.get(title="Features")
    go_live = timezone.localtime() + timedelta(hours=1)
    form = article_form("Embargoed: the budget", go_live_at=go_live.strftime("%Y-%m-%d %H:%M"),
                        **{"action-publish": "action-publish"})
    response = editor.post(add_url(section), form)
    assert response.status_code == 302, response.content.decode()[:3000]
    page = ArticlePage.objects.get(title="Embargoed: the budget")
    assert not page.live
    revision = page.latest_revision
    assert revision.approved_go_live_at is not None  # scheduled, not published
    editor.logout()
    assert client.get(page.url or f"{section.url}embargoed-the-budget/").status_code == 404

    scheduler.JOBS["wagtail.publish_scheduled"].next_run = 0
    scheduler.run_due()  # before the embargo: nothing happens
    page.refresh_from_db()
    assert not page.live

    # The embargo passes (moved back rather than waiting an hour).
    past = timezone.now() - timedelta(minutes=1)
    revision.content["go_live_at"] = past.isoformat()
    revision.approved_go_live_at = past
    revision.save(update_fields=["content", "approved_go_live_at"])
    scheduler.JOBS["wagtail.publish_scheduled"].next_run = 0
    from masthead.core.state import state_store

    state_store().clear()  # the scheduler's once-per-interval lock from the first run
    ran = scheduler.run_due()
    assert "wagtail.publish_scheduled" in ran
    page.refresh_from_db()
    assert page.live and page.published_at is not None
    response = client.get(page.url)
    assert response.status_code == 200
    assert "Embargoed: the budget" in client.get("/").content.decode()
