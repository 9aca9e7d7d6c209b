"""Editors' side: the two-proportion z-test, the results page, the campaign editing form,
and the demo campaigns."""

from __future__ import annotations

import gzip
import math
import re
from pathlib import Path

import pytest

import masthead.campaigns
from masthead.campaigns.counters import count_events
from masthead.campaigns.models import Campaign, VariantCounter
from masthead.campaigns.stats import campaign_results, two_proportion_z

from .factories import make_campaign

pytestmark = pytest.mark.django_db

SCRIPT = Path(masthead.campaigns.__file__).parent / "static/masthead/js/campaigns.js"


def test_script_is_small_and_self_contained():
    source = SCRIPT.read_bytes()
    assert len(gzip.compress(source, 9)) < 5 * 1024
    text = source.decode()
    for forbidden in ("http://", "https://", "import ", "require(", "document.cookie", "eval("):
        assert forbidden not in text, forbidden


def test_two_proportion_z_matches_a_hand_computation():
    # 100/2000 vs 150/2000: pooled p = 0.0625, se = sqrt(p(1-p)(2/2000)).
    z, p = two_proportion_z(100, 2000, 150, 2000)
    se = math.sqrt(0.0625 * 0.9375 * (2 / 2000))
    assert z == pytest.approx((0.075 - 0.05) / se)
    assert z == pytest.approx(3.266, abs=1e-3)
    assert p == pytest.approx(0.00109, abs=1e-4)
    assert two_proportion_z(0, 0, 1, 10) is None
    assert two_proportion_z(0, 10, 0, 10) is None  # no variance


def set_counts(variant, impressions, clicks, dismissals, conversions):
    VariantCounter.objects.update_or_create(
        variant=variant,
        defaults={"impressions": impressions, "clicks": clicks, "dismissals": dismissals,
                  "conversions": conversions},
    )


def test_results_give_rates_and_verdicts(site):
    campaign = make_campaign(variants=4)
    a, b, c, d = campaign.variants.order_by("sort_order")
    set_counts(a, 2000, 300, 40, 100)
    set_counts(b, 2000, 310, 30, 150)   # clearly better
    set_counts(c, 2000, 290, 50, 104)   # no clear difference
    set_counts(d, 2000, 200, 10, 20)    # clearly worse
    results = campaign_results(campaign)
    assert [r.verdict for r in results] == [
        "control", "better (95%)", "no clear difference", "worse (95%)"
    ]
    assert results[0].conversion_rate == pytest.approx(0.05)
    assert results[1].click_rate_pct == "15.50%"
    # Few conversions: even a large apparent difference is "too early" to call.
    small = make_campaign(name="small", variants=2)
    e, f = small.variants.order_by("sort_order")
    set_counts(e, 300, 30, 3, 8)
    set_counts(f, 300, 30, 3, 20)
    assert [r.verdict for r in campaign_results(small)] == ["control", "too early"]
    empty = make_campaign(name="empty", variants=2)
    assert [r.verdict for r in campaign_results(empty)] == ["control", "not enough data"]


def test_results_include_counts_not_yet_flushed(site):
    campaign = make_campaign()
    variant = campaign.variants.get()
    count_events([(variant.pk, "impression")] * 3 + [(variant.pk, "click")])
    result = campaign_results(campaign)[0]
    assert (result.impressions, result.clicks) == (3, 1)


@pytest.fixture
def editor_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("editor", "editor@example.org", "pw-12345678")
    client.force_login(user)
    return client


def test_admin_lists_campaigns_and_shows_per_variant_results(demo, editor_client):
    appeal = Campaign.objects.get(name="End-of-article appeal", locale__language_code="en")
    a, b = appeal.variants.order_by("sort_order")
    set_counts(a, 1000, 80, 25, 12)
    set_counts(b, 1000, 95, 20, 31)
    listing = editor_client.get("/admin/snippets/campaigns/campaign/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "End-of-article appeal" in html and "Support banner" in html
    assert "Russian" in html or "Русский" in html  # the locale column
    results_url = f"/admin/snippets/campaigns/campaign/inspect/{appeal.pk}/"
    assert results_url in html
    page = editor_client.get(results_url).content.decode()
    assert f'<tr data-variant="{a.pk}">' in page and f'<tr data-variant="{b.pk}">' in page
    assert '<td class="impressions">1000</td>' in page
    assert '<td class="conversions">31</td>' in page
    assert '<td class="conversion-rate">3.10%</td>' in page
    assert "z = " in page and "p = " in page


def test_admin_creates_a_campaign_with_variants(site, editor_client):
    from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text

    data = nested_form_data({
        "name": "Year-end appeal",
        "placement": "appeal",
        "enabled": "on",
        "priority": "3",
        "audience": "non_supporters",
        "snooze_days": "5",
        "close_days": "3",
        "max_views_per_day": "2",
        "max_views_per_week": "5",
        "skip_first_articles": "1",
        "locale": site.locale.pk,
        "variants": inline_formset([
            {"label": "A", "weight": "1", "heading": "Before the year ends",
             "body": rich_text("<p>Please give.</p>"), "suggested_ask": "once, from $10",
             "default_frequency": "once", "amounts": "10, 25", "button_label": "",
             "link_url": ""},
        ]),
    })
    response = editor_client.post("/admin/snippets/campaigns/campaign/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    campaign = Campaign.objects.get(name="Year-end appeal")
    assert campaign.max_views_per_day == 2 and campaign.variants.get().amounts == "10, 25"
    # Bad amounts come back as a form error, not a 500.
    data["variants-0-amounts"] = "ten"
    data["name"] = "Broken"
    response = editor_client.post("/admin/snippets/campaigns/campaign/add/", data)
    assert response.status_code == 200
    assert "is not an amount" in response.content.decode()
    assert not Campaign.objects.filter(name="Broken").exists()


def test_demo_campaigns_are_idempotent_and_as_specified(demo):
    from masthead.campaigns.demo import load_demo

    count = Campaign.objects.count()
    load_demo()
    assert Campaign.objects.count() == count
    banner = Campaign.objects.get(name="Support banner", locale__language_code="en")
    assert banner.placement == "banner" and banner.variants.get().heading == "Support The Lantern!"
    appeal = Campaign.objects.get(name="End-of-article appeal", locale__language_code="en")
    for variant in appeal.variants.all():
        assert variant.heading == "A message from The Lantern"
        assert variant.suggested_ask == "monthly, from just $2"
        assert variant.body.count("<p>") >= 3
    assert appeal.snooze_days == 7
    overlay = Campaign.objects.get(name="Overlay: before you go")
    assert overlay.placement == "overlay" and not overlay.enabled
    russian = Campaign.objects.get(name="Support banner", locale__language_code="ru")
    assert russian.translation_key == banner.translation_key


def test_preview_shows_every_variant_of_each_placement(demo, editor_client):
    appeal = Campaign.objects.get(name="End-of-article appeal", locale__language_code="en")
    response = appeal.make_preview_request(preview_mode="")
    html = response.content.decode() if hasattr(response, "content") else response.rendered_content
    assert response.status_code == 200
    a, b = appeal.variants.order_by("sort_order")
    assert f'data-variant="{a.pk}"' in html and f'data-variant="{b.pk}"' in html
    assert html.count('<aside class="appeal"') == 2
    assert not re.search(r'<aside class="appeal"[^>]*hidden', html)
    assert "Dear reader," in html and "You have just read a story" in html
    banner = Campaign.objects.get(name="Support banner", locale__language_code="en")
    assert "Support The Lantern!" in banner.make_preview_request(preview_mode="").content.decode()
    overlay = Campaign.objects.get(name="Overlay: before you go")
    assert "Keep The Lantern independent" in overlay.make_preview_request(
        preview_mode=""
    ).content.decode()
    edit = editor_client.get(f"/admin/snippets/campaigns/campaign/edit/{appeal.pk}/")
    assert edit.status_code == 200
    assert "preview" in edit.content.decode()


def test_campaign_results_command(demo):
    from io import StringIO

    from django.core.management import call_command

    appeal = Campaign.objects.get(name="End-of-article appeal", locale__language_code="en")
    a, b = appeal.variants.order_by("sort_order")
    set_counts(a, 1000, 80, 25, 12)
    count_events([(b.pk, "impression")] * 4)
    out, err = StringIO(), StringIO()
    call_command("campaign_results", stdout=out, stderr=err)
    text = out.getvalue()
    assert "End-of-article appeal — Appeal (end of articles) [en]" in text
    assert "Overlay: before you go" not in text
    row_a = next(line for line in text.splitlines() if line.startswith("A: letter"))
    assert row_a.split()[-7:] == ["1000", "80", "25", "12", "8.00%", "1.20%", "control"]
    assert "Flushed 4 pending events." in err.getvalue()
    call_command("campaign_results", "--all", stdout=(out := StringIO()), stderr=StringIO())
    assert "Overlay: before you go" in out.getvalue() and "(disabled)" in out.getvalue()
