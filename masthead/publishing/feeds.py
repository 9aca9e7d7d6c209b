"""RSS 2.0 and Atom feeds, site-wide and per section, carrying each article's full text."""

from __future__ import annotations

import copy
import re

from django.contrib.syndication.views import Feed
from django.http import Http404
from django.template.loader import render_to_string
from django.utils.feedgenerator import Atom1Feed, Rss201rev2Feed
from django.utils.translation import get_language
from wagtail.models import Locale

from masthead.core.outlet import outlet_name
from masthead.core.pagecache import mark_public
from masthead.reach.hosts import reader_base_url

from .models import SectionPage, live_articles

FEED_LENGTH = 30

# Wagtail's editor marks each rich-text block with data-block-key="…": internal, and
# meaningless to a feed reader.
BLOCK_KEY_RE = re.compile(r'\s+data-block-key="[^"]*"')


class FullTextRss(Rss201rev2Feed):
    """RSS 2.0 with the article's HTML in ``content:encoded`` beside the summary."""

    def rss_attributes(self):
        attrs = super().rss_attributes()
        attrs["xmlns:content"] = "http://purl.org/rss/1.0/modules/content/"
        attrs["xmlns:dc"] = "http://purl.org/dc/elements/1.1/"
        return attrs

    def add_item_elements(self, handler, item):
        super().add_item_elements(handler, item)
        # Django already writes the first author as <dc:creator> (a name with no email).
        already = 1 if item.get("author_name") and not item.get("author_email") else 0
        for name in item.get("creators", [])[already:]:
            handler.addQuickElement("dc:creator", name)
        if item.get("content"):
            handler.addQuickElement("content:encoded", item["content"])


class FullTextAtom(Atom1Feed):
    """Atom with the article's HTML in ``<content type="html">``."""

    def add_item_elements(self, handler, item):
        super().add_item_elements(handler, item)
        for name in item.get("creators", [])[1:]:
            handler.startElement("contributor", {})
            handler.addQuickElement("name", name)
            handler.endElement("contributor")
        if item.get("content"):
            handler.addQuickElement("content", item["content"], {"type": "html"})


class ArticleFeed(Feed):
    feed_type = FullTextRss
    section: SectionPage | None = None

    request = None

    def __call__(self, request, *args, **kwargs):
        # One instance serves every request (it is in the URLconf): each request gets its
        # own copy to hold the request, so concurrent requests on two hosts never mix.
        feed = copy.copy(self)
        feed.request = request
        return mark_public(Feed.__call__(feed, request, *args, **kwargs))

    def get_object(self, request, slug: str | None = None):
        locale = Locale.objects.filter(language_code=get_language()).first()
        if slug is None:
            return locale
        section = SectionPage.objects.live().public().filter(slug=slug, locale=locale).first()
        if section is None:
            raise Http404("No such section")
        return section

    def title(self, obj):
        name = outlet_name()
        return f"{obj.title} — {name}" if isinstance(obj, SectionPage) else name

    def link(self, obj):
        return obj.url if isinstance(obj, SectionPage) else "/"

    def description(self, obj):
        return getattr(obj, "intro", "") or f"Latest from {outlet_name()}"

    def feed_url(self, obj):
        return self.request.path

    def items(self, obj):
        if isinstance(obj, SectionPage):
            qs = live_articles().child_of(obj)
        else:
            qs = live_articles(obj)
        return qs.prefetch_related("article_authors__author")[:FEED_LENGTH]

    def item_title(self, item):
        return item.title

    def item_link(self, item):
        return item.url

    def item_description(self, item):
        return item.standfirst

    def item_pubdate(self, item):
        return item.published_at

    def item_updateddate(self, item):
        return item.modified_at

    def item_author_name(self, item):
        authors = item.authors
        return authors[0].name if authors else None

    def item_categories(self, item):
        section = item.get_parent()
        return [section.title] + [tag.name for tag in item.tags.all()]

    def item_extra_kwargs(self, item):
        content = render_to_string(
            # Absolute image URLs on the host the feed was read from (a mirror, the onion).
            "publishing/feed_item.html", {"page": item, "base": reader_base_url(self.request)}
        )
        content = BLOCK_KEY_RE.sub("", content)
        return {"content": content, "creators": [a.name for a in item.authors]}


class AtomArticleFeed(ArticleFeed):
    feed_type = FullTextAtom
    subtitle = ArticleFeed.description
