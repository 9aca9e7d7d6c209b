"""Independent checks of what readers see: the Nu Html Checker (vnu) and axe-core.

Every reader page type, in both languages, is fetched from the demo site and handed to the
Nu Html Checker in one run (``vnu.jar`` from npm's ``vnu-jar``, which ``./dev test`` puts in
``.venv/share/vnu-<version>/``; it runs on the machine's Java): 0 errors. The same page
types are opened in Chromium and checked with axe-core (PyPI's ``axe-playwright-python``
bundles it): 0 serious or critical violations. Lighthouse's scores swing with machine load,
so it is a benchmark (``bench/lighthouse.py``), not a test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from masthead.publishing.models import ArticlePage, SectionPage, StandardPage

JAVA = shutil.which("java")


def _vnu_jar() -> Path | None:
    """The newest checker ``./dev test`` fetched (or ``MASTHEAD_VNU_JAR``)."""
    if os.environ.get("MASTHEAD_VNU_JAR"):
        return Path(os.environ["MASTHEAD_VNU_JAR"])
    share = Path(sys.prefix) / "share"
    jars = sorted(share.glob("vnu-*/vnu.jar"))
    return jars[-1] if jars else None


def _need(what: str, present: bool) -> None:
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI=true but {what} is missing: the validators must run in CI")
    pytest.skip(f"{what} is missing")


def _sent_edition(language: str):
    from masthead.newsletters.models import Edition

    edition = (
        Edition.objects.filter(newsletter__language=language).order_by("-pk").first()
    )
    if edition is None:
        return None
    if edition.status != Edition.Status.SENT:
        Edition.objects.filter(pk=edition.pk).update(
            status=Edition.Status.SENT, sent_at=timezone.now()
        )
        edition.refresh_from_db()
    return edition


def reader_pages() -> list[tuple[str, str, int]]:
    """(label, url, expected status) for every reader page type in both languages."""
    pages: list[tuple[str, str, int]] = []
    for language, prefix in (("en", ""), ("ru", "/ru")):
        article = (
            ArticlePage.objects.live().filter(locale__language_code=language)
            .order_by("-published_at").first()
        )
        section = SectionPage.objects.live().filter(locale__language_code=language).first()
        standard = StandardPage.objects.live().filter(locale__language_code=language).first()
        pages += [
            (f"home {language}", f"{prefix}/", 200),
            (f"article {language}", article.url, 200),
            (f"section {language}", section.url, 200),
            (f"search {language}", f"{prefix}/search/?q=river", 200),
            (f"empty search {language}", f"{prefix}/search/", 200),
            (f"newsletter {language}", f"{prefix}/newsletter/", 200),
            (f"give {language}", f"{prefix}/support/", 200),
            (f"manage request {language}", f"{prefix}/support/manage/", 200),
            (f"mirrors {language}", f"{prefix}/mirrors/", 200),
            (f"not found {language}", f"{prefix}/no-such-page/", 404),
            (f"bad link {language}", f"{prefix}/newsletter/confirm/not-a-token/", 400),
        ]
        if standard is not None:
            pages.append((f"standard page {language}", standard.url, 200))
        edition = _sent_edition(language)
        if edition is not None:
            pages.append((f"edition {language}", edition.get_absolute_url(), 200))
            pages.append(
                (f"archive {language}", f"{prefix}/newsletter/{edition.newsletter.slug}/", 200)
            )
    return pages


def _fetch_all(client: Client) -> dict[str, str]:
    found: dict[str, str] = {}
    for label, url, status in reader_pages():
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == status, (label, url, response.status_code)
        assert response["Content-Type"].startswith("text/html"), (label, url)
        found[label] = response.content.decode()
    return found


@pytest.mark.django_db
def test_every_reader_page_type_passes_the_nu_html_checker(demo, tmp_path):
    jar = _vnu_jar()
    _need("Java (apt-get install default-jre-headless)", JAVA is not None)
    _need("vnu.jar (./dev test fetches it with npm)", jar is not None)
    pages = _fetch_all(Client())
    assert len(pages) >= 24, sorted(pages)
    files = {}
    for label, html in pages.items():
        path = tmp_path / (label.replace(" ", "-") + ".html")
        path.write_text(html, encoding="utf-8")
        files[str(path)] = label
    result = subprocess.run(
        [JAVA, "-Xss4m", "-jar", str(jar), "--format", "json", "--stdout", *files],
        capture_output=True, text=True, timeout=300,
    )
    report = json.loads(result.stdout or "{}")
    errors = [
        f"{files.get(m.get('url', '').removeprefix('file:'), m.get('url'))}: "
        f"line {m.get('lastLine')}: {m.get('message')} — {m.get('extract', '').strip()[:120]}"
        for m in report.get("messages", [])
        if m.get("type") == "error" or m.get("subType") == "fatal"
    ]
    assert "messages" in report, result.stderr[-2000:]
    assert errors == [], "\n".join(errors)


def test_the_checker_does_report_errors(tmp_path):
    """The harness would see a broken page (so a clean run above means something)."""
    jar = _vnu_jar()
    _need("Java", JAVA is not None)
    _need("vnu.jar", jar is not None)
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!doctype html><html lang="en"><title>x</title>'
        '<time datetime="2026-01-01T10:00:00.123456+00:00">x</time><h1>a</h1><h3>b</h3>',
        encoding="utf-8",
    )
    result = subprocess.run(
        [JAVA, "-jar", str(jar), "--format", "json", "--stdout", str(bad)],
        capture_output=True, text=True, timeout=120,
    )
    messages = json.loads(result.stdout)["messages"]
    assert any(m["type"] == "error" for m in messages), messages


# --- axe-core in Chromium ---------------------------------------------------------------

SERIOUS = {"serious", "critical"}


def _axe():
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        return None
    return Axe()


@pytest.mark.browser
def test_reader_pages_have_no_serious_accessibility_violations(
    transactional_db, demo, live_server, page
):
    axe = _axe()
    _need("axe-playwright-python", axe is not None)
    findings = []
    checked = 0
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        for label, url, _status in reader_pages():
            page.goto(live_server.url + url)
            results = axe.run(page)
            checked += 1
            for violation in results.response["violations"]:
                if violation.get("impact") in SERIOUS:
                    targets = [n.get("target") for n in violation.get("nodes", [])][:3]
                    findings.append(
                        f"{label} @{width}px: {violation['id']} ({violation['impact']}): "
                        f"{violation['help']} {targets}"
                    )
    assert checked >= 48
    assert findings == [], "\n".join(findings)


@pytest.mark.browser
def test_axe_does_report_a_broken_page(page):
    axe = _axe()
    _need("axe-playwright-python", axe is not None)
    page.set_content('<html><body><img src="x.png"><input type="text"></body></html>')
    violations = axe.run(page).response["violations"]
    assert {v["impact"] for v in violations} & SERIOUS, violations
