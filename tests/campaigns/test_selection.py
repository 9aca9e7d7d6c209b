"""Server-side campaign rules (dates, enabled, language, sections, priority) and what the
template tags render: every eligible campaign, the first one visible without JavaScript."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from masthead.campaigns.models import Campaign
from masthead.campaigns.selection import eligible_campaigns
from masthead.publishing.models import ArticlePage, SectionPage

from .factories import make_campaign

pytestmark = pytest.mark.django_db


def names(campaigns):
    return [c.name for c in campaigns]


def test_only_enabled_campaigns_inside_their_dates_are_eligible(site):
    now = timezone.now()
    make_campaign(name="running")
    make_campaign(name="open-ended start", ends_at=now + timedelta(days=1))
    make_campaign(name="disabled", enabled=False)
    make_campaign(name="future", starts_at=now + timedelta(hours=1))
    make_campaign(
        name="ended", starts_at=now - timedelta(days=2), ends_at=now - timedelta(seconds=1)
    )
    found = names(eligible_campaigns("appeal", language="en", now=now))
    assert sorted(found) == ["open-ended start", "running"]
    # The same campaigns an hour later: the future one has started.
    later = names(eligible_campaigns("appeal", language="en", now=now + timedelta(hours=2)))
    assert "future" in later


def test_placement_language_and_priority(site):
    make_campaign(name="low", priority=1)
    make_campaign(name="high", priority=50)
    make_campaign(name="banner", placement="banner")
    make_campaign(name="russian", language="ru")
    assert names(eligible_campaigns("appeal", language="en")) == ["high", "low"]
    assert names(eligible_campaigns("banner", language="en")) == ["banner"]
    assert names(eligible_campaigns("appeal", language="ru")) == ["russian"]
    assert eligible_campaigns("appeal", language="xx") == []


def test_campaign_without_variants_is_skipped(site):
    empty = Campaign.objects.create(name="empty", placement="appeal", locale=site.locale)
    assert empty not in eligible_campaigns("appeal", language="en")


def test_sections_limit_where_a_campaign_runs(demo):
    news = SectionPage.objects.get(slug="news", locale__language_code="en")
    features = SectionPage.objects.get(slug="features", locale__language_code="en")
    only_news = make_campaign(name="news only")
    only_news.sections.set([news])
    only_news.save()
    make_campaign(name="everywhere")
    news_article = ArticlePage.objects.child_of(news).live().first()
    feature = ArticlePage.objects.child_of(features).live().first()
    Campaign.objects.exclude(pk=only_news.pk).exclude(name="everywhere").delete()
    assert set(names(eligible_campaigns("appeal", page=news_article, language="en"))) == {
        "everywhere", "news only"
    }
    assert names(eligible_campaigns("appeal", page=feature, language="en")) == ["everywhere"]
    assert "news only" in names(eligible_campaigns("appeal", page=news, language="en"))
    # Pages outside any section (home) don't get section-limited campaigns.
    assert names(eligible_campaigns("appeal", page=demo, language="en")) == ["everywhere"]


def test_end_date_must_follow_start(site):
    from django.core.exceptions import ValidationError

    now = timezone.now()
    campaign = Campaign(name="x", placement="banner", locale=site.locale, starts_at=now,
                        ends_at=now - timedelta(days=1))
    with pytest.raises(ValidationError):
        campaign.full_clean()


def test_variant_amounts_are_validated(site):
    from django.core.exceptions import ValidationError

    campaign = make_campaign()
    variant = campaign.variants.first()
    variant.amounts = "2, $5, 10.50"
    assert variant.preset_amounts_minor() == [200, 500, 1050]
    for bad in ["two", "-3", "0", "1.234", "5,6,7,8,9,10,11", "1e9"]:
        variant.amounts = bad
        with pytest.raises(ValidationError):
            variant.clean()
    variant.amounts = ""
    variant.link_url = "https://elsewhere.example/"
    with pytest.raises(ValidationError):
        variant.clean()
    variant.link_url = "//elsewhere.example/"
    with pytest.raises(ValidationError):
        variant.clean()


# --- rendering ------------------------------------------------------------------------------


def article_html(client, article=None) -> str:
    article = article or ArticlePage.objects.live().filter(locale__language_code="en").first()
    response = client.get(article.url)
    assert response.status_code == 200
    return response.content.decode()


def test_article_renders_every_eligible_campaign_first_variant_visible(demo, client):
    Campaign.objects.all().delete()
    a = make_campaign(name="first", priority=5, variants=2, snooze_days=9, max_views_per_day=2)
    b = make_campaign(name="second", priority=1)
    html = article_html(client)
    slot = html[html.index('class="appeal-slot"'):]
    first = re.search(rf'<div class="campaign" data-campaign="{a.pk}"[^>]*>', slot).group(0)
    second = re.search(rf'<div class="campaign" data-campaign="{b.pk}"[^>]*>', slot).group(0)
    assert " hidden" not in first and second.endswith(" hidden>")
    assert 'data-snooze-days="9"' in first and 'data-day="2"' in first
    assert slot.index(f'data-campaign="{a.pk}"') < slot.index(f'data-campaign="{b.pk}"')
    va, vb = a.variants.order_by("sort_order")
    tag_a = re.search(rf'<aside class="appeal" data-variant="{va.pk}"[^>]*>', slot).group(0)
    tag_b = re.search(rf'<aside class="appeal" data-variant="{vb.pk}"[^>]*>', slot).group(0)
    assert "hidden" not in tag_a and "hidden" in tag_b
    assert f'name="source" value="appeal:{a.pk}:{va.pk}"' in slot
    assert f'name="source" value="appeal:{a.pk}:{vb.pk}"' in slot
    # The snooze line is for JavaScript only: hidden in the HTML.
    assert '<p class="snooze" data-js-only hidden>' in slot
    assert "Remind me later" in slot


def test_appeal_has_the_contracted_form(demo, client):
    html = article_html(client)
    slot = html[html.index('class="appeal-slot"'):html.index('class="read-more"')]
    assert "A message from The Lantern" in slot
    assert "Monthly, from just $2." in slot  # the editor's ask, as a sentence
    for frequency in ("once", "monthly", "annual"):
        assert f'name="frequency" value="{frequency}"' in slot
    assert re.search(r'name="frequency" value="monthly" checked', slot)
    assert 'name="amount" value="200"' in slot and "$2<" in slot
    assert 'name="custom_amount"' in slot and 'name="currency"' in slot
    assert ">Continue</button>" in slot
    form = re.search(r'<form class="appeal-form" method="(\w+)" action="([^"]+)"', slot)
    if form.group(1) == "post":
        # Through the appeal's check of the amount (campaigns.views.appeal_checkout), which
        # hands the same POST on to /support/checkout/.
        assert form.group(2) == "/campaigns/appeal/"
        assert 'name="provider"' in slot
    assert "payment-mark" in slot


def test_reader_pages_stay_identical_cookie_free_and_inline_style_free(demo, client, settings):
    settings.MASTHEAD_PAGE_CACHE = False
    first, second = article_html(client), article_html(client)
    assert first == second or _without_nonce(first) == _without_nonce(second)
    response = client.get("/")
    assert not response.cookies
    for html in (first, response.content.decode()):
        campaign_html = html[html.index('id="masthead-campaigns"'):]
        assert "style=" not in campaign_html
        assert " onclick" not in campaign_html and "<script>" not in campaign_html


def _without_nonce(html: str) -> str:
    return re.sub(r'nonce="[^"]+"', "", html)


def test_editor_text_is_escaped_and_rich_text_sanitised(demo, client):
    Campaign.objects.all().delete()
    campaign = make_campaign(name="hostile")
    variant = campaign.variants.get()
    variant.heading = '<script>alert("x")</script>Give'
    variant.suggested_ask = '"><img src=x onerror=alert(1)>'
    variant.save()
    html = article_html(client)
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;Give" in html
    assert "<img src=x onerror" not in html


def test_banner_on_every_page_with_reserved_slot(demo, client):
    for url in ["/", "/news/", ArticlePage.objects.first().url]:
        html = client.get(url).content.decode()
        assert 'class="support-banner-slot" id="masthead-campaigns"' in html, url
        assert "Support The Lantern!" in html, url
        assert 'data-events="/campaigns/events/"' in html


def test_overlay_renders_only_when_enabled(
    demo, client, settings, django_capture_on_commit_callbacks
):
    settings.MASTHEAD_PAGE_CACHE = False
    assert "campaign-overlay" not in client.get("/").content.decode()
    overlay = Campaign.objects.get(name="Overlay: before you go")
    overlay.enabled = True
    # Saved and committed, as the admin does: the banner slot is built once per generation
    # (masthead.core.fragments), and the commit starts a new one.
    with django_capture_on_commit_callbacks(execute=True):
        overlay.save()
    html = client.get("/").content.decode()
    assert '<dialog class="campaign-overlay campaign"' in html
    assert "<dialog class=\"campaign-overlay campaign\" data-campaign" in html
    assert " open" not in re.search(r"<dialog[^>]*>", html).group(0)
    # Never over another app's pages (the give page, the newsletter pages).
    for url in ("/support/", "/newsletter/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "<dialog" not in response.content.decode(), url
        assert "support-banner-slot" in response.content.decode(), url


def test_russian_pages_get_the_russian_campaigns(demo, client):
    russian = ArticlePage.objects.live().filter(locale__language_code="ru").first()
    html = client.get(russian.url).content.decode()
    assert "Поддержите «Фонарь»!" in html and "Обращение «Фонаря»" in html
    assert "Support The Lantern!" not in html
    # The form's own words are translated too.
    for words in ("Продолжить", "Напомнить позже", "Ежемесячно", "Другая сумма"):
        assert words in html, words


def test_saving_a_campaign_invalidates_cached_pages(
    demo, client, django_capture_on_commit_callbacks
):
    article = ArticlePage.objects.live().filter(locale__language_code="en").first()
    assert client.get(article.url)["X-Masthead-Cache"] == "miss"
    assert client.get(article.url)["X-Masthead-Cache"] == "hit"
    banner = Campaign.objects.get(name="Support banner", locale__language_code="en")
    variant = banner.variants.get()
    with django_capture_on_commit_callbacks(execute=True):
        variant.heading = "Stand with The Lantern today"
        variant.save()
    response = client.get(article.url)
    assert response["X-Masthead-Cache"] == "miss"
    assert "Stand with The Lantern today" in response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        banner.delete()
    assert "Stand with The Lantern today" not in client.get(article.url).content.decode()


def test_end_date_is_embedded_for_the_script(demo, client, settings):
    settings.MASTHEAD_PAGE_CACHE = False
    ends = timezone.now() + timedelta(days=3)
    Campaign.objects.filter(placement="banner").update(ends_at=ends)
    html = client.get("/").content.decode()
    assert f'data-ends="{int(ends.timestamp() * 1000)}"' in html


def test_no_banner_campaign_leaves_no_strip(demo, client):
    Campaign.objects.filter(placement="banner").update(enabled=False)
    html = client.get("/").content.decode()
    assert 'class="support-banner-slot is-empty"' in html
    assert "Support The Lantern!" not in html
