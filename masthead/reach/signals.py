"""Saving or deleting a mirror in the admin changes what readers are told: rebuild cached
reader pages (the /mirrors/ page, /mirrors.json) lazily, as publishing does."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from masthead.core.pagecache import invalidate_pages

from .models import Mirror


@receiver(post_save, sender=Mirror)
@receiver(post_delete, sender=Mirror)
def mirrors_changed(sender, **kwargs) -> None:
    invalidate_pages()
