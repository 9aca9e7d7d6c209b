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

from masthead.contributions.options import GivingOptions, load_giving_options

from ..models import Campaign, Placement, Variant
from ..selection import eligible_by_placement

register = template.Library()


def _give_url() -> str:
    try:
        return reverse("contributions:give")
    except NoReverseMatch:
        return "/support/"


def _checkout() -> tuple[str, str]:
    """Where the appeal form goes: the checkout (POST, through the appeal's own check of the
    amount, :func:`masthead.campaigns.views.appeal_checkout`), else the give page (GET)."""
    try:
        reverse("contributions:checkout")
        return reverse("campaigns:appeal_checkout"), "post"
    except NoReverseMatch:
        return _give_url(), "get"


def _source(campaign: Campaign, variant: Variant) -> str:
    return f"{campaign.placement}:{campaign.pk}:{variant.pk}"


def _link(campaign: Campaign, variant: Variant, options: GivingOptions) -> str:
    if variant.link_url:
        return variant.link_url
    default = options.default
    presets = variant.preset_amounts_minor() or default.amounts(variant.default_frequency)
    query = {"frequency": variant.default_frequency, "source": _source(campaign, variant)}
    if presets:
        query["amount"] = presets[0]
        query["currency"] = default.currency.code
    return f"{_give_url()}?{urlencode(query)}"


# The currencies campaigns.js formats by itself (two decimals, these symbols); for any other
# the form carries each currency's exponent and symbol in ``data-money``.
_SCRIPT_FORMATS = {"USD": (2, "$"), "EUR": (2, "€"), "GBP": (2, "£")}


def _appeal_form(campaign: Campaign, variant: Variant, options: GivingOptions) -> dict:
    """Everything one variant's appeal form shows, amounts in the default currency."""
    frequency = variant.default_frequency
    default = options.default
    money = default.currency
    presets = {
        c.currency.code: {f: c.amounts(f) for f, _label in options.frequencies}
        for c in options.currencies
    }
    own = variant.preset_amounts_minor()
    if own:
        presets[money.code][frequency] = own
    amounts = presets[money.code][frequency]
    ask = default.suggested.suggested
    if options.suggested_frequency == frequency and ask in amounts:
        checked = ask
    else:
        checked = amounts[min(1, len(amounts) - 1)] if amounts else None
    formats = {
        c.currency.code: (c.currency.exponent, c.currency.symbol) for c in options.currencies
    }
    return {
        # Unsaved variants (the admin preview) have no pk yet: keep their ids unique anyway.
        "prefix": f"c{campaign.pk or 'new'}v{variant.pk or f'new{id(variant)}'}",
        "source": _source(campaign, variant),
        "frequencies": [
            (key, label, key == frequency) for key, label in options.frequencies
        ],
        "amounts": [(a, money.format(a), a == checked) for a in amounts],
        "presets_json": json.dumps(presets, separators=(",", ":")),
        "money_json": ""
        if all(_SCRIPT_FORMATS.get(code) == spec for code, spec in formats.items())
        else json.dumps(formats, separators=(",", ":"), ensure_ascii=False),
        "currency": money.code,
        "currencies": options.codes,
        # What the appeal says, in place, when the checkout refuses the amount (appeal_check).
        "limits": [
            (c.currency.code.lower(), c.currency.format(c.currency.minimum),
             c.currency.format(c.currency.maximum))
            for c in options.currencies
        ],
        "symbol": money.symbol,
        "methods": [(m.key, m.name, m.marks) for m in options.methods],
        "button_label": variant.button_label,
    }


def prepare_variants(
    campaign: Campaign, variants: list[Variant], options: GivingOptions | None = None
) -> None:
    """Attach what the templates render: ``href`` (banner, overlay) or ``form`` (appeal)."""
    options = options or load_giving_options()
    for variant in variants:
        if campaign.placement == Placement.APPEAL:
            variant.form = _appeal_form(campaign, variant, options)
        else:
            variant.href = _link(campaign, variant, options)


def _choices(context) -> GivingOptions:
    """The giving options, read once per request (banner and appeal share them)."""
    request = context.get("request")
    options = getattr(request, "_masthead_giving_options", None)
    if options is None:
        options = load_giving_options()
        if request is not None:
            request._masthead_giving_options = options
    return options


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
def support_banner(context, quiet: bool = False) -> dict:
    """The banner slot (space always reserved) with every eligible banner, and overlays.

    ``quiet``: the slot alone, asking nothing (the give, checkout, thanks and manage pages,
    where the reader is already giving; the slot still carries the supporter rules the
    thanks page needs)."""
    page = context.get("page")
    page = page if hasattr(page, "pk") and hasattr(page, "get_parent") else None
    choices = _choices(context)
    banners = [] if quiet else _eligible(context, page, Placement.BANNER)
    # Overlays interrupt reading, so only on the newsroom's own pages: never over a checkout,
    # a sign-up confirmation or another app's form.
    overlays = _eligible(context, page, Placement.OVERLAY) if page and not quiet else []
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
        "request": context.get("request"),  # for {% pageurl %}: the reader's own host
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
