"""What a story card (teaser) prints beside its headline — its section label and byline —
read for a whole list of articles in two queries instead of two per card.

``ArticlePage.authors`` is a cached property: filling it here means the card's template reads
it for free; ``card_section`` is the article's section, found by its tree path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import prefetch_related_objects


def prepare_cards(articles: Iterable, sections: Iterable | None = None) -> list:
    """Fill ``authors`` and ``card_section`` on each article (and prefetch image renditions);
    ``sections`` are the candidate parents already loaded, if any."""
    from .models import ArticleAuthor, SectionPage

    articles = [a for a in articles if a is not None]
    if not articles:
        return articles
    by_article = defaultdict(list)
    links = ArticleAuthor.objects.filter(page__in=[a.pk for a in articles]).select_related(
        "author"
    )
    for link in links.order_by("sort_order", "pk"):
        by_article[link.page_id].append(link.author)
    steplen = SectionPage.steplen
    parents = {a.path[:-steplen] for a in articles}
    known = {s.path: s for s in (sections or []) if s.path in parents}
    missing = parents - known.keys()
    if missing:
        known.update({s.path: s for s in SectionPage.objects.filter(path__in=missing)})
    for article in articles:
        article.__dict__["authors"] = by_article.get(article.pk, [])
        article.card_section = known.get(article.path[:-steplen])
    with_images = [a for a in articles if a.lead_image_id]
    if with_images:
        prefetch_related_objects([a.lead_image for a in with_images], "renditions")
    return articles
