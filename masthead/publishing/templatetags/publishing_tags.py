"""Template helpers for reader pages: JSON-LD output, credit lines, absolute URLs."""

import json

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from masthead.reach.hosts import page_url

from ..structured_data import article_jsonld, image_url, site_root

register = template.Library()

_JSON_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


@register.simple_tag(takes_context=True)
def jsonld(context, page):
    """A ``<script type="application/ld+json">`` for an article, with the CSP nonce."""
    request = context.get("request")
    payload = json.dumps(article_jsonld(page, request), ensure_ascii=False).translate(_JSON_ESCAPES)
    nonce = getattr(request, "csp_nonce", "")
    return format_html(
        '<script type="application/ld+json" nonce="{}">{}</script>', nonce, mark_safe(payload)  # noqa: S308 (escaped above)
    )


@register.simple_tag(takes_context=True)
def absolute_image_url(context, page, image, spec="width-1200"):
    return image_url(page, image, spec, context.get("request"))


@register.simple_tag(takes_context=True)
def root_url(context, page):
    return site_root(page, context.get("request"))


@register.simple_tag(takes_context=True)
def absolute_page_url(context, page):
    """The page's absolute URL on the host the reader came in on (og:url, share links).

    The canonical link and hreflang alternates use ``page.full_url`` (the main domain).
    """
    request = context.get("request")
    return page_url(page, request) if request is not None else page.full_url
