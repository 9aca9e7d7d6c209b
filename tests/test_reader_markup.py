"""What issue 13 found in the reader pages' markup, each checked where a validator or a
reader would see it: datetimes to the second, heading order, a meta description on every
page, JSON-LD with a publisher logo, feeds without Wagtail's internal attributes, the
outlet's name in the reader's language, the front page's sections and bylines, the appeal's
amounts and its message in place, and no support banner where the reader is already giving."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from masthead.campaigns.models import Campaign, Placement
from masthead.publishing.models import ArticlePage, HomePage, SectionPage

pytestmark = pytest.mark.django_db

DATETIME_ATTR = re.compile(r'datetime="([^"]*)"')
SECONDS_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:?\d\d)$")


def get(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def _article(language: str = "en") -> ArticlePage:
    return ArticlePage.objects.live().filter(locale__language_code=language).first()


def _reader_urls() -> list[str]:
    section = SectionPage.objects.live().filter(locale__language_code="en").first()
    return [
        "/",
        HomePage.objects.get(locale__language_code="ru").url,
        section.url,
        _article().url,
        _article("ru").url,
        reverse("publishing:search") + "?q=ferry",
        reverse("contributions:give"),
        reverse("newsletters:index"),
        reverse("reach:mirrors"),
    ]


def _jsonld(html: str) -> dict:
    found = re.search(r'<script type="application/ld\+json"[^>]*>(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def _headings(html: str) -> list[int]:
    main = html[html.index("<main"):html.index("</main>")]
    return [int(level) for level in re.findall(r"<h([1-6])[\s>]", main)]


def test_every_reader_page_has_a_description_and_datetimes_to_the_second(demo, client):
    for url in _reader_urls():
        html = get(client, url)
        description = re.search(r'<meta name="description" content="([^"]+)">', html)
        assert description and description.group(1).strip(), url
        for value in DATETIME_ATTR.findall(html):
            assert SECONDS_WITH_OFFSET.match(value), (url, value)
        for value in re.findall(r'property="article:\w+_time" content="([^"]+)"', html):
            assert SECONDS_WITH_OFFSET.match(value), (url, value)


def test_headings_never_skip_a_level(demo, client):
    for url in _reader_urls():
        levels = _headings(get(client, url))
        assert levels and levels[0] == 1, (url, levels)
        for before, after in zip(levels, levels[1:], strict=False):
            assert after <= before + 1, (url, levels)


def test_home_description_is_the_tagline(demo, client):
    home = HomePage.objects.get(locale__language_code="en")
    html = get(client, "/")
    assert f'<meta name="description" content="{home.intro}">' in html
    assert '<p class="tagline">' in html  # beside the name, not jammed under the header
    assert "<title>The Lantern</title>" in html


def test_front_page_has_a_lead_top_stories_and_sections_with_bylines_and_labels(demo, client):
    html = get(client, "/")
    assert html.count("lead-teaser") == 1
    assert 'class="top-stories"' in html
    assert re.search(r'<section class="front-section" aria-labelledby="section-\d+-heading">', html)
    assert re.search(r'<h2 class="section-heading" id="section-\d+-heading"><a href="[^"]+">', html)
    assert 'class="label"' in html and 'class="byline"' in html


def test_jsonld_publisher_has_an_absolute_first_party_logo(demo, client):
    html = get(client, _article().url)
    data = _jsonld(html)
    logo = data["publisher"]["logo"]
    assert logo["@type"] == "ImageObject"
    parts = urlsplit(logo["url"])
    assert parts.scheme in ("http", "https") and parts.path.endswith(".png")
    assert client.get(parts.path).status_code == 200
    assert "." not in data["datePublished"].split("T")[1]  # no microseconds


def test_feeds_carry_no_wagtail_block_keys(demo, client):
    for url in (reverse("publishing:feed_rss"), reverse("publishing:feed_atom")):
        body = client.get(url).content.decode()
        assert "content:encoded" in body or "<content" in body
        assert "data-block-key" not in body, url


def test_the_outlet_is_named_in_the_readers_language(demo, client):
    ru = _article("ru")
    html = get(client, ru.url)
    header = html[html.index('<header class="site-header">'):html.index("</header>")]
    assert '<span class="site-name">Фонарь</span>' in header
    assert "The Lantern" not in header
    assert re.search(r"<title>[^<]* — Фонарь</title>", html)
    data = _jsonld(html)
    assert data["publisher"]["name"] == "Фонарь"
    assert "<title>Фонарь</title>" in client.get("/ru/feeds/rss/").content.decode()
    english = get(client, _article().url)
    assert '<span class="site-name">The Lantern</span>' in english


def test_images_come_in_several_renditions_and_formats_lead_first(demo, client):
    html = get(client, ArticlePage.objects.get(external_id="demo-002").url)
    figure = html[html.index("<figure>", html.index('class="article-header"')):]
    figure = figure[:figure.index("</figure>")]
    assert re.search(r'<source [^>]*type="image/webp"', figure)
    img = re.search(r"<img [^>]+>", figure).group(0)
    assert 'loading="eager"' in img and 'fetchpriority="high"' in img
    assert re.search(r'width="\d+"', img) and re.search(r'height="\d+"', img)
    assert len(re.search(r'srcset="([^"]+)"', img).group(1).split(",")) >= 3
    assert "Lena Oduya" in figure and 'rel="license"' in figure  # credit and licence kept


# --- The appeal ------------------------------------------------------------------------------


def _appeal(html: str) -> str:
    return html[html.index('class="appeal-slot"'):html.index('class="read-more"')]


def test_appeal_reads_as_a_sentence_and_accepts_amounts_with_symbols(demo, client):
    slot = _appeal(get(client, _article().url))
    assert "Monthly, from just $2." in slot
    assert "pattern=" not in slot  # "$3" and " 7 " are the server's to read, not refused
    assert 'name="return_to"' in slot


def test_snooze_note_names_the_configured_period(demo, client):
    Campaign.objects.filter(placement=Placement.APPEAL).update(snooze_days=7)
    slot = _appeal(get(client, _article().url))
    assert "We will remind you in 7 days." in slot
    assert "a few days" not in slot
    Campaign.objects.filter(placement=Placement.APPEAL).update(snooze_days=3)
    russian = _appeal(get(client, _article("ru").url))
    assert "Мы напомним через 3 дня." in russian


def _appeal_post(slot: str, **fields) -> dict:
    """The first (no-script) variant's form, as a browser would post it."""
    slot = slot[slot.index('<aside class="appeal"'):]
    slot = slot[:slot.index("</aside>")]
    data = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', slot))
    data.update(frequency="once", provider="sandbox", amount="", currency="USD")
    data.update(fields)
    return data


@pytest.mark.parametrize("typed", ["$3", " 7 ", "7.50"])
def test_appeal_amount_with_a_symbol_or_spaces_goes_on_to_the_checkout(demo, client, typed):
    slot = _appeal(get(client, _article().url))
    action = re.search(r'<form class="appeal-form" method="post" action="([^"]+)"', slot).group(1)
    response = client.post(action, _appeal_post(slot, custom_amount=typed))
    assert response.status_code == 307
    assert response["Location"] == reverse("contributions:checkout")
    # The browser posts the same form there; the checkout takes the amount as typed.
    checkout = client.post(response["Location"], _appeal_post(slot, custom_amount=typed))
    assert checkout.status_code == 303, checkout.content.decode()[:500]


@pytest.mark.parametrize(
    ("typed", "problem"), [("0.50", "minimum-usd"), ("lots", "amount"), ("99999999", "maximum-usd")]
)
def test_refused_appeal_amount_returns_to_the_appeal_with_its_message(
    demo, client, typed, problem
):
    article = _article()
    slot = _appeal(get(client, article.url))
    action = re.search(r'<form class="appeal-form" method="post" action="([^"]+)"', slot).group(1)
    prefix = re.search(r'<aside class="appeal" [^>]*id="(c\d+v\d+)"', slot).group(1)
    response = client.post(action, _appeal_post(slot, custom_amount=typed))
    assert response.status_code == 303
    path, _sep, anchor = response["Location"].partition("#")
    assert path == article.url and anchor == f"{prefix}-error-{problem}"
    # The article has the message at that anchor, inside the appeal the reader used.
    page = get(client, path)
    message = re.search(rf'<p class="appeal-error" id="{anchor}"[^>]*>([^<]+)</p>', page)
    assert message, anchor
    if problem == "minimum-usd":
        assert "$2" in message.group(1) or "$1" in message.group(1)


def test_appeal_check_never_redirects_off_site(demo, client):
    slot = _appeal(get(client, _article().url))
    action = re.search(r'<form class="appeal-form" method="post" action="([^"]+)"', slot).group(1)
    for target in ("https://evil.example/#c1v1", "//evil.example/#c1v1", "/x/#<script>", ""):
        response = client.post(action, _appeal_post(slot, custom_amount="0.01", return_to=target))
        # Without a safe way back the checkout itself says what is wrong (its give page).
        assert response.status_code == 307, target


def test_no_support_banner_where_the_reader_is_already_giving(demo, client):
    article = get(client, _article().url)
    assert "support-banner-link" in article
    give = get(client, reverse("contributions:give"))
    assert "support-banner-link" not in give
    assert 'id="masthead-campaigns"' in give  # the slot's supporter rules stay
    slot = _appeal(article)
    checkout = client.post(reverse("contributions:checkout"), _appeal_post(slot, amount="500"))
    assert checkout.status_code == 303
    sandbox = get(client, checkout["Location"])
    assert "Sandbox checkout" in sandbox
    assert "support-banner-link" not in sandbox
