"""A monthly contribution end to end in Chromium through the sandbox provider: from an article
page's appeal (rendered by campaigns) and from the contribution page, to the receipt in the
outbox, the manage link and cancellation — with no cookies and no CSP violations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from masthead.contributions.models import Contribution, RecurringPlan
from masthead.core.mail import read_outbox
from masthead.publishing.models import ArticlePage

SHOTS = Path(__file__).resolve().parents[2] / "data" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def served(settings, live_server, transactional_db, demo):
    settings.MASTHEAD_BASE_URL = live_server.url
    settings.EMAIL_BACKEND = "masthead.core.mail.OutboxBackend"
    return live_server.url


def watch_console(page: Page) -> list[str]:
    problems: list[str] = []
    page.on(
        "console",
        lambda msg: (
            problems.append(msg.text)
            if "Content Security Policy" in msg.text or "Refused to" in msg.text
            else None
        ),
    )
    return problems


def pay_in_sandbox(page: Page, email: str) -> None:
    expect(page.get_by_text("Sandbox — no real money")).to_be_visible()
    expect(page.locator(".sandbox-summary")).to_contain_text("$5")
    expect(page.locator(".sandbox-summary")).to_contain_text("Monthly")
    page.get_by_label("Email for your receipt").fill(email)
    page.get_by_role("button", name="Complete payment").click()
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    expect(page.locator("#masthead-contributed")).to_have_attribute("data-frequency", "monthly")
    expect(page.locator(".thanks-confirmed")).to_contain_text("monthly support of $5")


def receipt_manage_link(email: str) -> str:
    receipts = [
        message
        for _path, message in read_outbox()
        if message["To"] == email and message["Subject"].startswith("Receipt")
    ]
    assert len(receipts) == 1, [m["Subject"] for _p, m in read_outbox()]
    body = receipts[0].get_body(("plain",)).get_content()
    assert "$5" in body
    match = re.search(r"http://\S+/support/manage/\S+/", body)
    assert match, body
    return match.group(0)


def cancel_from_manage_page(page: Page, link: str) -> None:
    page.goto(link)
    expect(page.get_by_role("heading", name="Your support")).to_be_visible()
    page.get_by_role("button", name="Cancel my monthly support").click()
    # Issue 13: one click only asks; nothing is cancelled until the donor confirms.
    expect(page.get_by_text(re.compile(r"Cancel your monthly support of"))).to_be_visible()
    assert RecurringPlan.objects.filter(status="cancelled").count() == 0
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"manage-cancel-confirm-{width}.png"), full_page=True)
    page.get_by_role("button", name="Yes, cancel my monthly support").click()
    expect(page.get_by_role("status")).to_contain_text("Your recurring support is cancelled")


def test_monthly_from_the_article_appeal(page: Page, served):
    problems = watch_console(page)
    article = ArticlePage.objects.live().filter(locale__language_code="en").first()
    page.goto(served + article.url)
    appeal = page.locator(".appeal-slot aside.appeal:visible")
    expect(appeal).to_have_count(1)
    appeal.get_by_label("Monthly").check()
    appeal.get_by_label("$5", exact=True).check()
    appeal.get_by_role("button", name="Continue").click()
    pay_in_sandbox(page, "appeal.reader@example.org")

    plan = RecurringPlan.objects.exclude(provider_ref__startswith="demo-").get()
    assert (plan.status, plan.amount, plan.currency, plan.frequency) == (
        "active",
        500,
        "USD",
        "monthly",
    )
    first = Contribution.objects.get(plan=plan)
    assert first.status == "succeeded" and first.source.startswith("appeal:")
    # campaigns counted the conversion for the variant shown (contribution_succeeded).
    from masthead.campaigns.counters import flush_counters
    from masthead.campaigns.models import VariantCounter

    flush_counters()
    variant_id = int(first.source.split(":")[2])
    conversions = sum(c.conversions for c in VariantCounter.objects.filter(variant_id=variant_id))
    assert conversions == 1

    cancel_from_manage_page(page, receipt_manage_link("appeal.reader@example.org"))
    plan.refresh_from_db()
    assert plan.status == "cancelled"
    assert page.context.cookies() == []
    assert problems == []


def test_monthly_from_the_contribution_page(page: Page, served):
    problems = watch_console(page)
    page.goto(served + "/support/")
    form = page.locator("form.give-form")
    form.get_by_label("Once").check()
    form.get_by_label("Monthly").check()
    # The presets follow the frequency (monthly: $2, $5, $10, $20).
    expect(form.locator(".presets[data-frequency=monthly]")).to_be_visible()
    expect(form.locator(".presets[data-frequency=once]")).to_be_hidden()
    form.locator(".presets[data-frequency=monthly]").get_by_label("$5", exact=True).check()
    # A custom amount below the minimum is refused with a clear message, then corrected.
    form.get_by_label("Or another amount (USD)").fill("1")
    form.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    expect(page.get_by_text("The smallest contribution we can accept is $2.")).to_be_visible()
    assert not Contribution.objects.exclude(checkout_ref__startswith="demo-").exists()
    page.get_by_label("Or another amount (USD)").fill("5")
    page.get_by_role("button", name="Continue").click()
    # Decline once in the sandbox, then pay.
    page.get_by_label("Email for your receipt").fill("page.reader@example.org")
    page.get_by_role("button", name="Decline payment").click()
    expect(page.get_by_role("alert")).to_contain_text("declined")
    pay_in_sandbox(page, "page.reader@example.org")
    cancel_from_manage_page(page, receipt_manage_link("page.reader@example.org"))
    assert RecurringPlan.objects.exclude(provider_ref__startswith="demo-").get().status == (
        "cancelled"
    )
    assert page.context.cookies() == []
    assert problems == []


def test_monthly_through_stripe_hosted_checkout_standin(page: Page, served, stripe_api, settings):
    """The same flow with the real Stripe SDK and a local stand-in of Stripe's hosted checkout,
    which sends its signed webhooks to our endpoint before returning the reader."""
    from masthead.contributions.models import ProviderEvent

    from .conftest import WHSEC

    stripe_api.webhook_url = served + "/support/webhooks/stripe/"
    stripe_api.webhook_secret = WHSEC
    policy = settings.CONTENT_SECURITY_POLICY
    directives = dict(policy["DIRECTIVES"])
    directives["form-action"] = [*directives["form-action"], stripe_api.url]
    settings.CONTENT_SECURITY_POLICY = {**policy, "DIRECTIVES": directives}
    problems = watch_console(page)

    page.goto(served + "/support/?frequency=monthly&amount=500&currency=USD")
    form = page.locator("form.give-form")
    expect(form.get_by_label("Monthly")).to_be_checked()
    form.get_by_label("Card, Apple Pay, Google Pay (Stripe)").check()
    form.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Stripe test checkout")).to_be_visible()
    expect(page.get_by_text("Pay 5.00 USD")).to_be_visible()
    page.get_by_label("Email").fill("stripe.reader@example.org")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    expect(page.locator(".thanks-confirmed")).to_contain_text("monthly support of $5")
    assert ProviderEvent.objects.filter(provider="stripe", status="processed").count() == 2

    cancel_from_manage_page(page, receipt_manage_link("stripe.reader@example.org"))
    plan = RecurringPlan.objects.get(provider="stripe")
    assert plan.status == "cancelled"
    assert stripe_api.calls("DELETE", f"/v1/subscriptions/{plan.provider_ref}")
    assert problems == []


def test_monthly_through_paypal_approval_standin(page: Page, served, settings):
    """The same flow with PayPal's official SDK and a stand-in of PayPal's approval page,
    which sends RSA-signed webhooks (verified through its verify API) before returning."""
    from .standins import PayPalStandIn

    standin = PayPalStandIn()
    try:
        settings.MASTHEAD_PAYMENT_PROVIDERS = {
            "paypal": {"BACKEND": "masthead.contributions.providers.paypal.PayPalProvider"},
        }
        settings.PAYPAL_CLIENT_ID = standin.client_id
        settings.PAYPAL_CLIENT_SECRET = standin.secret
        settings.PAYPAL_WEBHOOK_ID = standin.webhook_id = "WH-browser"
        settings.PAYPAL_API_BASE = standin.url
        settings.PAYPAL_PRODUCT_ID = ""
        standin.webhook_url = served + "/support/webhooks/paypal/"
        policy = settings.CONTENT_SECURITY_POLICY
        directives = dict(policy["DIRECTIVES"])
        directives["form-action"] = [*directives["form-action"], standin.url]
        settings.CONTENT_SECURITY_POLICY = {**policy, "DIRECTIVES": directives}
        problems = watch_console(page)

        page.goto(served + "/support/?frequency=monthly&amount=500&currency=USD")
        form = page.locator("form.give-form")
        expect(form.get_by_label("PayPal", exact=True)).to_be_checked()
        form.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="PayPal test checkout")).to_be_visible()
        page.get_by_label("PayPal email").fill("paypal.reader@example.org")
        page.get_by_role("button", name="Agree and subscribe").click()
        expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
        expect(page.locator(".thanks-confirmed")).to_contain_text("monthly support of $5")

        cancel_from_manage_page(page, receipt_manage_link("paypal.reader@example.org"))
        plan = RecurringPlan.objects.get(provider="paypal")
        assert plan.status == "cancelled"
        assert standin.subscriptions[plan.provider_ref]["status"] == "CANCELLED"
        assert problems == []
    finally:
        standin.close()
