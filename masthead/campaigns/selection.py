"""Which campaigns a page carries: the server-side half of the rules.

The server decides only what is the same for every reader of a URL — enabled, inside its
dates, in the page's language, on the page's section — and renders *every* such campaign,
highest priority first. The reader's browser (``static/masthead/js/campaigns.js``) then
applies the per-reader half (snooze, caps, supporter, variant) from its own localStorage, so
the page stays one cacheable document for everyone.

Pages are cached (``masthead.core.pagecache`` for ``MASTHEAD_PAGE_CACHE_SECONDS``, CDNs and
browsers for their max-age): a campaign that starts by date appears at the latest one cache
lifetime later; one that ends carries its end time in ``data-ends`` and the script stops
showing it on time even on a stale page.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch
from django.utils import timezone
from wagtail.models import Locale, Page

from .models import Campaign, Variant


def section_of(page: Page | None) -> Page | None:
    """The section page a page belongs to (itself for a section), or None."""
    from masthead.publishing.models import SectionPage

    if page is None or not getattr(page, "pk", None):
        return None
    if isinstance(page, SectionPage):
        return page
    return SectionPage.objects.ancestor_of(page).first()


def eligible_campaigns(
    placement: str, *, page: Page | None = None, language: str | None = None,
    now: datetime | None = None,
) -> list[Campaign]:
    """Campaigns for ``placement`` that may run on ``page`` in ``language``, best first."""
    return eligible_by_placement(page=page, language=language, now=now).get(placement, [])


def eligible_by_placement(
    *, page: Page | None = None, language: str | None = None, now: datetime | None = None,
    locale: Locale | None = None,
) -> dict[str, list[Campaign]]:
    """Every campaign that may run on ``page`` in ``language``, by placement, best first.

    One query for the campaigns of all placements (plus one each for their variants and
    sections), so a page with a banner slot, an overlay and an appeal asks once. ``locale``
    spares the Locale lookup when the caller already has it.
    """
    now = now or timezone.now()
    if locale is None:
        if language:
            locale = Locale.objects.filter(language_code=language).first()
        else:
            try:
                locale = Locale.get_active()
            except Locale.DoesNotExist:
                locale = None
    if locale is None:
        return {}
    campaigns = (
        Campaign.objects.running(now)
        .filter(locale=locale)
        .prefetch_related(
            Prefetch("variants", queryset=Variant.objects.order_by("sort_order", "id")),
            "sections",
        )
        .order_by("-priority", "-id")
    )
    section = None
    section_known = False
    chosen: dict[str, list[Campaign]] = {}
    for campaign in campaigns:
        variants = list(campaign.variants.all())
        if not variants:
            continue
        sections = {s.pk for s in campaign.sections.all()}
        if sections:
            if not section_known:
                section, section_known = section_of(page), True
            if section is None or section.pk not in sections:
                continue
        campaign.variant_list = variants
        chosen.setdefault(campaign.placement, []).append(campaign)
    return chosen
