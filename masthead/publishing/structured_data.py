"""schema.org NewsArticle JSON-LD for article pages, built from the page's own fields."""

from __future__ import annotations

from django.conf import settings


def site_root(page) -> str:
    site = page.get_site()
    return site.root_url if site else settings.MASTHEAD_BASE_URL


def image_url(page, image, spec: str = "width-1200") -> str:
    return site_root(page) + image.get_rendition(spec).url


def article_jsonld(page) -> dict:
    """The NewsArticle object for ``page`` (an ArticlePage)."""
    from masthead.core.models import NewsroomSettings

    data = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "mainEntityOfPage": {"@type": "WebPage", "@id": page.full_url},
        "headline": page.title[:110],
        "inLanguage": page.locale.language_code,
        "datePublished": page.published_at.isoformat() if page.published_at else None,
        "dateModified": page.modified_at.isoformat() if page.modified_at else None,
        "author": [
            {"@type": "Person", "name": author.name} for author in page.authors
        ] or [{"@type": "Organization", "name": settings.MASTHEAD_OUTLET_NAME}],
        "publisher": {
            "@type": "NewsMediaOrganization",
            "name": settings.MASTHEAD_OUTLET_NAME,
            "url": site_root(page) + "/",
        },
        "isAccessibleForFree": True,
    }
    if page.standfirst:
        data["description"] = page.standfirst
    if page.lead_image:
        data["image"] = [image_url(page, page.lead_image)]
    if page.section:
        data["articleSection"] = page.section.title
    keywords = [tag.name for tag in page.tags.all()]
    if keywords:
        data["keywords"] = keywords
    logo = NewsroomSettings.load().publisher_logo
    if logo:
        data["publisher"]["logo"] = {
            "@type": "ImageObject",
            "url": image_url(page, logo, "max-600x60"),
        }
    return {key: value for key, value in data.items() if value is not None}
