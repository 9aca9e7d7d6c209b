"""Small builders for campaign tests."""

from __future__ import annotations

from wagtail.models import Locale

from masthead.campaigns.models import Campaign, Variant


def make_campaign(placement: str = "appeal", variants: int = 1, language: str = "en",
                  **fields) -> Campaign:
    fields.setdefault("name", f"{placement} campaign")
    campaign = Campaign(
        placement=placement, locale=Locale.objects.get(language_code=language), **fields
    )
    for n in range(variants):
        letter = "ABCDEFGH"[n]
        campaign.variants.add(
            Variant(
                sort_order=n,
                label=letter,
                heading=f"Heading {letter} of {fields['name']}",
                body=f"<p>Letter {letter} of {fields['name']}.</p>",
                suggested_ask="monthly, from just $2",
            )
        )
    campaign.save()
    return campaign
