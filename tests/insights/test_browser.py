"""Insights in Chromium at 390 and 1280 px: headline figures first, then charts that are
drawn (inline SVG with bars), no script from a chart, nothing from another origin, and the
page no wider than the screen. Set MASTHEAD_SCREENSHOTS=DIR to keep the screenshots."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group
from django.test import Client

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [390, 1280])
def test_insights_at_a_glance(transactional_db, live_server, known, page, width, tmp_path,
                              django_user_model):
    lead = django_user_model.objects.create_user("lead", password="x")
    lead.groups.add(Group.objects.get(name="Audience & revenue"))
    client = Client()
    client.force_login(lead)
    origin = urlsplit(live_server.url)
    page.context.add_cookies([{
        "name": "sessionid", "value": client.cookies["sessionid"].value,
        "domain": origin.hostname, "path": "/",
    }])
    foreign, problems = [], []
    page.on("request", lambda r: urlsplit(r.url).netloc not in (origin.netloc, "")
            and foreign.append(r.url))
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.set_viewport_size({"width": width, "height": 900})

    page.goto(live_server.url + "/admin/insights/?start=2025-05&end=2026-04")
    assert page.locator("h1").inner_text().startswith("Insights")
    headlines = page.locator(".insights-headline")
    assert headlines.count() == 6
    assert "€135" in headlines.first.inner_text()
    # The headline row comes before the first chart.
    top_of_headlines = headlines.first.bounding_box()["y"]
    first_chart = page.locator(".insights-chart svg").first
    assert top_of_headlines < first_chart.bounding_box()["y"]
    assert page.locator(".insights-chart svg").count() == 11
    assert page.locator(".insights-chart svg rect.rect").count() > 10  # bars were drawn
    assert page.locator(".insights-chart script").count() == 0
    folder = Path(os.environ.get("MASTHEAD_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"insights-{width}-top.png"))
    # Each table opens, and is a real table with a caption.
    page.locator("#revenue summary").click()
    assert page.locator("#revenue table caption").is_visible()
    # Wagtail's admin scrolls its main column, not the document: neither may be wider than
    # the screen (wide charts and tables scroll inside their own boxes).
    overflow = page.evaluate("""Math.max(
        document.documentElement.scrollWidth - document.documentElement.clientWidth,
        ...[...document.querySelectorAll('main, .insights')].map(
            e => e.scrollWidth - e.clientWidth))""")
    wide = page.evaluate("""[...document.querySelectorAll('main *')]
        .filter(e => e.getBoundingClientRect().right > innerWidth + 1
                && !e.closest('.insights-chart, .insights-table-scroll'))
        .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' +
                         Math.round(e.getBoundingClientRect().right))""")
    assert overflow <= 0, f"Insights is {overflow}px wider than a {width}px screen: {wide}"
    height = page.evaluate("document.querySelector('main').scrollHeight")
    page.set_viewport_size({"width": width, "height": height + 100})
    page.screenshot(path=str(folder / f"insights-{width}.png"))
    assert foreign == []
    assert problems == []
