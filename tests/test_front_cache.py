"""The shipped nginx front cache (deploy/nginx/masthead.conf) in front of the live app.

A real nginx runs the shipped config (rendered onto loopback ports by bench/front_cache.py's
renderer) in front of the threaded live server: reader pages are kept and served from the
cache per encoding, a publication purges them through Masthead's purge hook, and the admin,
forms, webhooks and requests with a session pass through. Skipped only where nginx (or
Debian's cache-purge module) is missing outside CI; with CI=true a missing nginx fails.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
_spec = importlib.util.spec_from_file_location("front_cache", ROOT / "bench" / "front_cache.py")
front_cache = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(front_cache)


@pytest.fixture(scope="module", autouse=True)
def _nginx_present():
    missing = front_cache.missing_tools()
    missing = [m for m in missing if m != "wrk"]  # wrk is for the benchmark only
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI=true but {missing} missing ({front_cache.APT})")
        pytest.skip(f"{missing} not installed ({front_cache.APT})")


def test_the_shipped_config_passes_nginx_t(tmp_path):
    conf = front_cache.render_nginx_conf(tmp_path, app_port=8000, listen_port=18080,
                                         purge_port=18081)
    result = subprocess.run(["nginx", "-t", "-c", str(conf), "-e",
                             str(tmp_path / "logs" / "error.log")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.fixture
def front(transactional_db, live_server, demo, tmp_path, settings):
    """nginx with the shipped config in front of the live server; its reader base URL."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    app_port = urlsplit(live_server.url).port
    listen, purge = front_cache.free_port(), front_cache.free_port()
    conf = front_cache.render_nginx_conf(tmp_path / "nginx", app_port=app_port,
                                         listen_port=listen, purge_port=purge)
    settings.WAGTAILFRONTENDCACHE = {
        "front": {"BACKEND": "masthead.core.frontcache.PurgeBackend",
                  "LOCATION": f"http://127.0.0.1:{purge}"},
    }
    front_cache.start_nginx(conf)
    try:
        yield f"http://127.0.0.1:{listen}"
    finally:
        front_cache.stop_nginx(conf)


def get(url, encoding="identity", **kwargs):
    return requests.get(url, headers={"Accept-Encoding": encoding, **kwargs.pop("headers", {})},
                        timeout=30, stream=True, **kwargs)


def raw(response) -> bytes:
    """The body as sent on the wire (not decoded by requests)."""
    return response.raw.read(decode_content=False)


def test_reader_pages_are_cached_per_encoding_and_purged_on_publish(front):
    from masthead.publishing.models import ArticlePage

    article = ArticlePage.objects.live().filter(locale__language_code="en").first()
    url = front + article.url

    first = get(url)
    assert first.status_code == 200
    assert first.headers["X-Cache-Status"] == "MISS"
    identity = raw(first)
    again = get(url)
    assert again.headers["X-Cache-Status"] == "HIT"
    assert "Content-Encoding" not in again.headers
    assert raw(again) == identity
    assert article.title.encode() in identity

    # gzip for a reader who accepts it: its own copy, stored compressed.
    assert get(url, "gzip, deflate").headers["X-Cache-Status"] == "MISS"
    zipped = get(url, "gzip, deflate")
    assert zipped.headers["X-Cache-Status"] == "HIT"
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    body = raw(zipped)
    assert len(body) < len(identity) / 2
    assert gzip.decompress(body) == identity
    # brotli readers (every current browser) get brotli.
    get(url, "gzip, deflate, br")
    brotli_hit = get(url, "gzip, deflate, br")
    assert brotli_hit.headers["X-Cache-Status"] == "HIT"
    assert brotli_hit.headers["Content-Encoding"] == "br"
    # A reader refusing gzip gets identity.
    refusing = get(url, "gzip;q=0")
    assert "Content-Encoding" not in refusing.headers

    home = front + "/"
    get(home)
    assert get(home).headers["X-Cache-Status"] == "HIT"

    # A publication: Masthead's purge hook empties the page and its listings, every encoding.
    article.title = "Night ferry back on after the thaw"
    article.save_revision().publish()
    for encoding in ("identity", "gzip", "gzip, br"):
        fresh = get(url, encoding)
        assert fresh.headers["X-Cache-Status"] == "MISS", encoding
        assert "Night ferry back on after the thaw" in fresh.text, encoding
    fresh_home = get(home)
    assert fresh_home.headers["X-Cache-Status"] == "MISS"
    assert "Night ferry back on after the thaw" in fresh_home.text


def test_staff_forms_money_webhooks_and_sessions_pass_through(front, client):
    from masthead.publishing.models import ArticlePage

    for path in ("/admin/login/", "/support/", "/support/manage/", "/newsletter/subscribe/"):
        for _ in range(2):
            response = get(front + path)
            assert response.headers.get("X-Cache-Status") != "HIT", path
    for path in ("/newsletter/subscribe/", "/support/webhooks/sandbox/", "/support/checkout/",
                 "/"):
        for _ in range(2):
            response = requests.post(front + path, data={"email": "a@example.org"},
                                     timeout=30)
            assert response.status_code < 500, (path, response.status_code)
            assert response.headers.get("X-Cache-Status") != "HIT", path

    # A request with a session goes to the app even for a cached page, and is not stored.
    article = ArticlePage.objects.live().filter(locale__language_code="en").first()
    url = front + article.url
    get(url)
    assert get(url).headers["X-Cache-Status"] == "HIT"
    editor = get(url, cookies={"sessionid": "not-a-session"})
    assert editor.headers["X-Cache-Status"] == "BYPASS"
    assert editor.status_code == 200
    assert "private" in editor.headers["Cache-Control"]
    assert get(url).headers["X-Cache-Status"] == "HIT"


def test_the_purge_listener_is_loopback_only_and_reports_unknown_pages(front):
    conf_text = (ROOT / "deploy" / "nginx" / "masthead.conf").read_text()
    assert "allow 127.0.0.1;" in conf_text and "deny all;" in conf_text
    from django.conf import settings

    purge = settings.WAGTAILFRONTENDCACHE["front"]["LOCATION"]
    response = requests.request("PURGE", purge + "/never-cached/", timeout=10,
                                headers={"Host": "127.0.0.1"})
    assert response.status_code == 404
