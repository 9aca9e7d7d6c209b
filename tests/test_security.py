"""The security and privacy baseline: deploy checks, production hardening, headers, cookie-free
cacheable reader pages, cache invalidation on publishing, and proper error pages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.test import RequestFactory
from django.views.defaults import server_error

from masthead.publishing.importer import import_article
from masthead.publishing.models import ArticlePage, SectionPage


def production_env(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CACHE_URL", "MASTHEAD_TESTING",
                       "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(
        MASTHEAD_ENV="production",
        SECRET_KEY="k" * 20 + "-production-secret-" + "x9Q!" * 10,
        MASTHEAD_DATA_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="news.example.org",
        MASTHEAD_BASE_URL="https://news.example.org",
        MASTHEAD_DATA_DIR=str(tmp_path),
        MASTHEAD_TESTING="",  # the real production settings, not the test ones
    )
    return env


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "masthead.cli", "check", "--deploy", "--fail-level", "WARNING"],
        env=production_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]
    result = subprocess.run([sys.executable, "-m", "masthead.cli", "check"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


PROBE = """
import json
from django.conf import settings
from django.test import Client
client = Client(HTTP_HOST="news.example.org")
plain = client.get("/robots.txt")
secure = client.get("/robots.txt", secure=True)
evil = client.get("/robots.txt", secure=True, HTTP_HOST="evil.example")
print(json.dumps({
    "SESSION_COOKIE_SECURE": settings.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": settings.CSRF_COOKIE_SECURE,
    "SESSION_COOKIE_HTTPONLY": settings.SESSION_COOKIE_HTTPONLY,
    "DEBUG": settings.DEBUG,
    "plain_status": plain.status_code,
    "plain_location": plain.get("Location", ""),
    "secure_status": secure.status_code,
    "hsts": secure.get("Strict-Transport-Security", ""),
    "evil_status": evil.status_code,
}))
"""


def test_production_sends_hsts_redirects_to_https_and_secures_cookies(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "masthead.cli", "shell", "--no-imports", "-c", PROBE],
        env=production_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["SESSION_COOKIE_SECURE"] and facts["CSRF_COOKIE_SECURE"]
    assert facts["SESSION_COOKIE_HTTPONLY"] and not facts["DEBUG"]
    assert facts["plain_status"] == 301
    assert facts["plain_location"] == "https://news.example.org/robots.txt"
    assert facts["secure_status"] == 200
    assert facts["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert facts["evil_status"] == 400  # Host header injection is refused


def reader_urls() -> list[str]:
    article = ArticlePage.objects.get(external_id="demo-001")
    russian = ArticlePage.objects.get(external_id="demo-009")
    section = SectionPage.objects.get(title="Features")
    return [
        "/", "/ru/", section.url, article.url, russian.url, "/search/?q=ferry",
        "/feeds/rss/", "/feeds/atom/", "/ru/feeds/rss/", "/sitemap.xml", "/news-sitemap.xml",
        "/robots.txt", "/privacy/",
    ]


@pytest.mark.django_db
def test_reader_pages_carry_the_security_headers(demo, client):
    for url in reader_urls():
        response = client.get(url)
        assert response.status_code == 200, url
        if response["Content-Type"].startswith("text/html"):
            csp = response["Content-Security-Policy"]
            directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
            assert directives["default-src"] == "'self'", url
            # 'self', plus a nonce when the page has an inline script (JSON-LD).
            assert re.fullmatch(r"'self'( 'nonce-[\w+/=-]+')?", directives["script-src"]), csp
            assert directives["style-src"] == "'self'", url
            assert directives["object-src"] == "'none'"
            assert directives["frame-ancestors"] == "'none'"
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            html = response.content.decode()
            # No inline event handlers or inline styles: the CSP would block them.
            assert not re.search(r"<[^>]+\son[a-z]+\s*=", html), url
            assert not re.search(r"<[^>]+\sstyle\s*=", html), url
            found = re.search(r"'nonce-([^']+)'", csp)
            for tag in re.findall(r"<script\b[^>]*>", html):
                assert "src=" in tag or (found and f'nonce="{found.group(1)}"' in tag), tag
        assert response["Referrer-Policy"] == "same-origin", url
        assert response["X-Content-Type-Options"] == "nosniff", url
        assert response["X-Frame-Options"] == "DENY", url
        assert "camera=()" in response["Permissions-Policy"], url
        assert "interest-cohort=()" in response["Permissions-Policy"], url


@pytest.mark.django_db
def test_anonymous_reader_pages_set_no_cookies_and_are_cacheable(demo, client):
    for url in reader_urls():
        for method in (client.get, client.head):
            response = method(url)
            assert response.status_code == 200, url
            assert not response.cookies, (url, response.cookies)
            cache_control = response["Cache-Control"]
            assert "public" in cache_control and "s-maxage=" in cache_control, url
            assert "private" not in cache_control and "no-store" not in cache_control, url
            assert "cookie" not in response.get("Vary", "").lower(), url
        repeat = client.get(url)
        assert repeat["X-Masthead-Cache"] == "hit", url


@pytest.mark.django_db
def test_publishing_invalidates_every_page_the_article_appears_on(demo, client, tmp_path):
    section = SectionPage.objects.get(title="News")
    sibling = ArticlePage.objects.child_of(section).live().first()
    urls = ["/", section.url, sibling.url, "/feeds/rss/", f"/feeds/{section.slug}/atom/",
            "/sitemap.xml", "/news-sitemap.xml"]
    for url in urls:
        client.get(url)
        assert client.get(url)["X-Masthead-Cache"] == "hit", url

    page, created = import_article(
        {"external_id": "breaking-1", "headline": "Breaking: the dam holds", "section": "News",
         "body": "<p>Water levels fell overnight.</p>"},
        tmp_path,
    )
    assert created and page.live
    for url in urls:
        response = client.get(url)
        assert response["X-Masthead-Cache"] == "miss", url
        text = response.content.decode()
        assert "Breaking: the dam holds" in text or f"http://testserver{page.url}" in text, url

    # Unpublishing takes it off the cached pages again.
    for url in urls:
        client.get(url)
    page.unpublish()
    for url in urls:
        response = client.get(url)
        assert response["X-Masthead-Cache"] == "miss", url
        assert "Breaking: the dam holds" not in response.content.decode(), url


@pytest.mark.django_db
def test_missing_pages_are_proper_404s(demo, client, django_assert_max_num_queries):
    for url, language in [("/no-such-page/", "en"), ("/news/no-such-article/", "en"),
                          ("/ru/net-takoj-stranicy/", "ru")]:
        response = client.get(url)
        assert response.status_code == 404, url
        html = response.content.decode()
        assert f'<html lang="{language}"' in html
        assert "<h1>" in html and 'role="search"' in html
        home = "/" if language == "en" else f"/{language}/"
        assert f'href="{home}" rel="home"' in html
        assert not response.cookies
        assert response.get("X-Masthead-Cache") is None  # never stored in the page cache
    # The 404 page itself adds no database work beyond Wagtail's routing lookup.
    with django_assert_max_num_queries(6):
        assert client.get("/no-such-page/").status_code == 404


def test_server_error_page_renders_without_the_database(db, django_assert_num_queries):
    request = RequestFactory().get("/")
    with django_assert_num_queries(0):
        response = server_error(request)
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


def test_every_environment_variable_is_documented():
    """docs/operating.md names every variable settings.py reads (so operators can find it)."""
    root = Path(__file__).resolve().parent.parent
    source = (root / "masthead" / "settings.py").read_text()
    names = set(re.findall(r"\benv(?:_bool|_int|_list)?\(\s*\"([A-Z][A-Z0-9_]+)\"", source))
    assert len(names) > 40
    documented = (root / "docs" / "operating.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in documented)
    assert missing == [], f"add these to docs/operating.md: {missing}"
