"""How readers and machines find articles: RSS/Atom feeds, sitemaps, JSON-LD and search."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote, urlsplit

import pytest
from django.utils import timezone

from masthead.publishing.models import ArticlePage, SectionPage

pytestmark = pytest.mark.django_db

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "sm": "http://www.sitemaps.org/schemas/sitemap/0.9",
    "news": "http://www.google.com/schemas/sitemap-news/0.9",
    "xhtml": "http://www.w3.org/1999/xhtml",
}


def get_xml(client, url: str) -> ET.Element:
    response = client.get(url)
    assert response.status_code == 200, url
    assert "xml" in response["Content-Type"], (url, response["Content-Type"])
    assert not response.cookies
    return ET.fromstring(response.content)  # noqa: S314 - our own output, under test


def path_of(url: str) -> str:
    return unquote(urlsplit(url).path)


def live(language: str, section: str | None = None):
    qs = ArticlePage.objects.live().filter(locale__language_code=language)
    if section:
        qs = qs.filter(path__startswith=SectionPage.objects.get(title=section).path)
    return qs


def check_rss(root: ET.Element, expected: dict[str, ArticlePage]) -> None:
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel.findtext("title") and channel.findtext("link").startswith("http")
    items = channel.findall("item")
    assert {path_of(item.findtext("link")) for item in items} == set(expected)
    for item in items:
        page = expected[path_of(item.findtext("link"))]
        assert item.findtext("title") == page.title
        assert item.findtext("guid")
        published = parsedate_to_datetime(item.findtext("pubDate"))
        assert published == page.published_at.replace(microsecond=0)
        creators = [c.text for c in item.findall("dc:creator", NS)]
        assert creators == [a.name for a in page.authors]
        full_text = item.findtext("content:encoded", namespaces=NS)
        # Full text: every paragraph of the body is in the feed, not just a summary.
        for block in page.body:
            if block.block_type == "paragraph":
                first_words = re.sub(r"<[^>]+>", "", str(block.value))[:40]
                assert first_words.split("&")[0].split("’")[0][:20] in full_text
        if page.lead_image:
            assert "<figure><img src=\"http" in full_text
            assert page.lead_image.credit in full_text


def check_atom(root: ET.Element, expected: dict[str, ArticlePage]) -> None:
    assert root.tag == f"{{{NS['atom']}}}feed"
    assert root.findtext("atom:title", namespaces=NS)
    assert root.findtext("atom:updated", namespaces=NS)
    entries = root.findall("atom:entry", NS)
    links = {path_of(e.find("atom:link", NS).get("href")) for e in entries}
    assert links == set(expected)
    for entry in entries:
        assert entry.findtext("atom:title", namespaces=NS)
        assert entry.findtext("atom:published", namespaces=NS)
        assert entry.findtext("atom:updated", namespaces=NS)
        assert entry.findtext("atom:author/atom:name", namespaces=NS)
        content = entry.find("atom:content", NS)
        assert content.get("type") == "html" and "<p>" in content.text


def urls(qs) -> dict[str, ArticlePage]:
    return {unquote(page.url): page for page in qs}


def test_site_wide_feeds_in_each_language(demo, client):
    check_rss(get_xml(client, "/feeds/rss/"), urls(live("en")))
    check_atom(get_xml(client, "/feeds/atom/"), urls(live("en")))
    check_rss(get_xml(client, "/ru/feeds/rss/"), urls(live("ru")))
    check_atom(get_xml(client, "/ru/feeds/atom/"), urls(live("ru")))


def test_section_feeds_carry_only_that_section(demo, client):
    news = SectionPage.objects.get(title="News")
    features = SectionPage.objects.get(title="Features")
    check_rss(get_xml(client, f"/feeds/{news.slug}/rss/"), urls(live("en", "News")))
    check_atom(get_xml(client, f"/feeds/{features.slug}/atom/"), urls(live("en", "Features")))
    russian = SectionPage.objects.get(title="Новости")
    url = f"/ru/feeds/{quote(russian.slug)}/rss/"
    check_rss(get_xml(client, url), urls(live("ru", "Новости")))
    channel_title = get_xml(client, url).find("channel").findtext("title")
    assert channel_title.startswith("Новости")


def test_unknown_section_feed_is_404(demo, client):
    assert client.get("/feeds/no-such-section/rss/").status_code == 404
    # An English section does not exist under the Russian prefix.
    assert client.get("/ru/feeds/news/atom/").status_code == 404


def test_feed_escapes_hostile_text(demo, client):
    article = ArticlePage.objects.get(external_id="demo-001")
    article.title = 'Ice & "fire" <script>alert(1)</script>'
    article.save_revision().publish()
    root = get_xml(client, "/feeds/rss/")  # still well-formed XML
    titles = [item.findtext("title") for item in root.iter("item")]
    assert 'Ice & "fire" <script>alert(1)</script>' in titles


def test_sitemap_lists_pages_in_all_languages(demo, client):
    root = get_xml(client, "/sitemap.xml")
    locs = {loc.text for loc in root.iter(f"{{{NS['sm']}}}loc")}
    assert all(loc.startswith("http") for loc in locs)
    paths = {path_of(loc) for loc in locs}
    for page in ArticlePage.objects.live():
        assert path_of(page.full_url) in paths, page.url
    assert "/" in paths and "/ru/" in paths
    assert any(p.startswith("/ru/") and p.count("/") > 3 for p in paths)  # a Russian article
    assert get_xml(client, "/sitemap.xml") is not None  # repeatable (cached)
    lastmods = [e.text for e in root.iter(f"{{{NS['sm']}}}lastmod")]
    assert lastmods  # search engines get modification dates


def test_news_sitemap_holds_only_the_last_48_hours(demo, client):
    root = get_xml(client, "/news-sitemap.xml")
    since = timezone.now() - timedelta(hours=48)
    # URLs on the host the sitemap was read from (the test client's), like a mirror's.
    recent = {on_host(page) for page in ArticlePage.objects.live().filter(published_at__gte=since)}
    old = {on_host(page) for page in ArticlePage.objects.live().filter(published_at__lt=since)}
    assert recent and old  # the demo has both
    entries = root.findall("sm:url", NS)
    assert {e.findtext("sm:loc", namespaces=NS) for e in entries} == recent
    languages = set()
    for entry in entries:
        page = ArticlePage.objects.get(title=entry.findtext("news:news/news:title", namespaces=NS))
        name = entry.findtext("news:news/news:publication/news:name", namespaces=NS)
        assert name == "The Lantern"
        language = entry.findtext("news:news/news:publication/news:language", namespaces=NS)
        assert language == page.locale.language_code
        languages.add(language)
        published = entry.findtext("news:news/news:publication_date", namespaces=NS)
        assert timezone.datetime.fromisoformat(published) == page.published_at
    assert languages == {"en", "ru"}


def test_robots_txt_points_at_both_sitemaps(client):
    body = client.get("/robots.txt").content.decode()
    assert re.search(r"^Sitemap: http\S+/sitemap\.xml$", body, re.M)
    assert re.search(r"^Sitemap: http\S+/news-sitemap\.xml$", body, re.M)


def on_host(page) -> str:
    """The page's absolute URL on the test client's host, as reader responses write it."""
    return "http://testserver" + page.url


def jsonld(client, page) -> dict:
    html = client.get(page.url).content.decode()
    blocks = re.findall(r'<script type="application/ld\+json"[^>]*>(.*?)</script>', html, re.S)
    assert len(blocks) == 1
    return json.loads(blocks[0])


@pytest.mark.parametrize("external_id", ["demo-001", "demo-009"])
def test_jsonld_news_article(demo, client, external_id):
    page = ArticlePage.objects.get(external_id=external_id)
    data = jsonld(client, page)
    assert data["@context"] == "https://schema.org" and data["@type"] == "NewsArticle"
    assert data["headline"] == page.title
    assert data["inLanguage"] == page.locale.language_code
    assert data["mainEntityOfPage"]["@id"] == on_host(page)  # the host it was read on
    image = data["image"][0]
    assert image.startswith("http") and client.get(path_of(image)).status_code == 200
    published = timezone.datetime.fromisoformat(data["datePublished"])
    modified = timezone.datetime.fromisoformat(data["dateModified"])
    # to the second, as every machine-readable date on the reader's pages (the Nu Html
    # Checker refuses microseconds in <time datetime>, issue 13)
    assert published == page.published_at.replace(microsecond=0) and modified >= published
    assert "." not in data["datePublished"] and "." not in data["dateModified"]
    assert data["author"] and all(a["@type"] == "Person" and a["name"] for a in data["author"])
    assert data["publisher"]["@type"] == "NewsMediaOrganization"
    # the outlet's name in the page's language (issue 13: the Russian site is «Фонарь»)
    outlet = {"en": "The Lantern", "ru": "Фонарь"}[page.locale.language_code]
    assert data["publisher"]["name"] == outlet
    assert data["publisher"]["logo"]["url"].startswith("http")
    assert data["publisher"]["url"].startswith("http")


def test_jsonld_cannot_be_broken_out_of(demo, client):
    page = ArticlePage.objects.get(external_id="demo-003")
    page.title = "</script><script>alert(1)</script>"
    page.save_revision().publish()
    html = client.get(page.url).content.decode()
    assert "</script><script>alert(1)" not in html
    assert jsonld(client, page)["headline"] == page.title


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_search_finds_articles_in_the_current_language(demo, subprocess_env, client):
    # Wagtail indexes pages in a background task: run the real worker once, as production does.
    worker = [sys.executable, "-m", "masthead.cli", "db_worker", "--batch", "--no-startup-delay",
              "--queue-name", "*", "--no-reload"]
    done = subprocess.run(worker, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    english = ArticlePage.objects.get(external_id="demo-001")
    assert "ferry" in english.title.lower()
    response = client.get("/search/", {"q": "ferry"})
    assert response.status_code == 200 and not response.cookies
    assert english.url in response.content.decode()
    russian = ArticlePage.objects.get(external_id="demo-009")
    ru_html = client.get("/ru/search/", {"q": russian.title.split()[-1]}).content.decode()
    assert russian.url in ru_html
    assert english.url not in ru_html  # results stay in the page's language
    nothing = client.get("/search/", {"q": "zzzqqqxxx"})
    assert nothing.status_code == 200 and "0 results" in nothing.content.decode()


def test_search_rejects_overlong_query_clearly(demo, client):
    response = client.get("/search/", {"q": "a" * 201})
    assert response.status_code == 400
    assert "at most 200 characters" in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "\x00nul",
        "!!! ((( ))) & | : * ~ ^",
        '"unbalanced',
        "AND OR NOT",
        "ёлка 雪 🙂",
        "%00%ff",
    ],
)
def test_hostile_search_queries_never_500(demo, client, query):
    response = client.get("/search/", {"q": query})
    assert response.status_code in (200, 400), response.status_code
    html = response.content.decode()
    assert "<script>alert(1)" not in html
