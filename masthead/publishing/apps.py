"""Publishing: Wagtail pages (home, section, article), images with credit and licence, authors,
feeds, sitemaps, structured data, search and the article import."""

from django.apps import AppConfig


class PublishingConfig(AppConfig):
    name = "masthead.publishing"
    label = "publishing"
    verbose_name = "Publishing"

    def ready(self) -> None:
        from masthead.core.signals import invalidate_on_save

        from .models import Author, NewsImage

        invalidate_on_save(Author, NewsImage)
