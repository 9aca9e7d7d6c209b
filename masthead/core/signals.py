"""Signal wiring for core: anything a reader page shows changes, the page cache forgets."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from wagtail.models import Page
from wagtail.signals import page_published, page_unpublished, post_page_move

from .pagecache import invalidate_pages


@receiver(page_published)
@receiver(page_unpublished)
@receiver(post_page_move)
def _page_changed(sender, **kwargs):
    invalidate_pages()


@receiver(post_delete)
def _page_deleted(sender, instance, **kwargs):
    if isinstance(instance, Page):
        invalidate_pages()


def invalidate_on_save(*models):
    """Connect post_save/post_delete of ``models`` (snippets, settings) to invalidation."""
    for model in models:
        post_save.connect(_model_changed, sender=model, weak=False)
        post_delete.connect(_model_changed, sender=model, weak=False)


def _model_changed(sender, **kwargs):
    invalidate_pages()
