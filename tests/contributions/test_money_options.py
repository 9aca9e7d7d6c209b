"""One money model: currencies with their ISO minor units, minimums, presets and methods come
from ``masthead.contributions.options``; a configuration it cannot use is a system check
error at start-up (``contributions.E010``–``E017``), and currencies without cents (JPY) or
with three decimals (KWD) are shown, parsed and validated in their own minor units."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from masthead.contributions.checks import check_giving_options, check_preset_amounts
from masthead.contributions.models import AmountPreset, Contribution
from masthead.contributions.money import AmountError, format_money, parse_major

pytestmark = pytest.mark.django_db


def ids(problems) -> list[str]:
    return sorted(p.id for p in problems)


def test_the_default_configuration_passes():
    assert check_giving_options() == []
    assert check_preset_amounts(databases=["default"]) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"MASTHEAD_CURRENCIES": []}, ["contributions.E010", "contributions.E014",
                                       "contributions.E014", "contributions.E014"]),
        ({"MASTHEAD_CURRENCIES": ["USD", "EUR", "GBP", "XBT"],
          "MASTHEAD_MINIMUM_AMOUNTS": {"USD": 200, "EUR": 200, "GBP": 200, "XBT": 1}},
         ["contributions.E011"]),
        ({"MASTHEAD_CURRENCIES": ["USD", "EUR", "GBP", "USD"]}, ["contributions.E012"]),
        ({"MASTHEAD_DEFAULT_CURRENCY": "JPY"}, ["contributions.E013"]),
        ({"MASTHEAD_MINIMUM_AMOUNTS": {"USD": 200, "EUR": 200, "GBP": 200, "JPY": 300}},
         ["contributions.E014"]),
        ({"MASTHEAD_MINIMUM_AMOUNTS": {"USD": 200, "EUR": 200}}, ["contributions.E015"]),
        ({"MASTHEAD_MINIMUM_AMOUNTS": {"USD": 0, "EUR": 200, "GBP": 200}},
         ["contributions.E016"]),
        ({"MASTHEAD_MINIMUM_AMOUNTS": {"USD": 200, "EUR": 2_000_000, "GBP": 200}},
         ["contributions.E016"]),
        ({"MASTHEAD_MAXIMUM_AMOUNT": 0}, ["contributions.E016"]),
    ],
)
def test_misconfigured_money_is_a_startup_error(settings, changes, expected):
    for name, value in changes.items():
        setattr(settings, name, value)
    problems = check_giving_options()
    assert ids(problems) == expected
    assert all(p.is_serious() and p.msg and p.hint for p in problems)
    # Nothing falls back in the meantime: the give page cannot be built from it.
    from django.core.exceptions import ImproperlyConfigured

    from masthead.contributions.options import money_config

    with pytest.raises(ImproperlyConfigured, match=expected[0]):
        money_config()


def test_no_payment_method_is_a_startup_error(settings):
    from masthead.contributions.checks import check_payment_providers

    settings.MASTHEAD_PAYMENT_PROVIDERS = {}
    assert "contributions.E001" in ids(check_payment_providers())


def test_presets_outside_the_limits_are_a_startup_error(settings):
    AmountPreset.objects.create(frequency="monthly", currency="USD", amount=100)
    AmountPreset.objects.create(frequency="monthly", currency="USD", amount=500)
    problems = check_preset_amounts(databases=["default"])
    assert ids(problems) == ["contributions.E017"]
    assert "monthly" in problems[0].msg and "$1" in problems[0].msg
    settings.MASTHEAD_MAXIMUM_AMOUNT = 10_000  # the built-in $200 annual preset is above it
    problems = check_preset_amounts(databases=["default"])
    assert any("built-in" in p.msg and "annual" in p.msg for p in problems)
    # Without --database the check stays away from the database.
    assert check_preset_amounts(databases=None) == []


def test_built_in_presets_in_yen_are_too_small_to_offer(settings):
    settings.MASTHEAD_CURRENCIES = ["JPY"]
    settings.MASTHEAD_DEFAULT_CURRENCY = "JPY"
    settings.MASTHEAD_MINIMUM_AMOUNTS = {"JPY": 300}
    assert check_giving_options() == []
    problems = check_preset_amounts(databases=["default"])
    # ¥10 … ¥200 (the built-in presets in whole units) are below ¥300, never "¥1,000" by
    # multiplying by 100: the check asks for presets in the admin.
    assert ids(problems) == ["contributions.E017"] * 3
    assert "¥10" in problems[0].msg


def test_money_in_each_currencys_minor_units():
    assert format_money(1500, "JPY") == "¥1,500"
    assert format_money(2500, "KWD") == "2.500 KWD"
    assert format_money(2000, "KWD") == "2 KWD"
    assert format_money(250, "USD") == "$2.50"
    assert parse_major("1500", "JPY") == 1500
    assert parse_major("2.125", "KWD") == 2125
    assert parse_major("2,5", "KWD") == 2500
    assert parse_major("5.50", "USD") == 550
    with pytest.raises(AmountError, match="too many decimal places"):
        parse_major("1500.5", "JPY")
    with pytest.raises(AmountError):
        parse_major("5.555", "USD")


def _yen(settings):
    settings.MASTHEAD_CURRENCIES = ["JPY", "USD"]
    settings.MASTHEAD_DEFAULT_CURRENCY = "JPY"
    settings.MASTHEAD_MINIMUM_AMOUNTS = {"JPY": 300, "USD": 200}
    for position, amount in enumerate([500, 1000, 3000]):
        for frequency in ("once", "monthly", "annual"):
            AmountPreset.objects.create(
                frequency=frequency, currency="JPY", amount=amount, sort_order=position,
                suggested=amount == 1000,
            )


def _checkout(client, **fields):
    data = {"frequency": "once", "currency": "JPY", "provider": "sandbox"}
    data.update(fields)
    return client.post(reverse("contributions:checkout"), data)


def test_the_give_page_in_yen(client, site, settings):
    _yen(settings)
    html = client.get(reverse("contributions:give")).content.decode()
    assert '<input type="hidden" name="currency" value="JPY">' in html
    assert re.findall(r'name="amount" value="(\d+)"', html)[:3] == ["500", "1000", "3000"]
    assert "<span>¥1,000</span>" in html
    assert "From ¥300." in html
    assert 'value="1000" checked' in html  # the suggested amount, in yen
    # A prefilled amount that is not a preset shows in whole yen, not divided by 100.
    html = client.get(reverse("contributions:give") + "?amount=1234").content.decode()
    assert 'value="1234"' in html


def test_giving_in_yen_is_validated_in_yen(client, site, settings):
    _yen(settings)
    response = _checkout(client, custom_amount="299")
    assert response.status_code == 400
    assert "The smallest contribution we can accept is ¥300." in response.content.decode()
    response = _checkout(client, custom_amount="1500.5")
    assert response.status_code == 400
    assert "That amount has too many decimal places." in response.content.decode()
    response = _checkout(client, custom_amount="1500")
    assert response.status_code == 303
    contribution = Contribution.objects.get()
    assert (contribution.amount, contribution.currency) == (1500, "JPY")


def test_giving_in_a_three_decimal_currency(client, site, settings):
    settings.MASTHEAD_CURRENCIES = ["KWD"]
    settings.MASTHEAD_DEFAULT_CURRENCY = "KWD"
    settings.MASTHEAD_MINIMUM_AMOUNTS = {"KWD": 500}
    html = client.get(reverse("contributions:give")).content.decode()
    # The built-in presets in whole dinars: 10 KWD is 10000 fils.
    assert 'name="amount" value="10000"' in html and "<span>10 KWD</span>" in html
    assert "From 0.500 KWD." in html
    response = _checkout(client, currency="KWD", custom_amount="0.499")
    assert response.status_code == 400
    assert "The smallest contribution we can accept is 0.499" not in response.content.decode()
    assert "0.500 KWD" in response.content.decode()
    response = _checkout(client, currency="KWD", custom_amount="2.125")
    assert response.status_code == 303
    assert Contribution.objects.get().amount == 2125


def test_a_plan_in_a_currency_no_longer_accepted_gets_a_clear_error():
    from masthead.contributions.forms import ChangePlanForm

    form = ChangePlanForm({"plan": 1, "frequency": "monthly", "amount": "5"}, currency="SEK")
    assert not form.is_valid()
    assert "Choose one of these currencies: USD, EUR, GBP." in form.errors["amount"]
