"""Any host serves the site (issue 11): a mirror and the onion address get every reader page,
feed, form and redirect on their own host; only the canonical link and hreflang alternates
name the main domain; the main domain sends Onion-Location; the onion host is never
redirected to HTTPS nor sent HSTS; the page cache keeps each host's links apart."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client
from wagtail.models import Site

from masthead.contributions.models import Contribution, ContributionStatus
from masthead.publishing.models import ArticlePage, SectionPage
from tests.campaigns.factories import make_campaign

from .test_security import production_env

MAIN = "lantern.example"  # resolves nowhere: blocked, as far as these readers know
MIRROR = "mirror.example"
ONION = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuv.onion"
SANDBOX = "masthead.contributions.providers.sandbox.SandboxProvider"

# The only tags on a mirror's page that may name the main domain.
CANONICAL_TAGS = re.compile(
    r'<link rel="(?:canonical|alternate)" (?:hreflang="[^"]*" )?href="[^"]*">'
)
ORIGIN = {MIRROR: f"https://{MIRROR}", ONION: f"http://{ONION}", MAIN: f"https://{MAIN}"}


@pytest.fixture
def hosts(settings):
    settings.MASTHEAD_BASE_URL = f"https://{MAIN}"
    settings.MASTHEAD_MIRROR_HOSTS = [MIRROR]
    settings.MASTHEAD_ONION_HOST = ONION
    settings.ALLOWED_HOSTS = [MAIN, MIRROR, ONION]
    # Emails carry links to a host readers can reach (reach.mirrors: the email link host).
    settings.MASTHEAD_EMAIL_LINK_BASE_URL = f"https://{MIRROR}"
    settings.MASTHEAD_PAYMENT_PROVIDERS = {"sandbox": {"BACKEND": SANDBOX}}
    return settings


@pytest.fixture
def mirrored(hosts, demo):
    """The demo site whose Wagtail Site (and so every canonical link) is the main domain."""
    site = Site.objects.get(is_default_site=True)
    site.hostname, site.port = MAIN, 443
    site.save()
    return demo


def fetch(client: Client, url: str, host: str, method: str = "get", **extra):
    """A request to ``host`` as a browser sends it: HTTPS, except to the onion address."""
    return getattr(client, method)(url, HTTP_HOST=host, secure=host != ONION, **extra)


def reader_urls() -> list[str]:
    article = ArticlePage.objects.live().filter(locale__language_code="en").first()
    russian = ArticlePage.objects.live().filter(locale__language_code="ru").first()
    section = SectionPage.objects.live().filter(locale__language_code="en").first()
    return [
        "/", "/ru/", section.url, article.url, russian.url, "/privacy/", "/search/?q=valley",
        "/support/", "/ru/support/", "/newsletter/", "/newsletter/latest/", "/feeds/rss/",
        "/feeds/atom/", "/ru/feeds/rss/", f"/feeds/{section.slug}/atom/", "/sitemap.xml",
        "/news-sitemap.xml", "/robots.txt", "/newsletter/subscribe/", "/mirrors/",
        "/ru/mirrors/",
    ]


def without_canonical(html: str) -> str:
    return CANONICAL_TAGS.sub("", html)


def follow_on(client: Client, url: str, host: str, hops: int = 5):
    """GET ``url`` on ``host``, following redirects that must stay on that host."""
    for _ in range(hops):
        response = fetch(client, url, host)
        if response.status_code not in (301, 302, 303, 307, 308):
            return response
        location = response["Location"]
        parts = urlsplit(location)
        assert not parts.netloc or parts.hostname == host, f"{url} → {location}"
        url = parts.path + (f"?{parts.query}" if parts.query else "")
    raise AssertionError(f"too many redirects from {url}")


@pytest.mark.parametrize("host", [MIRROR, ONION])
def test_mirror_pages_name_the_main_domain_only_in_canonical_and_hreflang(client, mirrored, host):
    for url in reader_urls():
        response = follow_on(client, url, host)
        assert response.status_code == (405 if url.endswith("subscribe/") else 200), url
        body = response.content.decode()
        assert MAIN not in without_canonical(body), url
        if "<html" in body and 'rel="canonical"' in body:
            canonical = re.search(r'<link rel="canonical" href="([^"]*)">', body).group(1)
            assert canonical.startswith(f"https://{MAIN}/"), (url, canonical)
    missing = fetch(client, "/no-such-page/", host)
    assert missing.status_code == 404 and MAIN not in missing.content.decode()


@pytest.mark.parametrize("host", [MIRROR, ONION])
def test_article_on_a_mirror_links_to_the_mirror_and_names_the_main_domain_as_canonical(
    client, mirrored, host
):
    article = ArticlePage.objects.live().filter(locale__language_code="en").first()
    html = fetch(client, article.url, host).content.decode()
    origin = ORIGIN[host]
    assert f'<link rel="canonical" href="https://{MAIN}{article.url}">' in html
    assert re.search(rf'<link rel="alternate" hreflang="ru" href="https://{MAIN}/ru/', html)
    assert f'<meta property="og:url" content="{origin}{article.url}">' in html
    assert f'<meta property="og:image" content="{origin}/media/' in html
    jsonld = json.loads(re.search(r'application/ld\+json[^>]*>(.*?)</script>', html, re.S).group(1))
    assert jsonld["mainEntityOfPage"]["@id"] == origin + article.url
    assert jsonld["publisher"]["url"] == origin + "/"
    # Forms post to the host the page came from: relative actions, nothing absolute.
    assert re.findall(r'action="([^"]*)"', html)
    assert all(action.startswith("/") for action in re.findall(r'action="([^"]*)"', html))


@pytest.mark.parametrize("host", [MIRROR, ONION])
def test_feeds_sitemaps_and_robots_on_a_mirror_use_the_mirrors_address(client, mirrored, host):
    origin = ORIGIN[host]
    rss = fetch(client, "/feeds/rss/", host).content.decode()
    assert f"<link>{origin}/</link>" in rss
    assert re.search(rf"<item><title>[^<]*</title><link>{re.escape(origin)}/", rss)
    assert f'src="{origin}/media/' in rss.replace("&quot;", '"').replace("&lt;", "<")
    sitemap = fetch(client, "/sitemap.xml", host).content.decode()
    locations = re.findall(r"<loc>([^<]*)</loc>", sitemap)
    assert locations and all(loc.startswith(origin + "/") for loc in locations)
    robots = fetch(client, "/robots.txt", host).content.decode()
    assert f"Sitemap: {origin}/sitemap.xml" in robots
    assert f"Sitemap: {origin}/news-sitemap.xml" in robots


def test_the_main_domain_keeps_its_own_absolute_links(client, mirrored):
    article = ArticlePage.objects.live().filter(locale__language_code="en").first()
    html = fetch(client, article.url, MAIN).content.decode()
    assert f'<meta property="og:url" content="https://{MAIN}{article.url}">' in html
    assert MIRROR not in html and ONION not in html
    robots = fetch(client, "/robots.txt", MAIN).content.decode()
    assert f"Sitemap: https://{MAIN}/sitemap.xml" in robots


def test_the_page_cache_keeps_each_hosts_links(client, mirrored, django_assert_num_queries):
    article = ArticlePage.objects.live().filter(locale__language_code="en").first()
    og = '<meta property="og:url" content="{}{}">'
    for host in (MAIN, MIRROR, ONION):
        first = fetch(client, article.url, host)
        assert first["X-Masthead-Cache"] != "hit"
        assert og.format(ORIGIN[host], article.url) in first.content.decode()
    for host in (ONION, MIRROR, MAIN):
        with django_assert_num_queries(0):
            again = fetch(client, article.url, host)
        assert again["X-Masthead-Cache"] == "hit"
        html = again.content.decode()
        assert og.format(ORIGIN[host], article.url) in html
        others = {MAIN, MIRROR, ONION} - {host}
        assert not any(other in without_canonical(html) for other in others), host


def test_redirects_stay_on_the_readers_host(client, mirrored):
    article = ArticlePage.objects.live().filter(locale__language_code="en").first()
    for host in (MIRROR, ONION):
        for url in ("/favicon.ico", article.url.rstrip("/"), "/support", "/ru"):
            response = fetch(client, url, host)
            assert response.status_code in (301, 302), (url, response.status_code)
            location = urlsplit(response["Location"])
            assert not location.netloc or location.hostname == host, response["Location"]
        assert follow_on(client, article.url.rstrip("/"), host).status_code == 200


def test_onion_location_on_the_main_domains_reader_pages(client, mirrored, settings):
    article = ArticlePage.objects.live().filter(locale__language_code="en").first()
    response = fetch(client, article.url + "?x=1", MAIN)
    assert response["Onion-Location"] == f"http://{ONION}{article.url}?x=1"
    assert fetch(client, article.url, MAIN)["Onion-Location"] == f"http://{ONION}{article.url}"
    cached = fetch(client, article.url, MAIN)  # a page-cache hit carries it too
    assert cached["X-Masthead-Cache"] == "hit"
    assert cached["Onion-Location"] == f"http://{ONION}{article.url}"
    # A mirror offers it too (Tor Browser readers on a CDN domain); the onion itself does not.
    assert fetch(client, "/", MIRROR)["Onion-Location"] == f"http://{ONION}/"
    assert "Onion-Location" not in fetch(client, "/", ONION)
    # Not on staff pages, feeds or errors.
    assert "Onion-Location" not in fetch(client, "/admin/login/", MAIN)
    assert "Onion-Location" not in fetch(client, "/feeds/rss/", MAIN)
    assert "Onion-Location" not in fetch(client, "/no-such-page/", MAIN)
    settings.MASTHEAD_ONION_HOST = ""
    assert "Onion-Location" not in Client().get("/", HTTP_HOST=MAIN, secure=True)


def test_no_https_redirect_nor_hsts_on_the_onion_under_production_security(mirrored, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    client = Client()  # builds its middleware with these settings
    plain_main = client.get("/privacy/", HTTP_HOST=MAIN)
    assert plain_main.status_code == 301
    assert plain_main["Location"] == f"https://{MAIN}/privacy/"
    plain_mirror = client.get("/privacy/", HTTP_HOST=MIRROR)
    assert plain_mirror["Location"] == f"https://{MIRROR}/privacy/"
    assert "max-age=31536000" in client.get("/privacy/", HTTP_HOST=MAIN, secure=True)[
        "Strict-Transport-Security"
    ]
    onion = client.get("/privacy/", HTTP_HOST=ONION)
    assert onion.status_code == 200
    assert "Strict-Transport-Security" not in onion
    assert onion["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware's other headers
    assert onion["Referrer-Policy"] == "same-origin"
    # Even when a proxy in front of the onion service says HTTPS, no HSTS for the onion name.
    assert "Strict-Transport-Security" not in client.get("/privacy/", HTTP_HOST=ONION, secure=True)


ONION_SCRIPT = """
import django
django.setup()
from django.test import Client
client = Client()
for host in ("news.example.org", "mirror.example", "{onion}"):
    response = client.get("/robots.txt", HTTP_HOST=host)
    print(host, response.status_code, response.get("Location", "-"),
          response.get("Strict-Transport-Security", "-"), response.content.decode().count(host))
response = client.get("/robots.txt", HTTP_HOST="news.example.org", secure=True)
print("secure", response.status_code, response.get("Strict-Transport-Security", "-"),
      response.get("Onion-Location", "-"))
from django.conf import settings
print(sorted(settings.ALLOWED_HOSTS))
"""


def test_production_settings_from_the_environment(tmp_path):
    env = production_env(tmp_path)
    env.update(
        DJANGO_SETTINGS_MODULE="masthead.settings",
        MASTHEAD_MIRROR_HOSTS="https://Mirror.example/, cdn.example:8443",
        MASTHEAD_ONION_HOST=ONION,
    )
    result = subprocess.run(
        [sys.executable, "-c", ONION_SCRIPT.format(onion=ONION)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    main, mirror, onion, secure, allowed = lines[-5:]
    assert main.split()[1:3] == ["301", "https://news.example.org/robots.txt"]
    assert mirror.split()[1:3] == ["301", "https://mirror.example/robots.txt"]
    assert onion.split() == [ONION, "200", "-", "-", "2"]  # both sitemaps on the onion
    assert secure.split()[1] == "200" and secure.split()[2] != "-"  # HSTS on the main domain
    assert set(eval(allowed)) >= {"news.example.org", "mirror.example", "cdn.example", ONION}  # noqa: S307


def test_sign_up_from_a_mirror(client, mirrored, settings, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = fetch(
            client, "/newsletter/subscribe/", MIRROR, "post", data={"email": "ada@example.org"}
        )
    assert response.status_code == 200
    assert MAIN not in response.content.decode()
    assert mail.outbox  # one confirmation per newsletter the form signs up for
    link = re.search(r"https?://\S+/newsletter/confirm/\S+/", mail.outbox[0].body).group(0)
    # Email links go to the configured email link host (here the mirror), not the main domain.
    assert link.startswith(settings.MASTHEAD_EMAIL_LINK_BASE_URL + "/")
    path = urlsplit(link).path
    assert fetch(client, path, MIRROR).status_code == 200
    confirmed = fetch(client, path, MIRROR, "post")
    assert confirmed.status_code == 200 and MAIN not in confirmed.content.decode()


def test_giving_from_a_mirror_returns_to_the_mirror(
    client, mirrored, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    mail.outbox.clear()
    data = {"frequency": "monthly", "amount": "500", "currency": "USD", "provider": "sandbox"}
    response = fetch(client, "/support/checkout/", MIRROR, "post", data=data)
    assert response.status_code == 303
    sandbox = urlsplit(response["Location"])
    assert not sandbox.netloc or sandbox.hostname == MIRROR
    page = fetch(client, sandbox.path, MIRROR)
    assert page.status_code == 200 and MAIN not in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = fetch(
            client, sandbox.path, MIRROR, "post",
            data={"action": "complete", "email": "ada@example.org"},
        )
    assert done.status_code == 302
    back = urlsplit(done["Location"])
    assert back.path.startswith("/support/checkout/") and back.hostname in (None, MIRROR)
    thanks = fetch(client, back.path, MIRROR)
    assert thanks.status_code == 200 and MAIN not in thanks.content.decode()
    assert Contribution.objects.latest("pk").status == ContributionStatus.SUCCEEDED
    receipt = mail.outbox[-1].body
    manage = re.search(r"https?://[^\s\"<>]+/support/manage/[^\s\"<>]+/", receipt).group(0)
    assert manage.startswith(settings.MASTHEAD_EMAIL_LINK_BASE_URL + "/")
    page = fetch(client, urlsplit(manage).path, MIRROR)
    assert page.status_code == 200 and MAIN not in page.content.decode()
    assert "Cancel my monthly support" in page.content.decode()


def test_the_sandbox_provider_is_told_the_mirrors_return_addresses(client, mirrored, monkeypatch):
    from masthead.contributions.providers.sandbox import SandboxProvider

    seen = []
    original = SandboxProvider.start_checkout

    def spy(self, contribution, plan, urls):
        seen.append(urls)
        return original(self, contribution, plan, urls)

    monkeypatch.setattr(SandboxProvider, "start_checkout", spy)
    data = {"frequency": "once", "amount": "500", "currency": "USD", "provider": "sandbox"}
    fetch(client, "/support/checkout/", ONION, "post", data=data)
    (urls,) = seen
    for value in vars(urls).values() if hasattr(urls, "__dict__") else urls._asdict().values():
        if isinstance(value, str) and "://" in value:
            assert value.startswith(f"http://{ONION}/"), value


def test_campaign_counters_accept_events_from_a_mirrors_pages(client, mirrored):
    campaign = make_campaign(name="mirror")
    variant = campaign.variants.get()
    event = {"campaign": campaign.pk, "variant": variant.pk, "event": "impression"}
    body = json.dumps({"events": [event]})
    for host in (MIRROR, ONION):
        response = fetch(
            client, "/campaigns/events/", host, "post", data=body,
            content_type="text/plain;charset=UTF-8", HTTP_ORIGIN=ORIGIN[host],
        )
        assert response.status_code == 204, host
    # Another host's page may not post here.
    response = fetch(
        client, "/campaigns/events/", MIRROR, "post", data=body,
        content_type="text/plain;charset=UTF-8", HTTP_ORIGIN=f"https://{MAIN}",
    )
    assert response.status_code == 403


def test_an_edition_link_click_continues_on_the_mirror(client, mirrored):
    from masthead.newsletters.models import Edition, EditionLink, Newsletter

    edition = Edition.objects.create(newsletter=Newsletter.objects.first(), subject="Links")
    article = ArticlePage.objects.live().first()
    ours = EditionLink.objects.create(edition=edition, url=f"https://{MAIN}{article.url}?utm=x")
    theirs = EditionLink.objects.create(edition=edition, url="https://creativecommons.org/")
    response = fetch(client, f"/newsletter/r/{edition.pk}/{ours.pk}/", MIRROR)
    assert response["Location"] == f"https://{MIRROR}{article.url}?utm=x"
    response = fetch(client, f"/newsletter/r/{edition.pk}/{theirs.pk}/", MIRROR)
    assert response["Location"] == "https://creativecommons.org/"


def test_unknown_hosts_are_still_refused(client, mirrored):
    assert fetch(client, "/", "elsewhere.example").status_code == 400


def test_publishing_purges_the_mirrors_copies_from_a_cdn_in_front(
    mirrored, settings, django_capture_on_commit_callbacks
):
    from tests.test_cdn_purge import PURGED

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.WAGTAILFRONTENDCACHE = {"test": {"BACKEND": "tests.test_cdn_purge.RecordingBackend"}}
    PURGED.clear()
    article = ArticlePage.objects.live().filter(locale__language_code="en").first()
    with django_capture_on_commit_callbacks(execute=True):
        article.save_revision().publish()
    for origin in (f"https://{MAIN}", f"https://{MIRROR}", f"http://{ONION}"):
        for path in (article.url, article.get_parent().url, "/", "/feeds/rss/", "/sitemap.xml"):
            assert origin + path in PURGED, (origin + path, sorted(PURGED))


def test_the_origin_links_are_built_on(hosts, db):
    from django.test import RequestFactory

    from masthead.reach.hosts import on_reader_host, reader_base_url

    factory = RequestFactory()

    def origin(host, secure=False):
        return reader_base_url(factory.get("/", HTTP_HOST=host, secure=secure))

    # The main domain is MASTHEAD_BASE_URL exactly, whatever a proxy told us of the scheme.
    assert origin(MAIN) == origin(MAIN, secure=True) == f"https://{MAIN}"
    assert origin(MIRROR, secure=True) == f"https://{MIRROR}"
    assert origin(MIRROR) == f"http://{MIRROR}"  # development: as the request came
    assert origin(ONION) == origin(ONION, secure=True) == f"http://{ONION}"
    assert origin("elsewhere.example") == f"https://{MAIN}"  # refused host: the main domain
    assert reader_base_url(None) == f"https://{MAIN}"
    hosts.PRODUCTION = True  # TLS ended at a proxy that did not say so
    assert origin(MIRROR) == f"https://{MIRROR}"
    assert origin(ONION) == f"http://{ONION}"
    request = factory.get("/", HTTP_HOST=ONION)
    assert on_reader_host(f"https://{MAIN}/news/?a=1#top", request) == f"http://{ONION}/news/?a=1#top"
    assert on_reader_host("/feeds/rss/", request) == f"http://{ONION}/feeds/rss/"
    assert on_reader_host("https://example.org/x", request) == "https://example.org/x"


def test_the_onion_middleware_refuses_to_start_out_of_place(settings):
    from django.core.exceptions import ImproperlyConfigured
    from django.http import HttpResponse

    from masthead.reach.middleware import ReaderHostMiddleware

    settings.MASTHEAD_ONION_HOST = ONION
    with pytest.raises(ImproperlyConfigured, match="right before SecurityMiddleware"):
        ReaderHostMiddleware(lambda request: HttpResponse())
    settings.MASTHEAD_ONION_HOST = ""
    ReaderHostMiddleware(lambda request: HttpResponse())  # nothing to step over: fine
