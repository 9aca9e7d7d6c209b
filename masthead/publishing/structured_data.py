"""schema.org NewsArticle JSON-LD for article pages, built from the page's own fields."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.templatetags.static import static

from masthead.core.outlet import outlet_name
from masthead.reach.hosts import page_url, reader_base_url


def site_root(page, request: HttpRequest | None = None) -> str:
    """The root URL this page's absolute links use, e.g. ``https://example.org``.

    With a request, the host the reader came in on (a mirror, the onion address: see
    :mod:`masthead.reach.hosts`); without one, the page's site, read from Wagtail's (cached)
    site root paths rather than ``page.get_site()``, which queries the Site row every call.
    """
    if request is not None:
        return reader_base_url(request)
    parts = page.get_url_parts(request)
    return parts[1] if parts and parts[1] else settings.MASTHEAD_BASE_URL


def image_url(
    page, image, spec: str = "width-1200", request: HttpRequest | None = None
) -> str:
    return site_root(page, request) + image.get_rendition(spec).url


def _page_url(page, request: HttpRequest | None) -> str | None:
    return page_url(page, request) if request is not None else page.get_full_url()


def _absolute(page, request: HttpRequest | None, url: str) -> str:
    return url if "://" in url else site_root(page, request) + url


def _iso(moment) -> str | None:
    """ISO 8601 to the second, with the offset (no microseconds)."""
    return moment.replace(microsecond=0).isoformat() if moment else None


def article_jsonld(page, request: HttpRequest | None = None) -> dict:
    """The NewsArticle object for ``page`` (an ArticlePage)."""
    from .per_request import newsroom_settings

    data = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "mainEntityOfPage": {"@type": "WebPage", "@id": _page_url(page, request)},
        "headline": page.title[:110],
        "inLanguage": page.locale.language_code,
        "datePublished": _iso(page.published_at),
        "dateModified": _iso(page.modified_at),
        "author": [
            {"@type": "Person", "name": author.name} for author in page.authors
        ] or [{"@type": "Organization", "name": outlet_name(page.locale.language_code)}],
        "publisher": {
            "@type": "NewsMediaOrganization",
            "name": outlet_name(page.locale.language_code),
            "url": site_root(page, request) + "/",
            # The first-party mark, unless the newsroom chose a logo in its settings.
            "logo": {
                "@type": "ImageObject",
                "url": _absolute(page, request, static("masthead/img/logo-512.png")),
                "width": 512,
                "height": 512,
            },
        },
        "isAccessibleForFree": True,
    }
    if page.standfirst:
        data["description"] = page.standfirst
    if page.lead_image:
        data["image"] = [image_url(page, page.lead_image, request=request)]
    section = page.section
    if section:
        data["articleSection"] = section.title
    keywords = [tag.name for tag in page.tags.all()]
    if keywords:
        data["keywords"] = keywords
    logo = newsroom_settings(request).publisher_logo
    if logo:
        rendition = logo.get_rendition("max-600x60")
        data["publisher"]["logo"] = {
            "@type": "ImageObject",
            "url": site_root(page, request) + rendition.url,
            "width": rendition.width,
            "height": rendition.height,
        }
    return {key: value for key, value in data.items() if value is not None}
