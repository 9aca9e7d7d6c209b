"""Template helpers for reader pages: JSON-LD output, credit lines, absolute URLs, and story
cards built once per publication generation (``{% shared_teaser %}``)."""

import json

from django import template
from django.template.loader import get_template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from masthead.core import fragments
from masthead.reach.hosts import page_url

from ..structured_data import article_jsonld, image_url, site_root

register = template.Library()

_JSON_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


@register.simple_tag(takes_context=True)
def jsonld(context, page):
    """A ``<script type="application/ld+json">`` for an article, with the CSP nonce."""
    request = context.get("request")
    # The object is the page's own (only a publication changes it); the nonce is per request.
    payload = fragments.cached(
        request,
        "jsonld",
        lambda: json.dumps(article_jsonld(page, request), ensure_ascii=False).translate(
            _JSON_ESCAPES
        ),
        vary=(page.pk,),
    )
    nonce = getattr(request, "csp_nonce", "")
    return format_html(
        '<script type="application/ld+json" nonce="{}">{}</script>', nonce, mark_safe(payload)  # noqa: S308 (escaped above)
    )


@register.simple_tag(takes_context=True)
def absolute_image_url(context, page, image, spec="width-1200"):
    request = context.get("request")
    # Per generation: no rendition lookup (a cache read per call) on every render.
    return fragments.cached(
        request, "image-url", lambda: image_url(page, image, spec, request),
        vary=(image.pk, spec),
    )


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


TEASER = "publishing/includes/teaser.html"


def _identity(value):
    """What a fragment's key holds for one of its variables: a saved object by class and
    pk (only a publication changes what it prints), a plain value as it is."""
    if getattr(value, "pk", None) is not None:
        return (type(value).__name__, value.pk)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"no key for a {type(value).__name__}")


@register.simple_tag(takes_context=True)
def shared_include(context, template_name: str, **variables) -> str:
    """``{% include template_name with **variables only %}``, its HTML built once per
    generation, language and host for each set of variables, and shared by every page that
    includes the same (a story card on the home, its section, read-more and search; a photo
    with its caption).

    The template sees only the variables and the request (for its links' site), never the
    page around it, so what it prints cannot depend on anything the key leaves out. No
    context processors run: nothing per request (a CSRF token, a nonce) can get in.
    """
    request = context.get("request")

    def build() -> str:
        return get_template(template_name).render({"request": request, **variables})

    try:
        vary = (template_name, *((k, _identity(v)) for k, v in sorted(variables.items())))
    except TypeError:
        return build()
    return mark_safe(fragments.cached(request, "include", build, vary=vary))  # noqa: S308


@register.simple_tag(takes_context=True)
def shared_teaser(context, article, **options) -> str:
    """The story card of ``article`` (``publishing/includes/teaser.html``), shared."""
    return shared_include(context, TEASER, article=article, **options)
