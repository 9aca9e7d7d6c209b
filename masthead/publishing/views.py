"""Reader views of publishing that are not pages: search and the Google News sitemap."""

from __future__ import annotations

import re
from datetime import timedelta

from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from wagtail.models import Locale

from masthead.core.outlet import outlet_name
from masthead.core.pagecache import mark_public

from .cards import prepare_cards
from .models import live_articles

MAX_QUERY = 200


# Anything but letters, digits and "_": the search backends' own syntax (FTS5's quotes,
# parentheses, "*", "^", column filters; tsquery's "&|!:") that a reader never means.
_NOT_A_WORD = re.compile(r"[^\w]+")


def search_words(query: str) -> str:
    """The words of a reader's query, for the search backend: punctuation, quotes and search
    syntax become spaces (SQLite's FTS5 answered an unbalanced quote with a syntax error)."""
    return " ".join(_NOT_A_WORD.sub(" ", query).split())


def search(request):
    # Control characters (NUL above all, which PostgreSQL refuses in text) never mean anything
    # in a search: drop them rather than fail.
    query = "".join(ch if ch.isprintable() else " " for ch in request.GET.get("q", ""))
    query = " ".join(query.split())
    results: list = []
    error = ""
    if len(query) > MAX_QUERY:
        error = _("Please search for at most %(n)d characters.") % {"n": MAX_QUERY}
    elif words := search_words(query):
        locale = Locale.objects.filter(language_code=get_language()).first()
        results = prepare_cards(live_articles(locale).search(words)[:50])
    status = 400 if error else 200
    response = render(
        request,
        "publishing/search.html",
        {"query": query[:MAX_QUERY], "results": results, "error": error},
        status=status,
    )
    return mark_public(response) if not error else response


def news_sitemap(request):
    """Google News sitemap: articles published in the last 48 hours (at most 1,000)."""
    since = timezone.now() - timedelta(hours=48)
    articles = (
        live_articles()
        .filter(published_at__gte=since)
        .select_related("locale")[:1000]
    )
    response = render(
        request,
        "publishing/news_sitemap.xml",
        {"articles": articles, "publication": outlet_name()},
        content_type="application/xml; charset=utf-8",
    )
    return mark_public(response)
