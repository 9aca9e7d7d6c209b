"""Publishing: Wagtail pages (home, section, article), images with credit and licence, authors,
feeds, sitemaps, structured data, search and the article import."""

from django.apps import AppConfig


class PublishingConfig(AppConfig):
    name = "masthead.publishing"
    label = "publishing"
    verbose_name = "Publishing"

    def ready(self) -> None:
        from wagtail.models import PageViewRestriction, Site

        from masthead.core.models import NewsroomSettings
        from masthead.core.signals import invalidate_on_save

        from .models import Author, NewsImage

        # Reader pages show them, and the per-generation fragments and routes
        # (masthead.core.fragments, .routing) remember them: a change starts a generation.
        # A view restriction made or lifted must not wait for the page cache to expire.
        invalidate_on_save(Author, NewsImage, Site, PageViewRestriction, NewsroomSettings)
