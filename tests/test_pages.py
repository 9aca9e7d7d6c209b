"""The reader's pages: the article page's anatomy, headers, caching, structured data."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from masthead.publishing.models import ArticlePage

pytestmark = pytest.mark.django_db


def first_article(language="en") -> ArticlePage:
    return (
        ArticlePage.objects.live()
        .filter(locale__language_code=language, translation_key__in=ArticlePage.objects.filter(
            locale__language_code="ru").values("translation_key"))
        .order_by("-published_at")
        .first()
    )


def test_article_page_renders_the_seven_blocks_in_order(demo, client: Client):
    article = first_article()
    response = client.get(article.url)
    assert response.status_code == 200
    html = response.content.decode()
    markers = [
        'class="support-banner',  # 1 banner
        "<h1>",  # 2 headline
        "<figcaption>",  # 3 lead image
        'class="article-body"',  # 4 body
        'class="newsletter-signup"',  # 5 newsletter sign-up
        'class="appeal"',  # 6 appeal
        'class="read-more"',  # 7 read more
    ]
    positions = [html.index(marker) for marker in markers]
    assert positions == sorted(positions), dict(zip(markers, positions, strict=True))
    assert "<header" in html and "<article" in html and "<figure>" in html
    assert "<aside" in html and "<nav" in html


def test_lead_image_credit_links_the_creative_commons_deed(demo, client):
    article = ArticlePage.objects.get(external_id="demo-001")
    html = client.get(article.url).content.decode()
    caption = re.search(r"<figcaption>(.*?)</figcaption>", html, re.S).group(1)
    assert "The ferry landing at Orlin Quay" in caption
    assert "Tomas Reyne (" in caption
    deed = "https://creativecommons.org/licenses/by/2.0/"
    assert f'<a href="{deed}" rel="license">CC BY 2.0</a>' in caption


def test_all_rights_reserved_credit_has_no_deed_link(demo, client):
    article = ArticlePage.objects.get(external_id="demo-004")
    html = client.get(article.url).content.decode()
    caption = re.search(r"<figcaption>(.*?)</figcaption>", html, re.S).group(1)
    assert "Sami Hart (All rights reserved)" in caption
    assert "creativecommons" not in caption


def test_jsonld_newsarticle_has_required_fields(demo, client):
    article = ArticlePage.objects.get(external_id="demo-002")
    html = client.get(article.url).content.decode()
    pattern = r'<script type="application/ld\+json" nonce="[^"]+">(.*?)</script>'
    raw = re.search(pattern, html, re.S).group(1)
    data = json.loads(raw)
    assert data["@type"] == "NewsArticle"
    assert data["headline"] == article.title
    assert data["image"][0].startswith("http")
    assert data["datePublished"] and data["dateModified"]
    assert [a["name"] for a in data["author"]] == ["Jonah Adebayo", "Mira Castellan"]
    assert data["publisher"]["name"] == "The Lantern"


def test_canonical_hreflang_and_social_tags(demo, client):
    article = ArticlePage.objects.get(external_id="demo-001")
    html = client.get(article.url).content.decode()
    assert f'<link rel="canonical" href="{article.full_url}">' in html
    russian = ArticlePage.objects.get(external_id="demo-009")
    assert f'hreflang="ru" href="{russian.full_url}"' in html
    for prop in ("og:title", "og:image", "og:url", "og:type"):
        assert f'property="{prop}"' in html
    assert 'name="twitter:card" content="summary_large_image"' in html


def test_russian_article_is_served_in_russian(demo, client):
    russian = ArticlePage.objects.get(external_id="demo-009")
    response = client.get(russian.url)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="ru"' in html
    assert russian.title in html


def test_reader_pages_set_no_cookies_and_are_cacheable(demo, client):
    for url in ["/", "/news/", ArticlePage.objects.first().url, "/feeds/rss/", "/sitemap.xml"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert not response.cookies, (url, response.cookies)
        cache_control = response["Cache-Control"]
        assert "public" in cache_control and "s-maxage" in cache_control, url
        assert "Cookie" not in response.get("Vary", ""), url


def test_page_cache_serves_repeat_hits_and_publishing_invalidates(demo, client):
    home = client.get("/")
    assert home["X-Masthead-Cache"] == "miss"
    assert client.get("/")["X-Masthead-Cache"] == "hit"
    article = ArticlePage.objects.get(external_id="demo-003")
    article.title = "A brand new headline for the press"
    article.save_revision().publish()
    again = client.get("/")
    assert again["X-Masthead-Cache"] == "miss"
    assert "A brand new headline for the press" in again.content.decode()


def test_security_headers(demo, client):
    response = client.get("/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "object-src 'none'" in csp
    # The one inline script (JSON-LD) carries the nonce the header names.
    article = client.get(ArticlePage.objects.first().url)
    nonce = re.search(r"'nonce-([^']+)'", article["Content-Security-Policy"]).group(1)
    assert f'<script type="application/ld+json" nonce="{nonce}">' in article.content.decode()
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "camera=()" in response["Permissions-Policy"]


def test_logged_in_editor_is_not_served_or_stored_in_the_page_cache(
    demo, client, django_user_model
):
    user = django_user_model.objects.create_superuser("ed", "ed@example.com", "pw-123456789")
    client.force_login(user)
    response = client.get("/")
    assert "private" in response["Cache-Control"]
    assert "X-Masthead-Cache" not in response


def test_admin_preview_of_an_article_may_be_framed_by_the_admin(demo, admin_client):
    """Reader pages forbid framing; the admin's preview frame of a page must still load."""
    from tests.test_admin_publishing import article_form

    article = ArticlePage.objects.get(external_id="demo-001")
    url = f"/admin/pages/{article.id}/edit/preview/"
    assert admin_client.post(url, article_form("Preview headline", slug=article.slug)).json()[
        "is_valid"
    ]
    response = admin_client.get(url)
    assert response.status_code == 200
    assert "<h1>Preview headline</h1>" in response.content.decode()
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in csp and "frame-ancestors 'none'" not in csp
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert "public" not in response.get("Cache-Control", "")
    # …while the published page itself still may not be framed by anyone.
    admin_client.logout()
    assert "frame-ancestors 'none'" in admin_client.get(article.url)["Content-Security-Policy"]


def test_russian_article_page_speaks_russian_throughout(demo, client):
    russian = ArticlePage.objects.get(external_id="demo-009")
    html = client.get(russian.url).content.decode()
    for phrase in ("Читайте также", "Перейти к содержанию", "Поддержите нас", "Автор:"):
        assert phrase in html, phrase
    for english in (">Read more<", ">Skip to content<", ">By <"):
        assert english not in html, english
    results = client.get("/ru/search/?q=паром").content.decode()
    assert "результат" in results


def test_new_article_headline_fills_the_slug_in_the_admin(demo, admin_client):
    """The headline field carries Wagtail's title-to-slug sync, so a first save needs no slug."""
    from masthead.publishing.models import SectionPage

    section = SectionPage.objects.get(slug="news")
    add_url = f"/admin/pages/add/publishing/articlepage/{section.id}/"
    html = admin_client.get(add_url).content.decode()
    title_input = re.search(r'<input[^>]*name="title"[^>]*>', html).group(0)
    assert "w-sync" in title_input and "slug" in title_input, title_input


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/support/checkout/", "This address takes forms only"),
        ("/ru/support/checkout/", "По этому адресу принимаются только формы"),
    ],
)
def test_opening_a_forms_address_shows_a_page_a_browser_can_read(site, client, path, words):
    """Django's 405 is empty; the page filled in must also fix Content-Length, which
    CommonMiddleware had set to 0 (a browser then shows nothing; the test client reads on)."""
    response = client.get(path)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert words in response.content.decode()
    assert response["Content-Length"] == str(len(response.content))
