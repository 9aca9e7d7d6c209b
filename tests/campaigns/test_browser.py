"""Campaigns in a real browser (Chromium through Playwright): the per-reader rules decided by
campaigns.js from localStorage, on pages that are the same for every reader."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Page, expect

from masthead.campaigns.counters import flush_counters
from masthead.campaigns.models import Campaign, VariantCounter
from masthead.publishing.models import ArticlePage

from .factories import make_campaign

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

START = datetime(2026, 3, 2, 9, 0, 0)


@pytest.fixture
def articles(transactional_db, demo) -> list[str]:
    pages = ArticlePage.objects.live().filter(locale__language_code="en").order_by("-published_at")
    return [p.url for p in pages[:6]]


def appeal_campaign() -> Campaign:
    return Campaign.objects.get(name="End-of-article appeal", locale__language_code="en")


def only_variant_a(campaign: Campaign) -> None:
    for variant in campaign.variants.order_by("sort_order")[1:]:
        variant.delete()


def visible_appeal(page: Page):
    return page.locator(".appeal-slot aside.appeal:visible")


def eventually(campaign: Campaign, page: Page, **expected: int) -> dict[str, int]:
    """The campaign's totals once the browser's beacons have arrived (or after 5 s)."""
    for _ in range(50):
        totals = counts(campaign)
        if all(totals[name] >= value for name, value in expected.items()):
            break
        page.wait_for_timeout(100)
    return totals


def counts(campaign: Campaign) -> dict[str, int]:
    flush_counters()
    totals = {"impressions": 0, "clicks": 0, "dismissals": 0, "conversions": 0}
    for counter in VariantCounter.objects.filter(variant__campaign=campaign):
        for name in totals:
            totals[name] += getattr(counter, name)
    return totals


def test_first_visit_shows_banner_and_appeal_without_layout_shift(
    page: Page, live_server, articles
):
    page.add_init_script(
        "window.__cls = 0; new PerformanceObserver(l => l.getEntries().forEach(e => {"
        " if (!e.hadRecentInput) window.__cls += e.value; }))"
        ".observe({type: 'layout-shift', buffered: true});"
    )
    page.goto(live_server.url + articles[0])
    banner = page.locator(".support-banner-slot .support-banner:visible")
    expect(banner).to_have_count(1)
    expect(banner).to_contain_text("Support The Lantern!")
    expect(banner.locator("[data-close]")).to_be_visible()
    expect(visible_appeal(page)).to_have_count(1)
    expect(visible_appeal(page)).to_contain_text("A message from The Lantern")
    expect(visible_appeal(page).locator("[data-snooze]")).to_be_visible()
    state = page.evaluate("JSON.parse(localStorage.getItem('masthead:campaigns'))")
    assert set(state["v"]) == {str(appeal_campaign().pk), str(
        Campaign.objects.get(name="Support banner", locale__language_code="en").pk)}
    assert page.context.cookies() == []
    page.wait_for_timeout(300)
    assert page.evaluate("window.__cls") == 0
    # The impressions reached the counter endpoint.
    assert eventually(appeal_campaign(), page, impressions=1)["impressions"] == 1


def test_remind_me_later_snoozes_the_appeal_then_it_returns(page: Page, live_server, articles):
    campaign = appeal_campaign()
    page.clock.install(time=START)
    page.goto(live_server.url + articles[0])
    expect(visible_appeal(page)).to_have_count(1)
    visible_appeal(page).get_by_role("button", name="Remind me later").click()
    expect(visible_appeal(page)).to_have_count(0)
    # The note names the campaign's own snooze period (7 days in the demo).
    expect(page.get_by_role("status")).to_have_text("Thank you. We will remind you in 7 days.")
    expect(page.locator(".appeal-snoozed:visible")).to_be_focused()
    for url in articles[1:3]:
        page.goto(live_server.url + url)
        expect(page.locator(".appeal-slot .campaign").first).to_be_hidden()
    # Six days later: still snoozed (default 7 days).
    page.clock.set_system_time(START + timedelta(days=6, hours=23))
    page.goto(live_server.url + articles[3])
    expect(visible_appeal(page)).to_have_count(0)
    # After the snooze the appeal comes back.
    page.clock.set_system_time(START + timedelta(days=7, hours=1))
    page.goto(live_server.url + articles[4])
    expect(visible_appeal(page)).to_have_count(1)
    # The banner is a separate prompt and was never snoozed.
    expect(page.locator(".support-banner:visible")).to_have_count(1)
    assert eventually(campaign, page, dismissals=1)["dismissals"] == 1


def test_closing_the_banner_hides_it_for_its_own_days(page: Page, live_server, articles):
    page.clock.install(time=START)
    page.goto(live_server.url + articles[0])
    slot = page.locator(".support-banner-slot")
    height = slot.bounding_box()["height"]
    page.locator(".support-banner [data-close]").click()
    expect(page.locator(".support-banner:visible")).to_have_count(0)
    assert slot.bounding_box()["height"] == height  # the space stays reserved
    page.goto(live_server.url + articles[1])
    expect(page.locator(".support-banner:visible")).to_have_count(0)
    expect(visible_appeal(page)).to_have_count(1)  # the appeal has its own rules
    page.clock.set_system_time(START + timedelta(days=3, minutes=1))
    page.goto(live_server.url + articles[2])
    expect(page.locator(".support-banner:visible")).to_have_count(1)


def test_frequency_cap_and_first_articles_rule(page: Page, live_server, articles):
    campaign = appeal_campaign()
    campaign.max_views_per_day = 2
    campaign.max_views_per_week = 3
    campaign.skip_first_articles = 1
    campaign.save()
    page.clock.install(time=START)
    seen = []
    for url in articles[:5]:
        page.goto(live_server.url + url)
        page.locator("html").wait_for()
        seen.append(visible_appeal(page).count())
    # Not on the first article; then two views; then the daily cap holds.
    assert seen == [0, 1, 1, 0, 0]
    page.clock.set_system_time(START + timedelta(days=1, minutes=5))
    page.goto(live_server.url + articles[5])
    expect(visible_appeal(page)).to_have_count(1)  # a new day: third view this week
    page.clock.set_system_time(START + timedelta(days=2, minutes=10))
    page.goto(live_server.url + articles[0])
    expect(visible_appeal(page)).to_have_count(0)  # the weekly cap of 3 holds
    assert eventually(campaign, page, impressions=3)["impressions"] == 3


def test_variants_are_random_weighted_and_sticky(browser, live_server, articles):
    campaign = appeal_campaign()
    a, b = campaign.variants.order_by("sort_order")
    seen = {}
    for random_value, expected in ((0.1, a), (0.9, b)):
        context = browser.new_context()
        context.add_init_script(f"Math.random = () => {random_value};")
        page = context.new_page()
        page.goto(live_server.url + articles[0])
        visible = page.locator(".appeal-slot aside.appeal:visible")
        expect(visible).to_have_count(1)
        assert visible.get_attribute("data-variant") == str(expected.pk)
        # Whatever the dice say later, this browser keeps its variant.
        context.add_init_script(f"Math.random = () => {1 - random_value};")
        for url in articles[1:4]:
            page.goto(live_server.url + url)
            assert page.locator(".appeal-slot aside.appeal:visible").get_attribute(
                "data-variant"
            ) == str(expected.pk)
        seen[expected.pk] = page.locator(
            ".appeal-slot aside.appeal:visible input[name=source]"
        ).get_attribute("value")
        context.close()
    assert seen == {a.pk: f"appeal:{campaign.pk}:{a.pk}", b.pk: f"appeal:{campaign.pk}:{b.pk}"}


def test_amounts_follow_the_frequency_and_other_amount(page: Page, live_server, articles):
    only_variant_a(appeal_campaign())
    page.goto(live_server.url + articles[0])
    appeal = visible_appeal(page)
    values = appeal.locator("input[name=amount]").evaluate_all("els => els.map(e => e.value)")
    assert values == ["200", "500", "1000", "2000", ""]  # the variant's own monthly amounts
    expect(appeal.locator("input[name=amount]:checked")).to_have_count(1)
    appeal.get_by_label("Annual").check()
    values = appeal.locator("input[name=amount]").evaluate_all("els => els.map(e => e.value)")
    assert values[-1] == "" and "200" not in values and len(values) > 2
    appeal.get_by_label("Currency").select_option("EUR")
    expect(appeal.locator("label:has(input[name=amount]:not([data-other]))").first).to_contain_text(
        "€"
    )
    # "Other amount" is offered once "Other" is chosen, and takes the focus.
    expect(appeal.get_by_label("Other amount")).to_be_hidden()
    appeal.get_by_label("Other", exact=True).check()
    expect(appeal.get_by_label("Other amount")).to_be_focused()
    appeal.get_by_label("Other amount").fill("7.50")
    expect(appeal.locator("input[name=amount][data-other]")).to_be_checked()


def test_contributing_through_the_sandbox_stops_the_asks(page: Page, live_server, articles):
    campaign = appeal_campaign()
    only_variant_a(campaign)
    variant = campaign.variants.get()
    page.goto(live_server.url + articles[0])
    appeal = visible_appeal(page)
    appeal.get_by_label("Monthly").check()
    appeal.locator("input[name=amount][value='500']").check()
    appeal.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/support/sandbox/**")
    page.get_by_label("Email").fill("reader@example.org")
    page.get_by_role("button", name="Complete payment").click()
    page.wait_for_url("**/thanks/")
    expect(page.locator("#masthead-contributed")).to_have_count(1)
    for url in articles[1:3]:
        page.goto(live_server.url + url)
        expect(page.locator(".appeal-slot .campaign").first).to_be_hidden()
        expect(page.locator(".support-banner:visible")).to_have_count(0)
        expect(page.locator(".support-banner-thanks")).to_be_visible()
    totals = eventually(campaign, page, clicks=1, conversions=1)
    assert totals["clicks"] == 1 and totals["conversions"] == 1
    assert VariantCounter.objects.get(variant=variant).conversions == 1


def test_subscribers_do_not_get_the_newsletter_prompt(page: Page, live_server, articles):
    prompt = Campaign.objects.get(name="Newsletter prompt")
    prompt.enabled = True
    prompt.skip_first_articles = 0
    prompt.max_views_per_week = 0
    prompt.save()
    support_overlay = make_campaign(name="support overlay", placement="overlay", priority=-1)
    for url in articles[:2]:
        page.goto(live_server.url + url)
        dialog = page.locator("dialog.campaign-overlay[open]")
        expect(dialog).to_have_count(1)
        expect(dialog).to_contain_text("Get our free weekly newsletter")
    # Sign up from the article's newsletter block and confirm from the email.
    page.keyboard.press("Escape")  # out of the way (this closes the prompt for its close_days)
    block = page.locator(".newsletter-signup")
    block.get_by_label("Your email address").fill("prompted.reader@example.org")
    block.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    link = re.search(r"https?://[^/\s]+(/newsletter/confirm/\S+/)", mail.outbox[-1].body).group(1)
    page.goto(live_server.url + link)
    page.get_by_role("button", name="Yes, subscribe me").click()
    page.wait_for_load_state()
    expect(page.locator("#masthead-subscribed")).to_have_count(1)
    page.wait_for_function("(localStorage.getItem('masthead:campaigns') || '').includes('sub')")
    # Undo the close, so that only the subscription can keep the prompt away.
    page.evaluate(
        "(() => { const s = JSON.parse(localStorage.getItem('masthead:campaigns'));"
        " s.h = {}; localStorage.setItem('masthead:campaigns', JSON.stringify(s)); })()"
    )
    page.goto(live_server.url + articles[2])
    # The newsletter prompt is skipped for a subscriber; the next overlay is eligible instead.
    dialog = page.locator("dialog.campaign-overlay[open]")
    expect(dialog).to_have_count(1)
    assert dialog.get_attribute("data-campaign") == str(support_overlay.pk)
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)
    # Closing the overlay is not snoozing the appeal: the appeal and its note are untouched.
    expect(page.locator(".appeal-snoozed:visible")).to_have_count(0)
    expect(visible_appeal(page)).to_have_count(1)
    assert eventually(support_overlay, page, dismissals=1)["dismissals"] == 1
    page.goto(live_server.url + articles[3])
    expect(page.locator("dialog[open]")).to_have_count(0)  # closed: away for its close_days


def test_campaign_that_ended_on_a_cached_page_is_not_shown(page: Page, live_server, articles):
    now = timezone.now().replace(microsecond=0)
    banner = Campaign.objects.get(name="Support banner", locale__language_code="en")
    banner.ends_at = now + timedelta(hours=1)
    banner.save()
    page.clock.install(time=now)
    page.goto(live_server.url + articles[0])
    expect(page.locator(".support-banner:visible")).to_have_count(1)
    page.clock.set_system_time(now + timedelta(hours=2))
    page.reload()  # the same cached HTML, but its end time has passed
    expect(page.locator(".support-banner:visible")).to_have_count(0)
    assert page.locator(".support-banner[data-ends]").count() == 1


def test_no_request_leaves_the_site(page: Page, live_server, articles):
    origin = urlsplit(live_server.url).netloc
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(live_server.url + "/")
    page.goto(live_server.url + articles[0])
    visible_appeal(page).get_by_role("button", name="Remind me later").click()
    page.goto(live_server.url + articles[1])
    page.locator(".support-banner-link:visible").click()
    page.wait_for_load_state()
    assert requests
    outside = [
        url for url in requests
        if not url.startswith("data:") and urlsplit(url).netloc != origin
    ]
    assert outside == []
    assert any("/campaigns/events/" in url for url in requests)


def test_the_page_works_without_javascript(browser, live_server, articles):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(live_server.url + articles[0])
    expect(page.locator(".support-banner-link:visible")).to_have_text("Support The Lantern!")
    appeal = visible_appeal(page)
    expect(appeal).to_have_count(1)
    expect(appeal).to_contain_text("A message from The Lantern")
    expect(appeal).to_contain_text("Monthly, from just $2.")
    # Nothing that needs the script is offered: no dead "Remind me later", no close button.
    expect(page.get_by_role("button", name="Remind me later")).to_have_count(0)
    expect(page.locator("[data-close]:visible")).to_have_count(0)
    # The form works as plain HTML: the appeal posts to the checkout.
    appeal.locator("input[name=amount][value='1000']").check()
    appeal.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/support/sandbox/**")
    expect(page.locator("h1")).to_have_text("Sandbox checkout")
    expect(page.locator(".sandbox-summary")).to_contain_text("10")
    # Typing an amount of one's own works without the script too: "Other" shows the field.
    page.goto(live_server.url + articles[1])
    appeal = visible_appeal(page)
    expect(appeal.get_by_label("Other amount")).to_be_hidden()
    appeal.get_by_label("Other", exact=True).check()
    appeal.get_by_label("Other amount").fill("7.50")
    appeal.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/support/sandbox/**")
    expect(page.locator(".sandbox-summary")).to_contain_text("7.50")
    context.close()


def test_eligibility_rules_table(page: Page, live_server, transactional_db, site):
    """campaigns.js's rule function, case by case, in the browser that runs it."""
    page.goto(live_server.url + "/")
    now = 1_800_000_000_000
    day = 86_400_000
    base = {"id": "5", "audience": "non_supporters", "day": 0, "week": 0, "skip": 0, "ends": 0}
    cases = [
        ({}, {}, True),
        ({"ends": now - 1}, {}, False),
        ({"ends": now + 1}, {}, True),
        ({}, {"sup": now + day}, False),
        ({}, {"sup": now - 1}, True),
        ({"audience": "everyone"}, {"sup": now + day, "sub": now + day}, True),
        ({"audience": "non_subscribers"}, {"sup": now + day}, True),
        ({"audience": "non_subscribers"}, {"sub": now + day}, False),
        ({}, {"h": {"5": now + 1}}, False),
        ({}, {"h": {"5": now - 1}}, True),
        ({}, {"h": {"6": now + day}}, True),
        ({"skip": 2}, {"c": 2}, False),
        ({"skip": 2}, {"c": 3}, True),
        ({"day": 2}, {"n": {"5": [now - 2 * day, now - 3600_000]}}, True),
        ({"day": 2}, {"n": {"5": [now - 7200_000, now - 3600_000]}}, False),
        ({"week": 3}, {"n": {"5": [now - 6 * day, now - 3 * day, now - day - 1]}}, False),
        ({"week": 3}, {"n": {"5": [now - 8 * day, now - 3 * day, now - day - 1]}}, True),
    ]
    for overrides, state, expected in cases:
        rules = {**base, **overrides}
        result = page.evaluate(
            "([r, s, now]) => window.mastheadCampaigns.eligible(r, s, now)", [rules, state, now]
        )
        assert result is expected, (overrides, state)


def test_broken_local_storage_does_not_break_the_page(page: Page, live_server, articles):
    page.add_init_script("localStorage.setItem('masthead:campaigns', '{not json');")
    page.goto(live_server.url + articles[0])
    expect(visible_appeal(page)).to_have_count(1)
    # Well-formed JSON, wrong shapes: set right, not a crash.
    page.evaluate(
        """localStorage.setItem('masthead:campaigns', JSON.stringify(
            {n: {"1": 3, "2": "x"}, h: [], a: "x", c: "y", v: null, sup: "soon"}))"""
    )
    page.goto(live_server.url + articles[2])
    expect(visible_appeal(page)).to_have_count(1)
    state = page.evaluate("JSON.parse(localStorage.getItem('masthead:campaigns'))")
    assert state["c"] == 1 and isinstance(state["a"], list) and len(state["v"]) == 2
    page.add_init_script(
        "Object.defineProperty(window, 'localStorage', {get() { throw new Error('blocked'); }});"
    )
    page.goto(live_server.url + articles[1])
    expect(visible_appeal(page)).to_have_count(1)
    expect(page.locator(".support-banner:visible")).to_have_count(1)


def test_banner_click_through_the_give_page_counts_for_the_banner(
    page: Page, live_server, articles
):
    banner = Campaign.objects.get(name="Support banner", locale__language_code="en")
    variant = banner.variants.get()
    page.goto(live_server.url + articles[0])
    page.locator(".support-banner-link:visible").click()
    page.wait_for_url("**/support/?*")
    assert f"source=banner%3A{banner.pk}%3A{variant.pk}" in page.url
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url("**/support/sandbox/**")
    page.get_by_label("Email").fill("banner.reader@example.org")
    page.get_by_role("button", name="Complete payment").click()
    page.wait_for_url("**/thanks/")
    totals = eventually(banner, page, clicks=1, conversions=1)
    assert (totals["clicks"], totals["conversions"]) == (1, 1)
