"""Publishing models: the page tree (home → section → article), images with caption, credit
and licence, and authors.

Reader pages inherit :class:`ReaderPage`, whose ``serve`` marks the response public so that
the page cache and any CDN may keep it (see ``masthead.core.pagecache``).
"""

from __future__ import annotations

from django.db import models
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.text import slugify
from modelcluster.contrib.taggit import ClusterTaggableManager
from modelcluster.fields import ParentalKey
from taggit.models import TaggedItemBase
from wagtail.admin.panels import (
    FieldPanel,
    InlinePanel,
    MultiFieldPanel,
    PageChooserPanel,
    TitleFieldPanel,
)
from wagtail.fields import RichTextField, StreamField
from wagtail.images.models import AbstractImage, AbstractRendition, Image
from wagtail.models import Locale, Orderable, Page
from wagtail.search import index
from wagtail.snippets.models import register_snippet

from masthead.core import fragments
from masthead.core.pagecache import mark_public

from .blocks import ArticleBodyBlock
from .licences import Licence, deed_url
from .per_request import public

# --- Images ---------------------------------------------------------------------------------


class NewsImage(AbstractImage):
    """A photo with what a newsroom must print beside it: caption, credit and licence."""

    caption = models.TextField(blank=True, help_text="What the photo shows; printed under it.")
    credit = models.CharField(
        max_length=255, blank=True, help_text="Photographer or source, e.g. “Anna Petrova”."
    )
    licence = models.CharField(
        max_length=32, choices=Licence.choices, default=Licence.ALL_RIGHTS_RESERVED
    )

    admin_form_fields = (*Image.admin_form_fields, "caption", "credit", "licence")

    @property
    def licence_label(self) -> str:
        return Licence(self.licence).label if self.licence in Licence.values else self.licence

    @property
    def licence_url(self) -> str | None:
        return deed_url(self.licence)

    def get_rendition(self, filter):
        """One rendition, through :meth:`get_renditions`.

        Wagtail's own ``get_rendition`` writes the rendition to the cache on every call, even
        one it has just read from there: several cache writes per uncached article render,
        for nothing. ``get_renditions`` writes only what did not come from the cache (see
        :meth:`NewsRendition.__getstate__`).
        """
        (rendition,) = self.get_renditions(filter).values()
        return rendition


class NewsRendition(AbstractRendition):
    image = models.ForeignKey(NewsImage, on_delete=models.CASCADE, related_name="renditions")

    def __getstate__(self):
        # A rendition comes back out of the cache carrying this mark, which Wagtail's
        # get_renditions() reads as "already cached: do not store again".
        state = super().__getstate__()
        state["_from_cache"] = True
        return state

    class Meta:
        unique_together = (("image", "filter_spec", "focal_point_key"),)


# --- Authors --------------------------------------------------------------------------------


@register_snippet
class Author(index.Indexed, models.Model):
    name = models.CharField(max_length=255)
    slug = models.SlugField(max_length=255, unique=True, allow_unicode=True)
    role = models.CharField(max_length=255, blank=True, help_text="e.g. “Staff correspondent”")
    bio = models.TextField(blank=True)

    panels = [FieldPanel("name"), FieldPanel("slug"), FieldPanel("role"), FieldPanel("bio")]
    search_fields = [index.SearchField("name"), index.AutocompleteField("name")]

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slugify(self.name, allow_unicode=True)[:255] or "author"
        super().save(*args, **kwargs)


# --- Pages ----------------------------------------------------------------------------------


class ReaderPage(Page):
    """Abstract base of every page a reader sees: public, cacheable, identical for all."""

    class Meta:
        abstract = True

    def serve(self, request, *args, **kwargs):
        return mark_public(super().serve(request, *args, **kwargs))


def live_articles(locale: Locale | None = None, request: HttpRequest | None = None):
    """Live, public articles (newest first); ``request`` lets the page's parts share one
    read of the view restrictions."""
    qs = public(ArticlePage.objects.live(), request).select_related("lead_image", "locale")
    if locale is not None:
        qs = qs.filter(locale=locale)
    return qs.order_by("-published_at", "-id")


class HomePage(ReaderPage):
    intro = models.TextField(blank=True, help_text="One line under the outlet's name.")

    content_panels = [*Page.content_panels, FieldPanel("intro")]
    subpage_types = ["publishing.SectionPage", "publishing.StandardPage"]
    max_count_per_parent = 1

    def get_context(self, request, *args, **kwargs):
        from .cards import prepare_cards

        context = super().get_context(request, *args, **kwargs)

        def front_page() -> dict:
            front: dict = {}
            sections = list(public(SectionPage.objects.live(), request).child_of(self))
            # Cards never print the body: not loading it spares parsing 40 StreamFields.
            articles = prepare_cards(
                live_articles(self.locale, request).defer("body")[:40], sections
            )
            # A front page: the lead, the top stories beside it, then each section's newest.
            lead, top = articles[:1], articles[1:4]
            shown = {a.pk for a in lead + top}
            for section in sections:
                section.stories = [
                    a for a in articles if a.card_section is section and a.pk not in shown
                ][:4]
            front["lead_articles"] = lead
            front["top_stories"] = top
            front["articles"] = articles[1:25]
            front["sections"] = [s for s in sections if s.stories]
            return front

        # The front page's lists change only with a publication: built once per generation.
        context.update(fragments.cached(request, "front-page", front_page, vary=(self.pk,)))
        return context


class SectionPage(ReaderPage):
    intro = models.TextField(blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro")]
    parent_page_types = ["publishing.HomePage"]
    subpage_types = ["publishing.ArticlePage"]

    def articles(self, request: HttpRequest | None = None):
        return live_articles(request=request).child_of(self)

    def get_context(self, request, *args, **kwargs):
        from django.core.paginator import Paginator

        from .cards import prepare_cards

        context = super().get_context(request, *args, **kwargs)
        paginator = Paginator(self.articles(request), 20)
        context["page_obj"] = paginator.get_page(request.GET.get("page"))
        prepare_cards(context["page_obj"].object_list, [self])
        return context


class ArticleTag(TaggedItemBase):
    content_object = ParentalKey(
        "publishing.ArticlePage", related_name="tagged_items", on_delete=models.CASCADE
    )


class ArticlePage(ReaderPage):
    standfirst = models.TextField(blank=True, help_text="One or two sentences under the headline.")
    body = StreamField(ArticleBodyBlock(), blank=True)
    lead_image = models.ForeignKey(
        NewsImage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lead_caption = models.TextField(
        blank=True, help_text="Overrides the image's own caption for this article."
    )
    published_at = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="Shown as the publication time. Left blank, it is set on first publication.",
    )
    updated_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the article is substantially updated."
    )
    tags = ClusterTaggableManager(through=ArticleTag, blank=True)
    external_id = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        unique=True,
        editable=False,
        help_text="Identifier in the system this article was imported from.",
    )

    content_panels = [
        TitleFieldPanel("title", heading="Headline"),
        FieldPanel("standfirst"),
        InlinePanel("article_authors", label="Authors", min_num=0),
        MultiFieldPanel(
            [FieldPanel("lead_image"), FieldPanel("lead_caption")], heading="Lead image"
        ),
        FieldPanel("body"),
        InlinePanel("related_links", label="Read more (editor's picks)", max_num=6),
    ]
    promote_panels = [
        *Page.promote_panels,
        MultiFieldPanel(
            [FieldPanel("published_at"), FieldPanel("updated_at"), FieldPanel("tags")],
            heading="Dates and tags",
        ),
    ]
    search_fields = [
        *Page.search_fields,
        index.SearchField("standfirst"),
        index.SearchField("body"),
        index.FilterField("published_at"),
        index.FilterField("locale_id"),
    ]
    parent_page_types = ["publishing.SectionPage"]
    subpage_types: list[str] = []

    class Meta:
        indexes = [models.Index(fields=["published_at"], name="article_published_idx")]

    def save(self, *args, **kwargs):
        if self.live and not self.published_at:
            self.published_at = self.first_published_at or timezone.now()
        super().save(*args, **kwargs)

    # --- what the templates and feeds read ---

    @cached_property
    def authors(self) -> list[Author]:
        return [link.author for link in self.article_authors.select_related("author")]

    @property
    def section(self) -> SectionPage | None:
        parent = self.get_parent()
        return parent.specific if parent else None

    @property
    def caption(self) -> str:
        if self.lead_caption:
            return self.lead_caption
        return self.lead_image.caption if self.lead_image else ""

    @property
    def shown_updated_at(self):
        """The update time worth printing: set by an editor, and after publication."""
        if self.updated_at and self.published_at and self.updated_at > self.published_at:
            return self.updated_at
        return None

    @property
    def modified_at(self):
        return self.shown_updated_at or self.last_published_at or self.published_at

    def read_more(
        self, limit: int = 4, request: HttpRequest | None = None
    ) -> list[ArticlePage]:
        # Editors' picks (the chooser offers articles only), in their order, in one query.
        ids = [link.page_id for link in self.related_links.all() if link.page_id]
        if ids:
            found = ArticlePage.objects.live().filter(pk__in=ids).select_related(
                "lead_image", "locale"
            )
            by_id = {article.pk: article for article in found}
            picked = [by_id[pk] for pk in ids if pk in by_id]
        else:
            picked = []
        if picked:
            return picked[:limit]
        return list(
            live_articles(self.locale, request).sibling_of(self, inclusive=False)[:limit]
        )

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        from .cards import prepare_cards

        # Read-more and the translations change only with a publication: built once per
        # generation (the cards are shared too, see publishing_tags.shared_teaser).
        context["read_more"] = fragments.cached(
            request, "read-more", lambda: prepare_cards(self.read_more(request=request)),
            vary=(self.pk,),
        )
        context["translations"] = fragments.cached(
            request, "translations", lambda: list(
                public(self.get_translations().live(), request).select_related("locale")
            ), vary=(self.pk,),
        )
        return context


class ArticleAuthor(Orderable):
    page = ParentalKey(ArticlePage, related_name="article_authors", on_delete=models.CASCADE)
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="+")

    panels = [FieldPanel("author")]


class RelatedArticle(Orderable):
    source = ParentalKey(ArticlePage, related_name="related_links", on_delete=models.CASCADE)
    page = models.ForeignKey(
        "wagtailcore.Page", on_delete=models.CASCADE, related_name="+", null=True
    )

    panels = [PageChooserPanel("page", "publishing.ArticlePage")]


class StandardPage(ReaderPage):
    """A plain page: About, Privacy Policy, Corrections …"""

    body = RichTextField(blank=True)

    content_panels = [*Page.content_panels, FieldPanel("body")]
    parent_page_types = ["publishing.HomePage"]
    subpage_types: list[str] = []
    search_fields = [*Page.search_fields, index.SearchField("body")]

