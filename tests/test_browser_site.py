"""The reader's pages in real Chromium: only our own origin is contacted, the CSP is never
violated, the article's seven blocks show in order, and no link on the page is dead."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from django.urls import reverse

from masthead.publishing.models import ArticlePage

pytestmark = pytest.mark.browser

# Init script: collect CSP violations the page itself reports.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""

BLOCKS = [
    (".support-banner", "support banner"),
    ("article h1", "headline"),
    ("article figure figcaption", "lead image"),
    (".article-body", "body"),
    (".newsletter-signup", "newsletter sign-up"),
    (".appeal", "appeal"),
    (".read-more", "read more"),
]


@pytest.fixture
def watched(page, live_server):
    """The Playwright page, recording every request, console error and CSP violation."""
    origin = urlsplit(live_server.url).netloc
    record = {"requests": [], "foreign": [], "console": [], "errors": []}

    def on_request(request):
        record["requests"].append(request.url)
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != origin:
            record["foreign"].append(request.url)
        elif parts.scheme not in ("http", "https", "data", "blob"):
            record["foreign"].append(request.url)

    def on_console(message):
        if message.type in ("error", "warning"):
            record["console"].append(message.text)

    page.on("request", on_request)
    page.on("console", on_console)
    page.on("pageerror", lambda error: record["errors"].append(str(error)))
    page.add_init_script(WATCH_CSP)
    return page, record


def assert_clean(page, record) -> None:
    assert record["foreign"] == [], record["foreign"]
    csp_console = [m for m in record["console"] if "Content Security Policy" in m]
    assert csp_console == []
    assert page.evaluate("window.__cspViolations") == []
    assert record["errors"] == []


def load(page, url: str):
    response = page.goto(url, wait_until="load")
    assert response.status == 200, url
    page.wait_for_load_state("networkidle")
    return response


def test_home_page_contacts_only_its_own_origin(transactional_db, demo, live_server, watched):
    page, record = watched
    load(page, live_server.url + "/")
    assert page.locator("h1, .site-name").first.is_visible()
    assert page.locator(".teasers a, .lead a").count() > 3
    assert any("/static/" in url for url in record["requests"])  # CSS/JS did load
    assert any("/media/" in url for url in record["requests"])  # and the images
    assert_clean(page, record)
    # Every image actually rendered (no broken src blocked or missing).
    broken = page.evaluate(
        "[...document.images].filter(i => i.complete && i.naturalWidth === 0).map(i => i.src)"
    )
    assert broken == []


def test_article_page_shows_seven_blocks_in_order_with_no_dead_links(
    transactional_db, demo, live_server, watched
):
    page, record = watched
    article = ArticlePage.objects.get(external_id="demo-002")
    load(page, live_server.url + article.url)
    assert_clean(page, record)

    tops = []
    for selector, name in BLOCKS:
        # A placement may render several variants and show one: take the visible one.
        locator = page.locator(selector).locator("visible=true").first
        assert locator.count() == 1, f"{name} ({selector}) is not visible"
        box = locator.bounding_box()
        assert box and box["height"] > 0 and box["width"] > 0, name
        tops.append((box["y"], name))
    assert [name for _y, name in sorted(tops)] == [name for _s, name in BLOCKS], tops
    assert page.locator("article h1").inner_text() == article.title
    caption = page.locator("article figure figcaption").inner_text()
    assert "Lena Oduya (CC BY-SA 4.0)" in caption

    # No dead links: follow every same-origin link (and check the others are real deeds).
    base = live_server.url + article.url
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    assert len(hrefs) > 10
    checked = set()
    for href in hrefs:
        assert href and href.strip() not in ("#", "") and not href.startswith("javascript:"), href
        url = urljoin(base, href)
        parts = urlsplit(url)
        if parts.netloc != urlsplit(live_server.url).netloc:
            # Off-site links are only licence deeds and payment providers, never trackers.
            assert parts.scheme == "https", url
            assert parts.netloc in {"creativecommons.org"}, url
            continue
        if href.startswith("#"):
            assert page.locator(href).count() == 1, f"anchor {href} has no target"
            continue
        target = url.split("#", 1)[0]
        if target in checked:
            continue
        checked.add(target)
        response = page.request.get(target, max_redirects=5)
        assert response.status < 400, (href, response.status)
    assert len(checked) >= 8


def test_russian_article_is_clean_too(transactional_db, demo, live_server, watched):
    page, record = watched
    article = ArticlePage.objects.get(external_id="demo-009")
    load(page, live_server.url + article.url)
    assert page.locator("html").get_attribute("lang") == "ru"
    assert page.locator("article h1").inner_text() == article.title
    assert_clean(page, record)


# --- The reader's pages at a phone's and a laptop's width (issue 13) -------------------------

SHOTS = Path(__file__).resolve().parent.parent / "data" / "screenshots"
WIDTHS = (390, 1280)


def _reader_pages() -> list[tuple[str, str]]:
    from masthead.publishing.models import HomePage, SectionPage

    article = ArticlePage.objects.get(external_id="demo-002")
    section = SectionPage.objects.live().filter(locale__language_code="en").first()
    return [
        ("home", "/"),
        ("home-ru", HomePage.objects.get(locale__language_code="ru").url),
        ("section", section.url),
        ("article", article.url),
        ("search", reverse("publishing:search") + "?q=ferry"),
        ("give", reverse("contributions:give")),
        ("newsletter", reverse("newsletters:index")),
    ]


def _settle(page) -> None:
    """Scroll through so lazy images load, wait for every image, then back to the top."""
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    for _ in range(100):  # (wait_for_function would poll with eval, which the CSP refuses)
        if page.evaluate("[...document.images].every(i => i.complete)"):
            break
        page.wait_for_timeout(50)
    page.evaluate("window.scrollTo(0, 0)")


@pytest.mark.parametrize("width", WIDTHS)
def test_reader_pages_at_phone_and_laptop_width(
    transactional_db, demo, live_server, watched, width
):
    """Every reader page type fits the screen, loads only sharp images from its own origin,
    and is kept as a screenshot (data/screenshots/reader-<page>-<width>.png) to look at."""
    page, record = watched
    page.set_viewport_size({"width": width, "height": 900})
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, path in _reader_pages():
        load(page, live_server.url + path)
        _settle(page)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (name, width, overflow)
        broken = page.evaluate("[...document.images].filter(i => !i.naturalWidth).map(i => i.src)")
        assert broken == [], (name, broken)
        # Sharp: no image is drawn wider than its rendition's pixels (device pixel ratio 1).
        blurry = page.evaluate(
            "[...document.images].filter(i => i.naturalWidth && i.getBoundingClientRect().width"
            " > i.naturalWidth + 1).map(i => [i.currentSrc, i.naturalWidth,"
            " i.getBoundingClientRect().width])"
        )
        assert blurry == [], (name, width, blurry)
        # One line per choice in the segmented controls ("Annual" never wraps).
        tall = page.evaluate(
            "[...document.querySelectorAll('.segment > span')].filter(s => s.offsetParent"
            " && s.getBoundingClientRect().height > 50).map(s => s.textContent)"
        )
        assert tall == [], (name, width, tall)
        if width == 390:
            # The header leaves the news near the top of a phone's screen.
            header = page.locator(".site-header").bounding_box()
            assert header["height"] < 120, (name, header)
        page.screenshot(path=str(SHOTS / f"reader-{name}-{width}.png"), full_page=True)
        assert_clean(page, record)


def test_lead_image_is_sharp_eager_and_the_others_lazy(transactional_db, demo, live_server, page):
    """The first picture on the front page and on an article loads at once with high
    priority, from a set of renditions in modern formats; the rest wait until scrolled to."""
    article = ArticlePage.objects.get(external_id="demo-002")
    for path in ("/", article.url):
        load(page, live_server.url + path)
        images = page.locator("main img")
        first = images.first
        assert first.get_attribute("loading") == "eager", path
        assert first.get_attribute("fetchpriority") == "high", path
        assert first.get_attribute("width") and first.get_attribute("height"), path
        assert len(first.get_attribute("srcset").split(",")) >= 3, path
        sources = page.locator("main picture").first.locator("source")
        types = [sources.nth(i).get_attribute("type") for i in range(sources.count())]
        assert "image/webp" in types, path
        assert ".webp" in first.evaluate("img => img.currentSrc"), path
        lazy = [images.nth(i).get_attribute("loading") for i in range(1, images.count())]
        assert lazy and set(lazy) == {"lazy"}, (path, lazy)
