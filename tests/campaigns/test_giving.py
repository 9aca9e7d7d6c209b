"""The appeal and the banner read the contributions app's typed giving options
(``masthead.contributions.options``): amounts in each currency's own minor units, no copy of
the money rules and no silent fallback."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.core.exceptions import ImproperlyConfigured

from masthead.campaigns.models import Campaign, Placement, Variant
from masthead.contributions.models import AmountPreset
from masthead.contributions.options import giving_options, load_giving_options
from masthead.publishing.models import ArticlePage

pytestmark = pytest.mark.django_db


def _article_html(client) -> str:
    article = ArticlePage.objects.live().filter(locale__language_code="en").first()
    response = client.get(article.url)
    assert response.status_code == 200
    return response.content.decode()


def _appeal_form(html: str) -> str:
    return re.search(r'<form class="appeal-form".*?</form>', html, re.S).group(0)


def test_the_appeal_offers_what_the_give_page_offers(demo, client):
    options = giving_options()
    html = _article_html(client)
    form = _appeal_form(html)
    presets = json.loads(unescape(re.search(r'data-presets="([^"]*)"', form).group(1)))
    assert list(presets) == options["currencies"]
    monthly = next(f for f in options["frequencies"] if f["value"] == "monthly")
    assert presets[options["currency"]]["monthly"] == monthly["amounts"]
    for code in options["currencies"]:
        other = giving_options(code)
        for frequency in other["frequencies"]:
            if code == options["currency"] and frequency["value"] == "monthly":
                continue  # the variant's own amounts
            assert presets[code][frequency["value"]] == frequency["amounts"]
    assert [m["key"] for m in options["methods"]] == re.findall(
        r'name="provider" value="([^"]+)"', form
    )
    # The default configuration needs no formats for the script: the page is as before.
    assert "data-money" not in form
    # No pattern: the browser must not refuse "$3" or " 7 "; the checkout reads the amount
    # and knows each currency's decimals (contributions.money.parse_major).
    assert "pattern=" not in form


def test_typed_options_match_the_plain_data():
    options = load_giving_options()
    assert options.codes == giving_options()["currencies"]
    usd = options.get("usd")
    assert usd.currency.exponent == 2 and usd.currency.minimum == 200
    assert usd.amounts("monthly") == [200, 500, 1000, 2000]
    assert usd.suggested.suggested == 500
    assert [key for key, _label in options.frequencies] == ["once", "monthly", "annual"]


def test_a_broken_configuration_is_an_error_not_a_fallback(settings):
    settings.MASTHEAD_CURRENCIES = ["USD", "XXY"]
    with pytest.raises(ImproperlyConfigured, match="contributions.E011"):
        load_giving_options()


def _jpy_site(settings):
    settings.MASTHEAD_CURRENCIES = ["JPY", "USD"]
    settings.MASTHEAD_DEFAULT_CURRENCY = "JPY"
    settings.MASTHEAD_MINIMUM_AMOUNTS = {"JPY": 300, "USD": 200}
    for frequency, amounts in {"once": [1000, 3000], "monthly": [500, 1000, 2000],
                               "annual": [5000, 10000]}.items():
        for position, amount in enumerate(amounts):
            AmountPreset.objects.create(
                frequency=frequency, currency="JPY", amount=amount, sort_order=position,
                suggested=amount == 1000,
            )


def test_the_appeal_in_yen(demo, client, settings):
    _jpy_site(settings)
    appeal = Campaign.objects.get(placement=Placement.APPEAL, locale__language_code="en",
                                  name="End-of-article appeal")
    Variant.objects.filter(campaign=appeal).update(amounts="500, 1500, 3000")
    form = _appeal_form(_article_html(client))
    # The variant's own amounts, in yen (no minor unit): ¥1,500 is 1500, not 150000.
    assert re.findall(r'name="amount" value="(\d+)"', form) == ["500", "1500", "3000"]
    assert "<span>¥1,500</span>" in form
    assert 'data-currency="JPY"' in form
    money = json.loads(unescape(re.search(r'data-money="([^"]*)"', form).group(1)))
    assert money == {"JPY": [0, "¥"], "USD": [2, "$"]}
    presets = json.loads(unescape(re.search(r'data-presets="([^"]*)"', form).group(1)))
    assert presets["JPY"]["once"] == [1000, 3000]
    assert presets["USD"]["monthly"] == [200, 500, 1000, 2000]
    # USD still allows cents, so the typed amount may have two decimals.
    # No pattern: the browser must not refuse "$3" or " 7 "; the checkout reads the amount
    # and knows each currency's decimals (contributions.money.parse_major).
    assert "pattern=" not in form


def test_the_banner_links_to_the_give_page_in_yen(demo, client, settings):
    _jpy_site(settings)
    html = _article_html(client)
    link = re.search(r'href="(/support/\?[^"]*)"', html).group(1)
    assert "currency=JPY" in link and "amount=500&amp;" in link


def test_the_appeal_in_a_three_decimal_currency(demo, client, settings):
    settings.MASTHEAD_CURRENCIES = ["KWD"]
    settings.MASTHEAD_DEFAULT_CURRENCY = "KWD"
    settings.MASTHEAD_MINIMUM_AMOUNTS = {"KWD": 500}
    appeal = Campaign.objects.get(placement=Placement.APPEAL, locale__language_code="en",
                                  name="End-of-article appeal")
    Variant.objects.filter(campaign=appeal).update(amounts="2.5, 5, 10")
    form = _appeal_form(_article_html(client))
    assert re.findall(r'name="amount" value="(\d+)"', form) == ["2500", "5000", "10000"]
    assert "<span>2.500 KWD</span>" in form and "<span>5 KWD</span>" in form
    # No pattern: the browser must not refuse "$3" or " 7 "; the checkout reads the amount
    # and knows each currency's decimals (contributions.money.parse_major).
    assert "pattern=" not in form
    assert '<input type="hidden" name="currency" value="KWD">' in form


def test_variant_amounts_follow_the_default_currency(demo, settings):
    from django.core.exceptions import ValidationError

    variant = Variant.objects.filter(campaign__placement=Placement.APPEAL).first()
    variant.amounts = "1"
    with pytest.raises(ValidationError, match="go from"):
        variant.clean()  # $1 is below the $2 minimum: the checkout would refuse it
    settings.MASTHEAD_CURRENCIES = ["JPY"]
    settings.MASTHEAD_DEFAULT_CURRENCY = "JPY"
    settings.MASTHEAD_MINIMUM_AMOUNTS = {"JPY": 300}
    variant.amounts = "500, 1000"
    variant.clean()
    assert variant.preset_amounts_minor() == [500, 1000]
    variant.amounts = "500.5"
    with pytest.raises(ValidationError, match="more decimals than JPY allows"):
        variant.clean()
