"""``{% shared_newsletter_signup %}``: the sign-up block of :mod:`.newsletter_tags`, its HTML
built once per publication generation, language and host (see
:mod:`masthead.core.fragments`).

The block is the same for every reader: its form posts to a ``csrf_exempt`` view and carries
no token, and nothing in it is per request.
"""

from __future__ import annotations

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from masthead.core import fragments

from .newsletter_tags import newsletter_signup

register = template.Library()


@register.simple_tag(takes_context=True)
def shared_newsletter_signup(context, source: str = "article") -> str:
    request = context.get("request")

    def build() -> str:
        # No request: no context processors, so nothing per request (a CSRF token) can
        # reach the shared HTML; the tag's own context is all the template reads.
        return render_to_string("newsletters/signup_block.html", newsletter_signup(context, source))

    return mark_safe(  # noqa: S308 (rendered by the template engine, autoescaped)
        fragments.cached(request, "newsletter-signup", build, vary=(source,))
    )
