"""One request's language never reaches another's: not the English admin after Russian
reader pages, not a reader page stored in the page cache.

The admin labels Wagtail builds once per process (list columns, edit form classes) are the
failure seen in production: a worker whose first request was a Russian reader page showed
"Выбрать newsletter" and "Локализация" in the English admin. Only a fresh process shows it,
so the first test serves the site with gunicorn (threaded, as ``masthead run`` does); the
second interleaves the same traffic on pytest-django's threaded live server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.test import Client

from tests.conftest import sign_in_verified

pytestmark = pytest.mark.slow

ADMIN_PAGES = ["/admin/snippets/newsletters/edition/add/", "/admin/snippets/campaigns/campaign/"]
# Russian words the English admin showed; each is a Wagtail or Masthead string in Russian.
RUSSIAN_ADMIN_LABELS = ["Выбрать", "Локализация", "Сохранить", "Поиск"]
# Site strings every reader page carries (banner, sign-up), in English and in Russian.
SITE_STRINGS = [("Support ", "Поддержите "), ("Privacy Policy", "Политика конфиденциальности")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin_session(django_user_model) -> str:
    user = django_user_model.objects.create_superuser("editor", "editor@example.org", "pw")
    client = Client()
    sign_in_verified(client, user)
    return client.cookies["sessionid"].value


def _russian_reader_paths() -> list[str]:
    from masthead.publishing.models import ArticlePage

    paths = ["/ru/"]
    paths += [p.url for p in ArticlePage.objects.live().filter(locale__language_code="ru")[:2]]
    return paths


def _english_reader_paths() -> list[str]:
    from masthead.publishing.models import ArticlePage

    paths = ["/"]
    paths += [p.url for p in ArticlePage.objects.live().filter(locale__language_code="en")[:2]]
    return paths


def _interleave(base: str, session: str, rounds: int = 6) -> dict[str, list[str]]:
    """Russian reader pages and English admin pages at once, several of each in flight."""
    russian = _russian_reader_paths()
    jobs = []
    for _ in range(rounds):
        jobs += [("reader", path) for path in russian]
        jobs += [("admin", path) for path in ADMIN_PAGES]

    def fetch(job):
        kind, path = job
        cookies = {"sessionid": session} if kind == "admin" else {}
        response = requests.get(base + path, cookies=cookies, timeout=60)
        assert response.status_code == 200, (path, response.status_code)
        return kind, path, response.text

    pages: dict[str, list[str]] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _kind, path, text in pool.map(fetch, jobs):
            pages.setdefault(path, []).append(text)
    return pages


def _assert_admin_is_english(pages: dict[str, list[str]]) -> None:
    for path in ADMIN_PAGES:
        for text in pages[path]:
            found = [word for word in RUSSIAN_ADMIN_LABELS if word in text]
            assert not found, f"{path} carries Russian labels {found}"
        assert "Choose newsletter" in pages[ADMIN_PAGES[0]][0]
        assert ">Locale<" in "".join(pages[ADMIN_PAGES[1]][0].split())


def test_admin_stays_english_when_a_fresh_worker_first_serves_russian_pages(
    demo, subprocess_env, django_user_model
):
    session = _admin_session(django_user_model)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "masthead.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--threads", "4"],
        env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # the worker's very first request is a Russian reader page
            try:
                first = requests.get(base + "/ru/", timeout=30)
                break
            except requests.ConnectionError:
                assert server.poll() is None, server.stderr.read().decode()[-3000:]
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert first.status_code == 200
        _assert_admin_is_english(_interleave(base, session))
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_interleaved_languages_on_the_threaded_live_server(
    transactional_db, live_server, demo, django_user_model
):
    session = _admin_session(django_user_model)
    base = live_server.url
    _assert_admin_is_english(_interleave(base, session))

    # The page cache then serves each language only its own strings: the English pages
    # stored after all that Russian traffic, and Russian ones stored after English traffic.
    english, russian = _english_reader_paths(), _russian_reader_paths()
    with ThreadPoolExecutor(max_workers=8) as pool:
        mixed = [p for pair in zip(english * 3, russian * 3, strict=False) for p in pair]
        list(pool.map(lambda path: requests.get(base + path, timeout=60), mixed))
    for path in english:
        stored = requests.get(base + path, timeout=60)
        assert stored.headers.get("Content-Language") == "en"
        assert 'lang="en"' in stored.text
        for english_word, russian_word in SITE_STRINGS:
            assert english_word in stored.text, (path, english_word)
            assert russian_word not in stored.text, (path, russian_word)
    for path in russian:
        stored = requests.get(base + path, timeout=60)
        assert stored.headers.get("Content-Language") == "ru"
        assert 'lang="ru"' in stored.text
        for english_word, russian_word in SITE_STRINGS:
            assert russian_word in stored.text, (path, russian_word)
            assert english_word not in stored.text, (path, english_word)
