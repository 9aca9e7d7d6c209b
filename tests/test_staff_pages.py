"""Nothing loads from third parties on staff pages either (no Gravatar, no CDN Bootstrap);
the favicon is our own."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db

# Things a browser loads by itself (links a person may click are fine).
EXTERNAL = re.compile(r"""(?:\bsrc=|<link\b[^>]*\bhref=)["'](?:https?:)?//(?!testserver)""")


def test_admin_shows_no_gravatar(site, admin_client):
    html = admin_client.get("/admin/").content.decode()
    assert "gravatar" not in html
    assert not EXTERNAL.findall(html)


def test_two_factor_setup_is_styled_by_us_and_cancel_returns_to_the_admin(
    site, client, admin_user, settings
):
    settings.MASTHEAD_STAFF_TWO_FACTOR = True
    client.force_login(admin_user)
    redirect = client.get("/admin/")
    assert redirect.status_code == 302 and "/account/two_factor/setup/" in redirect["Location"]
    response = client.get(redirect["Location"], follow=True)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Provide a template named" not in html
    assert "/static/masthead/css/staff.css" in html
    assert not EXTERNAL.findall(html), EXTERNAL.findall(html)
    assert 'href="/accounts/profile/"' not in html


def test_favicon_is_ours_and_found(site, client):
    page = client.get("/").content.decode()
    assert 'rel="icon" href="/static/masthead/img/favicon.svg"' in page
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
    assert client.get(response["Location"]).status_code == 200
