"""The campaign placements of :mod:`.campaigns_tags`, built once per publication generation:
``{% shared_support_banner %}`` (the banner slot's HTML) and ``{% shared_appeal page %}``
(the appeal's HTML, with the page's own id and link put in at each render).

What is eligible depends on the language, the page's section and the clock (campaign dates),
never on the reader (see :mod:`masthead.campaigns.selection`), so one build serves every page
of a section until the next publication or one page-cache lifetime (see
:mod:`masthead.core.fragments`, which also keys by language and host).
"""

from __future__ import annotations

from django import template
from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.safestring import mark_safe

from masthead.core import fragments

from .campaigns_tags import appeal, support_banner

register = template.Library()


def section_key(page) -> tuple:
    """What campaign eligibility reads of ``page``: whether there is one, and its section
    (an article's section is its parent; see ``selection.section_of``)."""
    from masthead.publishing.models import ArticlePage, SectionPage

    if page is None or not getattr(page, "pk", None) or not hasattr(page, "get_parent"):
        return ("no page",)
    if isinstance(page, SectionPage):
        return ("section", page.path)
    if isinstance(page, ArticlePage):
        return ("section", page.path[: -page.steplen])
    return ("page", page.pk)


@register.simple_tag(takes_context=True)
def shared_support_banner(context) -> str:
    """``{% support_banner %}``, its HTML built once per generation, language, host and
    section."""
    request = context.get("request")

    def build() -> str:
        # No request: no context processors, so nothing per request (a CSRF token) can
        # reach the shared HTML; the tag's own context is all the template reads.
        return render_to_string("campaigns/banner.html", support_banner(context))

    return mark_safe(  # noqa: S308 (rendered by the template engine, autoescaped)
        fragments.cached(request, "support-banner", build, vary=section_key(context.get("page")))
    )


# Stand-ins for the two things of its page the appeal prints (its id, for campaigns.js, and
# its URL, where the checkout returns to): the shared HTML is rendered with them and each page
# puts in its own.
_PAGE_ID = "masthead-appeal-page-id"
_PAGE_URL = "/masthead-appeal-page-url/"


def _stand_in(page):
    """A page object that prints as the stand-ins, and as nothing else of any real page."""
    stand_in = type(page)(title="")
    stand_in.id = stand_in.pk = _PAGE_ID
    stand_in.get_url = lambda request=None, current_site=None: _PAGE_URL
    return stand_in


@register.simple_tag(takes_context=True)
def shared_appeal(context, page=None) -> str:
    """``{% appeal page %}``, its HTML built once per generation, language, host and section,
    with the page's own id and URL put in at each render."""
    request = context.get("request")
    real = page if page is not None and getattr(page, "pk", None) else None

    def build() -> str:
        data = appeal(context, real)
        if real is not None:
            data["page"] = _stand_in(real)
        return render_to_string("campaigns/appeal.html", data)

    html = fragments.cached(request, "appeal", build, vary=section_key(real))
    if real is not None:
        html = html.replace(_PAGE_ID, str(real.pk)).replace(
            _PAGE_URL, escape(real.get_url(request) or "")
        )
    return mark_safe(html)  # noqa: S308 (rendered by the template engine, autoescaped)
