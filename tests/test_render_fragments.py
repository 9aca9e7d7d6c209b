"""Shared fragments of reader pages (masthead.core.fragments, issue 12): the banner, appeal,
sign-up block, section list, story cards, read-more, JSON-LD and Wagtail's routing are built
once per publication generation and reused — and never carry one language's, one host's, one
page's or one request's content into another's page, nor outlive a publication.

Every render here is a page-cache miss (``MASTHEAD_PAGE_CACHE`` off), so what repeats between
two renders comes from the fragments.
"""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from wagtail.models import PageViewRestriction, Site

from masthead.campaigns.models import Variant
from masthead.core import fragments
from masthead.publishing.models import ArticlePage
from tests.campaigns.factories import make_campaign

pytestmark = pytest.mark.django_db

MAIN = "lantern.example"
MIRROR = "mirror.example"
ONION = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuv.onion"
ORIGIN = {MIRROR: f"https://{MIRROR}", ONION: f"http://{ONION}", MAIN: f"https://{MAIN}"}


@pytest.fixture(autouse=True)
def _uncached_pages(settings):
    settings.MASTHEAD_PAGE_CACHE = False
    fragments.clear()


def _articles(language: str = "en") -> list[ArticlePage]:
    return list(
        ArticlePage.objects.live().filter(locale__language_code=language).order_by("pk")
    )


def _get(client: Client, url: str, **extra) -> str:
    response = client.get(url, **extra)
    assert response.status_code == 200, url
    return response.content.decode()


def _block(html: str, start: str, end: str) -> str:
    begin = html.index(start)
    return html[begin:html.index(end, begin) + len(end)]


def test_each_language_gets_its_own_banner_signup_and_navigation(demo, client):
    make_campaign("banner", name="English banner")
    make_campaign("banner", language="ru", name="Russian banner")
    en, ru = _articles("en")[0], _articles("ru")[0]
    # Russian first, so an English page would find Russian fragments if keys ignored language.
    for url in (ru.url, en.url, ru.url, en.url):
        html = _get(client, url)
        ours, theirs = ("English", "Russian") if url == en.url else ("Russian", "English")
        assert f"Heading A of {ours} banner" in html
        assert f"Heading A of {theirs} banner" not in html
        signup = _block(html, '<aside class="newsletter-signup"', "</aside>")
        nav = _block(html, '<nav class="site-nav"', "</nav>")
        if url == ru.url:
            assert "/ru/" in nav and 'href="/newsletter/' not in signup
        else:
            assert "/ru/" not in nav and "/ru/" not in signup


@pytest.fixture
def mirrored(settings, demo):
    settings.MASTHEAD_BASE_URL = f"https://{MAIN}"
    settings.MASTHEAD_MIRROR_HOSTS = [MIRROR]
    settings.MASTHEAD_ONION_HOST = ONION
    settings.ALLOWED_HOSTS = [MAIN, MIRROR, ONION]
    site = Site.objects.get(is_default_site=True)
    site.hostname, site.port = MAIN, 443
    site.save()
    return demo


def test_each_host_gets_its_own_absolute_links(mirrored, client):
    article = _articles()[0]
    for host in (MIRROR, ONION, MAIN, MIRROR, ONION, MAIN):
        html = _get(client, article.url, HTTP_HOST=host, secure=host != ONION)
        data = json.loads(re.search(r'application/ld\+json" nonce="[^"]*">(.*?)</script>',
                                    html, re.S).group(1))
        assert data["mainEntityOfPage"]["@id"] == ORIGIN[host] + article.url
        assert data["publisher"]["url"] == ORIGIN[host] + "/"
        for other in {MAIN, MIRROR, ONION} - {host}:
            assert other not in json.dumps(data), (host, other)


def test_the_appeal_is_shared_but_names_its_own_page(demo, client):
    make_campaign("appeal", name="Shared appeal")
    first, second = _articles()[:2]
    assert first.get_parent().pk == second.get_parent().pk  # one section: one shared build
    for article in (first, second, first):
        slot = _block(_get(client, article.url), '<div class="appeal-slot"', "</form>")
        assert f'data-article="{article.pk}"' in slot
        assert f'name="return_to" value="{article.url}#' in slot
        other = second if article is first else first
        assert other.url not in slot and f'data-article="{other.pk}"' not in slot
        assert "masthead-appeal-page" not in slot


def test_nothing_per_request_is_shared(demo, client):
    """The CSP nonce changes with every response, and matches its own header."""
    article = _articles()[0]
    nonces = []
    for _ in range(3):
        response = client.get(article.url)
        nonce = re.search(r'application/ld\+json" nonce="([^"]+)"',
                          response.content.decode()).group(1)
        assert f"'nonce-{nonce}'" in response["Content-Security-Policy"]
        assert "csrfmiddlewaretoken" not in response.content.decode()
        nonces.append(nonce)
    assert len(set(nonces)) == 3


def test_a_publication_renews_every_fragment(demo, client, django_capture_on_commit_callbacks):
    banner = make_campaign("banner", name="Winter banner")
    article = _articles()[0]
    assert "Heading A of Winter banner" in _get(client, article.url)
    variant = Variant.objects.get(campaign=banner)
    variant.heading = "Spring is here"
    with django_capture_on_commit_callbacks(execute=True):
        variant.save()
    html = _get(client, article.url)
    assert "Spring is here" in html and "Heading A of Winter banner" not in html

    # A new headline reaches the cards that list it and the routes, without any other signal.
    other = _articles()[1]
    other.title = "A headline written after the first render"
    other.save_revision().publish()
    assert "A headline written after the first render" in _get(client, "/")
    assert "A headline written after the first render" in _get(client, other.url)


def test_unpublished_and_restricted_pages_are_not_served_from_remembered_routes(demo, client):
    article, other = _articles()[:2]
    _get(client, article.url), _get(client, other.url)
    article.unpublish()
    assert client.get(article.url).status_code == 404
    PageViewRestriction.objects.create(page=other, restriction_type="password", password="x")
    response = client.get(other.url)
    assert response.status_code == 200 and other.title not in response.content.decode()
    assert "password" in response.content.decode().lower()


def test_editors_never_share_fragments(demo, client, django_user_model):
    article = _articles()[0]
    _get(client, article.url)
    editor = django_user_model.objects.create_superuser("ed", "ed@example.org", "pw")
    client.force_login(editor)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as anonymous_reader_queries:
        Client().get(article.url)
    with CaptureQueriesContext(connection) as editor_queries:
        client.get(article.url)
    # The editor's render builds everything afresh (routing included), the reader's does not.
    assert len(editor_queries) > len(anonymous_reader_queries)
