"""Which hosts serve the site, and absolute URLs on the host a reader came in on.

The main domain (``MASTHEAD_BASE_URL``) is blocked for many readers, so any configured
mirror (``MASTHEAD_MIRROR_HOSTS``) and the onion address (``MASTHEAD_ONION_HOST``) serve the
whole site. Relative links already stay on the reader's host; this module is for the few
places that must write an absolute URL (feeds, sitemaps, robots.txt, Open Graph, JSON-LD,
a payment provider's return address): they take the origin from the request, which
Django has already checked against ``ALLOWED_HOSTS``. Only the canonical link and the
``hreflang`` alternates name the main domain (:func:`canonical_base_url`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest


def hostname_of(value: str) -> str:
    """``mirror.example`` from ``mirror.example``, ``https://Mirror.example:8443/`` and the like."""
    value = value.strip()
    if not value:
        return ""
    if "//" not in value:
        value = "//" + value
    try:
        return (urlsplit(value).hostname or "").lower()
    except ValueError:
        return ""


def canonical_base_url() -> str:
    """The main domain's origin, e.g. ``https://lantern.example`` (canonical and hreflang)."""
    return settings.MASTHEAD_BASE_URL.rstrip("/")


def main_host() -> str:
    return hostname_of(settings.MASTHEAD_BASE_URL)


def onion_host() -> str:
    return hostname_of(getattr(settings, "MASTHEAD_ONION_HOST", ""))


def mirror_hosts() -> list[str]:
    return [hostname_of(host) for host in getattr(settings, "MASTHEAD_MIRROR_HOSTS", [])]


def mirror_origins() -> list[str]:
    """The origins of every host besides the main domain: mirrors over HTTPS, the onion over
    HTTP (for purging a cache that fronts them too)."""
    origins = [f"https://{host}" for host in mirror_hosts() if host]
    if onion_host():
        origins.append(f"http://{onion_host()}")
    return origins


def request_hostname(request: HttpRequest) -> str:
    """The host the request names, without port, or '' when it is not an allowed host."""
    try:
        return hostname_of(request.get_host())
    except DisallowedHost:
        return ""


def is_onion(request: HttpRequest) -> bool:
    onion = onion_host()
    return bool(onion) and request_hostname(request) == onion


def reader_base_url(request: HttpRequest | None) -> str:
    """The origin the reader came in on (``http://abc….onion``, ``https://mirror.example``).

    Without a request (email, a management command) or with a host Django refuses, it is
    the main domain; on the main domain it is ``MASTHEAD_BASE_URL`` exactly, as before
    mirrors existed. The onion is always plain HTTP. In production a request that reached
    the site unencrypted came through a proxy that terminated TLS without saying so (the
    HTTPS redirect would have caught it otherwise), so its links say ``https``.
    """
    if request is None:
        return canonical_base_url()
    try:
        host = request.get_host()
    except DisallowedHost:
        return canonical_base_url()
    if host == urlsplit(canonical_base_url()).netloc:
        return canonical_base_url()
    if hostname_of(host) == onion_host():
        return f"http://{host}"
    secure = request.is_secure() or getattr(settings, "PRODUCTION", False)
    return f"{'https' if secure else 'http'}://{host}"


def reader_url(request: HttpRequest | None, path: str) -> str:
    """An absolute URL for ``path`` (``/feeds/rss/``) on the reader's host."""
    return reader_base_url(request) + "/" + path.lstrip("/")


def on_reader_host(url: str, request: HttpRequest | None) -> str:
    """``url`` moved to the reader's host when it is one of ours (e.g. Wagtail's full URL).

    Relative URLs are made absolute on the reader's host; URLs on other sites (a licence
    deed, a payment provider) are left as they are.
    """
    if not url:
        return url
    parts = urlsplit(url)
    if not parts.netloc:
        return reader_url(request, url)
    own = {main_host(), onion_host(), *mirror_hosts(), *_wagtail_site_hosts(), _email_host()}
    if (parts.hostname or "").lower() not in own:
        return url
    rest = parts.path or "/"
    if parts.query:
        rest += "?" + parts.query
    if parts.fragment:
        rest += "#" + parts.fragment
    return reader_base_url(request) + rest


def _email_host() -> str:
    return hostname_of(getattr(settings, "MASTHEAD_EMAIL_LINK_BASE_URL", ""))


def _wagtail_site_hosts() -> set[str]:
    """Hostnames of Wagtail's Site records, from the site root paths Wagtail caches."""
    from wagtail.models import Site

    return {hostname_of(root_url) for _id, _path, root_url, _lang in Site.get_site_root_paths()}


def page_url(page, request: HttpRequest | None) -> str:
    """The absolute URL of a Wagtail page on the reader's host ('' if not routable)."""
    parts = page.get_url_parts(request)
    if not parts or parts[2] is None:
        return ""
    return reader_url(request, parts[2])
