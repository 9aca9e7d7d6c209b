"""The appeal's adapter over ``giving_options()``: the contributions app's real answer, and a
graceful fallback when that call fails or answers in an unexpected shape."""

from __future__ import annotations

import pytest

from masthead.campaigns.giving import GivingChoices, format_amount, giving_choices, normalise
from masthead.publishing.models import ArticlePage

pytestmark = pytest.mark.django_db


def test_reads_the_contributions_options(site):
    from masthead.contributions.options import giving_options

    options = giving_options()
    choices = giving_choices()
    assert choices.from_contributions
    assert choices.currency == options["currency"]
    assert choices.currencies == [c.upper() for c in options["currencies"]]
    monthly = next(f for f in options["frequencies"] if f["value"] == "monthly")
    assert choices.presets_for("monthly") == monthly["amounts"]
    assert [key for key, _name, _marks in choices.methods] == [
        m["key"] for m in options["methods"]
    ]


def test_odd_shapes_fall_back_field_by_field():
    choices = normalise({"currency": "eur", "frequencies": [{"value": "monthly", "amounts": []},
                                                             {"value": "annual", "amounts": [True]},
                                                             "junk"],
                         "methods": ["sandbox", {"name": "no key"}]})
    assert choices.currency == "EUR" and choices.currencies == ["EUR"]
    assert choices.presets_for("monthly") == [200, 500, 1000, 2000]
    assert choices.presets_for("annual") == [5000, 10000, 20000, 50000]
    assert choices.methods == GivingChoices().methods


def test_appeal_still_renders_when_giving_options_fails(demo, client, monkeypatch, caplog):
    import masthead.contributions.options as options

    def broken(currency=None):
        raise RuntimeError("presets table missing")

    monkeypatch.setattr(options, "giving_options", broken)
    article = ArticlePage.objects.live().filter(locale__language_code="en").first()
    response = client.get(article.url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="frequency" value="monthly" checked' in html
    assert 'name="provider" value="sandbox"' in html
    assert "giving_options() failed" in caplog.text


def test_format_amount():
    assert format_amount(200, "USD") == "$2"
    assert format_amount(250, "GBP") == "£2.50"
    assert format_amount(1_000_000, "EUR") == "€10,000"
    assert format_amount(500, "SEK") == "5 SEK"
