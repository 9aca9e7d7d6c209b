"""The static copy, walked as a blocked reader would: exported from the demo site, served by
a plain static file server, crawled for broken links and links to the main domain, searched
offline in Chromium; re-exported incrementally after one publication; archived."""

from __future__ import annotations

import concurrent.futures
import functools
import html.parser
import json
import os
import re
import tarfile
import threading
import urllib.error
import urllib.request
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command

from masthead.publishing.models import ArticlePage, SectionPage
from masthead.reach.export import export_static
from masthead.reach.export.rewrite import Rewriter, file_for
from tests.conftest import CHROMIUM, _chromium_available

MIRROR = "https://static-mirror.example"
LINK_ATTRS = ("href", "src", "srcset", "action")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def static_server():
    """A plain static file server (what an object store or IPFS gateway does) for a dir."""
    servers = []

    def serve(directory: Path) -> str:
        handler = functools.partial(_Quiet, directory=str(directory))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, dict, str]] = []  # (tag, attrs, url)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in LINK_ATTRS:
            value = attrs.get(name)
            if value is None:
                continue
            urls = [item.split()[0] for item in value.split(",") if item.strip()]
            for url in urls if name == "srcset" else [value]:
                self.links.append((tag, attrs, url))


def crawl(origin: str, starts: list[str]) -> tuple[set[str], list[str], list[str]]:
    """Every page reachable from ``starts``: (pages fetched, broken links, main-domain links)."""
    main_host = urlsplit(settings.MASTHEAD_BASE_URL).netloc
    queue, seen, pages, broken, to_main = list(starts), set(starts), set(), [], []
    while queue:
        url = queue.pop()
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body, kind = response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            broken.append(f"{url} ({error.code})")
            continue
        if not kind.startswith("text/html"):
            continue
        pages.add(unquote(urlsplit(url).path))
        parser = _Links()
        parser.feed(body.decode())
        for tag, attrs, link in parser.links:
            parts = urlsplit(urljoin(url, link))
            if parts.netloc == main_host:
                named_on_purpose = tag == "link" and (
                    attrs.get("rel") == "canonical" or "hreflang" in attrs
                )
                if not named_on_purpose:
                    to_main.append(f"{url}: <{tag}> {link}")
                continue
            if f"{parts.scheme}://{parts.netloc}" != origin:
                continue
            target = parts._replace(fragment="").geturl()
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return pages, broken, to_main


def a_body_word(article: ArticlePage) -> str:
    """A word from the article's body that no headline carries (found only by the body)."""
    text = " ".join(
        re.sub(r"<[^>]+>", " ", str(block.value.source if hasattr(block.value, "source") else ""))
        for block in article.body
        if block.block_type == "paragraph"
    )
    titles = " ".join(ArticlePage.objects.values_list("title", flat=True)).lower()
    words = [w for w in re.findall(r"[A-Za-z]{8,}", text) if w.lower() not in titles]
    assert words, article.title
    return max(words, key=len)


def search_in_chromium(origin: str, word: str) -> tuple[list[str], list[str], str]:
    """Search the copy from its home page's search box in Chromium (in a thread of its own,
    so Playwright's event loop never meets the test's database connection); open the first
    result. Returns the result titles, requests to other origins or script errors, and the
    opened article's headline."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(service_workers="block")
            foreign = []
            page.on(
                "request",
                lambda r: (
                    urlsplit(r.url).scheme in ("http", "https")
                    and not r.url.startswith(origin)
                    and foreign.append(r.url)
                ),
            )
            page.on("pageerror", lambda error: foreign.append(f"script error: {error}"))
            page.goto(origin + "/", wait_until="load")
            # the header's search link leads to the copy's own search page (Pagefind's UI)
            page.click("a.header-search")
            page.wait_for_load_state("load")
            page.fill(".pagefind-ui__search-input", word)
            page.wait_for_selector(".pagefind-ui__result-link", timeout=15_000)
            titles = page.locator(".pagefind-ui__result-link").all_inner_texts()
            page.locator(".pagefind-ui__result-link").first.click()
            page.wait_for_load_state("load")
            opened = page.locator("article h1").inner_text()
        finally:
            browser.close()
    return titles, foreign, opened


def test_the_static_copy_is_complete_relative_and_searchable(demo, tmp_path, static_server):
    out = tmp_path / "copy"
    report = export_static(out, base_url=MIRROR, live_url="")
    assert report.missing == []
    origin = static_server(out)

    pages, broken, to_main = crawl(origin, [origin + "/", origin + "/ru/"])
    assert broken == []
    assert to_main == []
    # every article in both languages, reached by following links from the home pages
    articles = list(ArticlePage.objects.live().public())
    assert {a.locale.language_code for a in articles} == {"en", "ru"}
    for article in articles:
        assert "/" + file_for(article.url) in pages, article.url
    # the archive of editions, sections past the first page, standard pages
    assert any(p.startswith("/newsletter/") and p.count("/") >= 4 for p in pages)
    assert "/ru/index.html" in pages and "/privacy/index.html" in pages
    # no private page and no admin in the copy
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert not [
        n
        for n in names
        if re.match(
            r"(ru/)?(admin|support/(checkout|manage)|newsletter/(confirm|unsubscribe|subscribe))", n
        )
    ]

    # forms: without a live host, the email alternative (never a dead form)
    article = ArticlePage.objects.live().filter(locale__language_code="en").first()
    text = (out / file_for(article.url)).read_text()
    assert "static-notice" in text
    assert not re.search(r"<form(?![^>]*role=\"search\")", text)
    assert "data-pagefind-body" in text

    # feeds and sitemaps name the mirror, not the main domain
    main = settings.MASTHEAD_BASE_URL
    for name in ("sitemap.xml", "feeds/rss.xml", "ru/feeds/atom.xml"):
        xml = (out / name).read_text()
        assert MIRROR in xml and main not in xml, name

    # the offline search index, in both languages
    entry = json.loads((out / "pagefind" / "pagefind-entry.json").read_text())
    assert {"en", "ru"} <= set(entry["languages"])
    assert (out / "pagefind" / "pagefind-ui.js").exists()

    # --- incremental: one publication re-renders that article and the listings ---
    first = json.loads((out / ".masthead-export.json").read_text())

    again = functools.partial(export_static, out, base_url=MIRROR, live_url="", incremental=True)
    nothing = again(search_index=False)
    assert not nothing.full and nothing.written == [] and nothing.rendered == 0

    changed = ArticlePage.objects.live().filter(locale__language_code="en").last()
    assert changed.pk != article.pk
    changed.standfirst = "A correction: the ferry now sails at dawn."
    changed.save_revision().publish()
    others = [file_for(a.url) for a in ArticlePage.objects.live().exclude(pk=changed.pk)]

    report = again(archive=tmp_path / "copy.tar.gz")
    written = set(report.written)
    assert file_for(changed.url) in written
    assert "index.html" in written  # the home page lists it
    assert "feeds/rss.xml" in written  # so does the feed (the sitemap, by date, may not change)
    assert not written & set(others)  # no other article re-rendered
    assert report.rendered < len(first["urls"]) / 2
    assert "dawn" in (out / file_for(changed.url)).read_text()

    # the archive holds the tree (pages, assets, the search index), not the manifest
    with tarfile.open(report.archive) as archive:
        members = set(archive.getnames())
    assert file_for(changed.url) in members and "pagefind/pagefind-ui.js" in members
    assert not any(name.startswith(".masthead-export") for name in members)
    zipped = tmp_path / "copy.zip"
    call_command(
        "export_static", str(out), "--base-url", MIRROR, "--live-url", "", "--incremental",
        "--archive", str(zipped), "--no-progress", verbosity=0,
    )  # fmt: skip
    with zipfile.ZipFile(zipped) as archive:
        assert set(archive.namelist()) == members

    # an unpublished article leaves the copy
    changed.unpublish()
    report = again(search_index=False)
    assert file_for(changed.url) in report.removed

    # a moved article: its new address in, its old one out (no publication needed)
    moving = ArticlePage.objects.live().filter(locale__language_code="en").exclude(pk=article.pk)
    moving = moving.exclude(pk=changed.pk).first()
    old_file = file_for(moving.url)
    other = moving.get_parent().get_siblings(inclusive=False).type(SectionPage).live().first()
    moving.move(other, pos="last-child")
    moving.refresh_from_db()
    report = again(search_index=False)
    assert old_file in report.removed and file_for(moving.url) in report.written

    # --- the offline search, in Chromium ---
    if not _chromium_available():
        if os.environ.get("CI"):
            pytest.fail(f"CI=true but Chromium is missing at {CHROMIUM}: browser tests must run")
        pytest.skip(f"Chromium not installed at {CHROMIUM}: the search was not tried")
    word = a_body_word(article)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        titles, foreign, opened = pool.submit(search_in_chromium, origin, word).result()
    assert foreign == []
    assert article.title in titles, (word, titles)
    assert opened in titles


def rewriter(**kwargs) -> Rewriter:
    return Rewriter(
        origin="https://static-mirror.example",
        internal_hosts=frozenset({"static-mirror.example", "news.example"}),
        language_prefixes=("/ru",),
        **kwargs,
    )


PAGE = """<html><head><link rel="canonical" href="https://news.example/a/">
<link rel="alternate" hreflang="ru" href="https://news.example/ru/a/"></head><body>
<form role="search" action="/search/" method="get"><input name="q"></form>
<form method="post" action="/newsletter/subscribe/" class="signup-form"><button>Go</button></form>
<form class="appeal-form" method="post" action="https://news.example/support/checkout/"></form>
<a href="/support/manage/">Manage your support</a>
<img src="/media/a.jpg" srcset="/media/a.jpg 480w, https://news.example/media/b.jpg 800w">
<a href="/news/?page=2">Older</a> <a href="/support/?currency=EUR">EUR</a>
<a href="https://creativecommons.org/licenses/by/2.0/">CC BY 2.0</a></body></html>"""


def test_forms_post_to_the_live_host_when_there_is_one():
    found = []
    text = rewriter(live_url="https://live-mirror.example").html(
        PAGE, "/news/a/", "news/a/index.html", found.append, "en"
    )
    assert 'action="https://live-mirror.example/newsletter/subscribe/"' in text
    assert 'action="https://live-mirror.example/support/checkout/"' in text
    assert 'href="https://live-mirror.example/support/manage/"' in text
    assert 'action="../../search/index.html"' in text
    assert 'href="https://news.example/a/"' in text  # canonical kept
    assert 'href="https://news.example/ru/a/"' in text  # hreflang kept
    assert 'srcset="../../media/a.jpg 480w, ../../media/b.jpg 800w"' in text
    assert 'href="../page/2/index.html"' in text and 'href="../../support/index.html"' in text
    assert 'href="https://creativecommons.org/licenses/by/2.0/"' in text
    assert {link.file for link in found} >= {"news/page/2/index.html", "media/b.jpg"}


def test_without_a_live_host_forms_give_way_to_the_email_alternative():
    text = rewriter(subscribe_email="subscribe@news.example").html(
        PAGE, "/ru/a/", "ru/a/index.html", lambda link: None, "ru"
    )
    assert text.count("<form") == 1  # only the search box
    assert 'href="mailto:subscribe@news.example?subject=subscribe"' in text
    assert "cannot take sign-ups" in text and "cannot take contributions" in text
    assert "<span>Manage your support</span>" in text  # the words stay, the dead link goes


def test_the_scheduler_keeps_a_configured_copy_fresh(site, tmp_path, settings, monkeypatch):
    from masthead.reach.export import tasks

    enqueued = []
    task = tasks.export_static_copy
    monkeypatch.setattr(
        tasks, "export_static_copy", type("Stub", (), {"enqueue": lambda: enqueued.append(1)})
    )
    settings.MASTHEAD_STATIC_EXPORT_DIR = ""
    tasks.keep_static_copy()
    assert enqueued == []
    settings.MASTHEAD_STATIC_EXPORT_DIR = str(tmp_path / "copy")
    settings.MASTHEAD_STATIC_EXPORT_BASE_URL = MIRROR
    tasks.keep_static_copy()
    assert enqueued == [1]

    result = task.call()
    assert result["written"] > 0 and result["missing"] == []
    assert (tmp_path / "copy" / "index.html").exists()
    assert task.call()["written"] == 0  # nothing published since
