"""The campaign placements reader pages include: ``{% support_banner %}`` (the banner slot at
the top of every page, plus any overlay) and ``{% appeal page %}`` (end of articles).

Each renders every campaign eligible for the page (see :mod:`masthead.campaigns.selection`)
with all its variants; without JavaScript the first campaign's first variant shows, and
``campaigns.js`` picks per reader from localStorage when it runs. Nothing here depends on the
reader, so the page stays cacheable.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django import template
from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils.translation import get_language

from ..giving import CURRENCY_SYMBOLS, FREQUENCIES, format_amount, giving_choices
from ..models import Campaign, Placement, Variant
from ..selection import eligible_by_placement

register = template.Library()


def _give_url() -> str:
    try:
        return reverse("contributions:give")
    except NoReverseMatch:
        return "/support/"


def _checkout() -> tuple[str, str]:
    """Where the appeal form goes: the checkout (POST), else the give page (GET, prefilled)."""
    try:
        return reverse("contributions:checkout"), "post"
    except NoReverseMatch:
        return _give_url(), "get"


def _source(campaign: Campaign, variant: Variant) -> str:
    return f"{campaign.placement}:{campaign.pk}:{variant.pk}"


def _link(campaign: Campaign, variant: Variant, choices) -> str:
    if variant.link_url:
        return variant.link_url
    presets = variant.preset_amounts_minor() or choices.presets_for(variant.default_frequency)
    query = {"frequency": variant.default_frequency, "source": _source(campaign, variant)}
    if presets:
        query["amount"] = presets[0]
        query["currency"] = choices.currency
    return f"{_give_url()}?{urlencode(query)}"


def _appeal_form(campaign: Campaign, variant: Variant, choices) -> dict:
    """Everything one variant's appeal form shows, amounts in the default currency."""
    frequency = variant.default_frequency
    presets = {
        currency: {f: choices.presets_for(f, currency) for f in FREQUENCIES}
        for currency in choices.currencies
    }
    own = variant.preset_amounts_minor()
    if own:
        presets[choices.currency][frequency] = own
    amounts = presets[choices.currency][frequency]
    if choices.suggested_frequency == frequency and choices.suggested_amount in amounts:
        checked = choices.suggested_amount
    else:
        checked = amounts[min(1, len(amounts) - 1)] if amounts else None
    return {
        # Unsaved variants (the admin preview) have no pk yet: keep their ids unique anyway.
        "prefix": f"c{campaign.pk or 'new'}v{variant.pk or f'new{id(variant)}'}",
        "source": _source(campaign, variant),
        "frequencies": [
            (key, label, key == frequency) for key, label in _frequency_labels()
        ],
        "amounts": [(a, format_amount(a, choices.currency), a == checked) for a in amounts],
        "presets_json": json.dumps(presets, separators=(",", ":")),
        "currency": choices.currency,
        "currencies": choices.currencies,
        "symbol": CURRENCY_SYMBOLS.get(choices.currency, ""),
        "methods": choices.methods,
        "button_label": variant.button_label,
    }


def prepare_variants(campaign: Campaign, variants: list[Variant], choices=None) -> None:
    """Attach what the templates render: ``href`` (banner, overlay) or ``form`` (appeal)."""
    choices = choices or giving_choices()
    for variant in variants:
        if campaign.placement == Placement.APPEAL:
            variant.form = _appeal_form(campaign, variant, choices)
        else:
            variant.href = _link(campaign, variant, choices)


def _frequency_labels():
    from ..models import Frequency

    return [(f.value, f.label) for f in Frequency]


def _choices(context):
    """The giving options, asked once per request (banner and appeal share them)."""
    request = context.get("request")
    choices = getattr(request, "_masthead_giving_choices", None)
    if choices is None:
        choices = giving_choices()
        if request is not None:
            request._masthead_giving_choices = choices
    return choices


def _eligible(context, page, placement: str) -> list[Campaign]:
    """The eligible campaigns for ``placement`` on ``page``, read once per request for all
    placements (the banner slot, the overlay and the appeal share one query)."""
    from masthead.publishing.per_request import active_locale

    request = context.get("request")
    language = get_language()
    key = (getattr(page, "pk", None), language)
    memo = getattr(request, "_masthead_campaigns", None)
    if memo is None:
        memo = {}
        if request is not None:
            request._masthead_campaigns = memo
    if key not in memo:
        memo[key] = eligible_by_placement(
            page=page, language=language, locale=active_locale(request)
        )
    return memo[key].get(placement, [])


def _supporter_days() -> dict[str, int]:
    return settings.MASTHEAD_CAMPAIGNS_SUPPORTER_DAYS


@register.inclusion_tag("campaigns/banner.html", takes_context=True)
def support_banner(context) -> dict:
    """The banner slot (space always reserved) with every eligible banner, and overlays."""
    page = context.get("page")
    page = page if hasattr(page, "pk") and hasattr(page, "get_parent") else None
    choices = _choices(context)
    banners = _eligible(context, page, Placement.BANNER)
    # Overlays interrupt reading, so only on the newsroom's own pages: never over a checkout,
    # a sign-up confirmation or another app's form.
    overlays = _eligible(context, page, Placement.OVERLAY) if page else []
    for campaign in banners + overlays:
        prepare_variants(campaign, campaign.variant_list, choices)
    supporter = _supporter_days()
    return {
        "outlet_name": context.get("outlet_name"),
        "banners": banners,
        "overlays": overlays,
        "events_url": reverse("campaigns:events"),
        "supporter_once": supporter.get("once", 0),
        "supporter_monthly": supporter.get("monthly", 0),
        "supporter_annual": supporter.get("annual", 0),
        "subscriber_days": settings.MASTHEAD_CAMPAIGNS_SUBSCRIBER_DAYS,
    }


@register.inclusion_tag("campaigns/appeal.html", takes_context=True)
def appeal(context, page=None) -> dict:
    """The end-of-article appeal: every eligible appeal campaign and its variants."""
    campaigns = _eligible(context, page, Placement.APPEAL)
    choices = _choices(context)
    action, method = _checkout()
    for campaign in campaigns:
        prepare_variants(campaign, campaign.variant_list, choices)
    return {
        "outlet_name": context.get("outlet_name"),
        "page": page,
        "campaigns": campaigns,
        "action": action,
        "method": method,
        "give_url": _give_url(),
    }


@register.filter
def epoch_ms(value) -> str:
    """A datetime as milliseconds since the epoch (for ``data-ends``), '' for None."""
    return str(int(value.timestamp() * 1000)) if value else ""
