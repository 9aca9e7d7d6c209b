"""The /mirrors/ page in Chromium on a phone (390 px) and a desktop (1280 px): long onion
addresses wrap instead of widening the page, no CSP violation, nothing from another origin.
Set MASTHEAD_SCREENSHOTS=DIR to keep the screenshots."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from masthead.reach.models import Mirror

pytestmark = pytest.mark.browser

ONION = "http://lanternmirrorexampleaddressforscreenshotsxxxxxxxxxxxxxx.onion/"


@pytest.mark.parametrize("width", [390, 1280])
def test_mirrors_page_fits_phone_and_desktop(
    transactional_db, page, live_server, site, width, tmp_path
):
    Mirror.objects.create(url="https://d1f2e3a4b5c6d7.cloudfront.net/", kind="cdn", status="ok")
    Mirror.objects.create(url="https://lantern-news-mirror.example/", kind="domain",
                          status="ok")
    Mirror.objects.create(url=ONION, kind="onion")
    Mirror.objects.create(
        url="https://ipfs.example/ipfs/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi/",
        kind="ipfs", status="ok")
    origin = urlsplit(live_server.url).netloc
    foreign, violations = [], []
    page.on("request", lambda r: urlsplit(r.url).netloc not in (origin, "") and
            foreign.append(r.url))
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    page.set_viewport_size({"width": width, "height": 900})
    for path in ("/mirrors/", "/ru/mirrors/"):
        page.goto(live_server.url + path)
        assert page.locator("h1").count() == 1
        assert page.locator(f'a[href="{ONION}"]').is_visible()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than a {width}px screen"
        folder = Path(os.environ.get("MASTHEAD_SCREENSHOTS") or tmp_path)
        folder.mkdir(parents=True, exist_ok=True)
        name = path.strip("/").replace("/", "-")
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
    assert foreign == [] and violations == []
