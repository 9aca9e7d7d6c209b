"""Signal wiring for core: anything a reader page shows changes, the page cache forgets."""

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from wagtail.models import Page
from wagtail.signals import page_published, page_unpublished, post_page_move

from masthead.reach.hosts import mirror_origins

from .pagecache import invalidate_pages


@receiver(page_published)
@receiver(page_unpublished)
@receiver(post_page_move)
def _page_changed(sender, instance=None, **kwargs):
    invalidate_pages()
    if instance is not None and settings.WAGTAILFRONTENDCACHE:
        transaction.on_commit(lambda: purge_listings(instance))


def purge_listings(page) -> None:
    """Purge, from a CDN in front, the pages that list ``page``.

    Wagtail purges the page's own URL; the section, the home page, the feeds and the
    sitemaps list it too and would otherwise stay stale for up to ``s-maxage``.
    """
    from django.urls import reverse
    from django.utils import translation
    from wagtail.contrib.frontend_cache.utils import purge_pages_from_cache, purge_urls_from_cache

    page = page.specific
    site = page.get_site()
    if site is None:
        return
    listing_pages = [a.specific for a in page.get_ancestors().filter(depth__gt=1)]
    purge_pages_from_cache([p for p in listing_pages if p.live])
    paths = ["/sitemap.xml", "/news-sitemap.xml"]
    with translation.override(page.locale.language_code):
        paths += [reverse("publishing:feed_rss"), reverse("publishing:feed_atom")]
        parent = page.get_parent()
        if parent is not None and parent.depth > 2:
            paths += [
                reverse("publishing:section_feed_rss", args=[parent.slug]),
                reverse("publishing:section_feed_atom", args=[parent.slug]),
            ]
    urls = [site.root_url + path for path in paths]
    # A cache that also fronts the mirrors keeps their copies under their own host names.
    mirrors = mirror_origins()
    if mirrors:
        for listed in [page, *listing_pages]:
            parts = listed.get_url_parts()
            if parts and parts[2]:
                paths.append(parts[2])
        urls += [origin + path for origin in mirrors for path in paths]
    purge_urls_from_cache(urls)


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
