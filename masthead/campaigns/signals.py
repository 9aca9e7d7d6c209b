"""Wiring: campaign edits invalidate the page cache (every reader page carries the banner),
and completed contributions count as conversions for the variant named in their source."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from masthead.core.pagecache import invalidate_pages

from .models import Campaign, Variant

log = logging.getLogger(__name__)


@receiver(post_save, sender=Campaign)
@receiver(post_delete, sender=Campaign)
@receiver(post_save, sender=Variant)
@receiver(post_delete, sender=Variant)
@receiver(m2m_changed, sender=Campaign.sections.through)
def campaign_changed(sender, **kwargs) -> None:
    transaction.on_commit(invalidate_pages)


def connect_contributions() -> bool:
    """Listen to ``contribution_succeeded`` if the contributions app provides it."""
    try:
        from masthead.contributions.signals import contribution_succeeded
    except ImportError:
        log.info("masthead.contributions.signals not available: no conversion counting")
        return False
    from .counters import on_contribution_succeeded

    contribution_succeeded.connect(
        on_contribution_succeeded, dispatch_uid="campaigns.count_conversion"
    )
    return True
