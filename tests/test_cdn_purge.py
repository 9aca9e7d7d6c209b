"""Publishing purges a CDN in front: the page (Wagtail) and the pages that list it (core)."""

from __future__ import annotations

import pytest
from wagtail.contrib.frontend_cache.backends import BaseBackend

from masthead.publishing.models import ArticlePage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _immediate_tasks(settings):
    """Wagtail purges through a background task; run tasks at once here."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

PURGED: list[str] = []


class RecordingBackend(BaseBackend):
    """A frontend-cache backend that records what would be purged."""

    def purge(self, url):
        PURGED.append(url)


def test_publishing_an_article_purges_its_listings(
    demo, settings, django_capture_on_commit_callbacks
):
    settings.WAGTAILFRONTENDCACHE = {"test": {"BACKEND": "tests.test_cdn_purge.RecordingBackend"}}
    PURGED.clear()
    article = ArticlePage.objects.get(external_id="demo-004")
    with django_capture_on_commit_callbacks(execute=True):
        article.title = "Tram line 4 will run all night"
        article.save_revision().publish()
    root = article.get_site().root_url
    paths = {url.removeprefix(root) for url in PURGED}
    for expected in ("/news/", "/", "/feeds/rss/", "/feeds/atom/", "/feeds/news/rss/",
                     "/feeds/news/atom/", "/sitemap.xml", "/news-sitemap.xml"):
        assert expected in paths, (expected, sorted(paths))


def test_russian_article_purges_the_russian_feeds(
    demo, settings, django_capture_on_commit_callbacks
):
    settings.WAGTAILFRONTENDCACHE = {"test": {"BACKEND": "tests.test_cdn_purge.RecordingBackend"}}
    PURGED.clear()
    article = ArticlePage.objects.get(external_id="demo-011")
    with django_capture_on_commit_callbacks(execute=True):
        article.save_revision().publish()
    root = article.get_site().root_url
    paths = {url.removeprefix(root) for url in PURGED}
    assert "/ru/feeds/rss/" in paths and "/ru/" in paths, sorted(paths)
