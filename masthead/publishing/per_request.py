"""Per-request memos for what several parts of one reader page ask the database for.

A reader page is assembled by the page's ``get_context``, the context processors, the
structured-data tags and the campaign and newsletter tags. Several of them need the same
rows: the active language's :class:`~wagtail.models.Locale`, the newsroom settings, the list
of view restrictions behind ``.public()``. Each helper here loads its rows once and keeps them
on the ``request`` object, so they live exactly as long as the request and can never serve
one request's answer to another. Without a request (a management command, a feed built
outside a view) the helpers simply query.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from django.utils.translation import get_language
from wagtail.models import Locale, Page, PageViewRestriction

from masthead.core import fragments


def _memo(request: HttpRequest | None, name: str, load) -> Any:
    if request is None:
        return load()
    attr = f"_masthead_{name}"
    if not hasattr(request, attr):
        setattr(request, attr, load())
    return getattr(request, attr)


def active_locale(request: HttpRequest | None) -> Locale | None:
    """The Locale of the active language, or None when the language has no locale."""
    language = get_language()

    def load() -> Locale | None:
        return Locale.objects.filter(language_code=language).first()

    # Keyed by language: a request may switch languages (e.g. a redirect check).
    return _memo(request, f"locale_{language}", load)


def newsroom_settings(request: HttpRequest | None):
    """The NewsroomSettings row (Wagtail caches a setting on the request it is given)."""
    from masthead.core.models import NewsroomSettings

    return NewsroomSettings.load(request_or_site=request) if request else NewsroomSettings.load()


def public(queryset, request: HttpRequest | None):
    """``queryset.public()`` — Wagtail's filter — reading the view restrictions once."""

    def load() -> list[Page]:
        return [r.page for r in PageViewRestriction.objects.select_related("page")]

    private = Q()
    # The same for every request of a generation: a view restriction's change raises it
    # (see apps.py).
    shared = _memo(request, "restricted_pages", lambda: fragments.cached(request, "private", load))
    for restricted in shared:
        private |= queryset.descendant_of_q(restricted, inclusive=True)
    return queryset.exclude(private) if private else queryset
