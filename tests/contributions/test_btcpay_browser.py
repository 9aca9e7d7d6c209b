"""BTCPay and bank transfer end to end in Chromium: a one-time and a monthly contribution
through the BTCPay stand-in (hosted checkout, webhooks signed as BTCPay signs them, the
pay-by-link period email and its link), and a monthly bank-transfer pledge recorded by
staff — each to the receipt, the manage link and the cancellation."""

from __future__ import annotations

import datetime as dt
import os
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from masthead.contributions import paybylink, statements
from masthead.contributions.bankaccount import BankAccountSettings
from masthead.contributions.models import Contribution, ProviderEvent, RecurringPlan
from masthead.core.mail import read_outbox

from .btcpay_standin import BTCPAY_PROVIDER, BTCPayStandIn
from .conftest import SANDBOX

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
SHOTS = os.environ.get("MASTHEAD_SCREENSHOTS", "")


@pytest.fixture
def served(settings, live_server, transactional_db, demo):
    settings.MASTHEAD_BASE_URL = live_server.url
    settings.EMAIL_BACKEND = "masthead.core.mail.OutboxBackend"
    return live_server.url


@pytest.fixture
def btcpay(settings, served):
    standin = BTCPayStandIn()
    standin.webhook_url = served + "/support/webhooks/btcpay/"
    settings.MASTHEAD_PAYMENT_PROVIDERS = {
        "btcpay": {"BACKEND": BTCPAY_PROVIDER},
        "banktransfer": {
            "BACKEND": "masthead.contributions.providers.banktransfer.BankTransferProvider"
        },
        "sandbox": {"BACKEND": SANDBOX},
    }
    settings.BTCPAY_URL = standin.url
    settings.BTCPAY_STORE_ID = standin.store_id
    settings.BTCPAY_API_KEY = standin.api_key
    settings.BTCPAY_WEBHOOK_SECRET = standin.webhook_secret
    policy = settings.CONTENT_SECURITY_POLICY
    directives = dict(policy["DIRECTIVES"])
    directives["form-action"] = [*directives["form-action"], standin.url]
    settings.CONTENT_SECURITY_POLICY = {**policy, "DIRECTIVES": directives}
    yield standin
    standin.close()


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


def shoot(page: Page, name: str) -> None:
    """Screenshots at 390 and 1280 px when MASTHEAD_SCREENSHOTS names a folder."""
    if not SHOTS:
        return
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=f"{SHOTS}/{name}-{width}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def messages_to(email: str, subject: str) -> list:
    return [m for _p, m in read_outbox() if m["To"] == email and m["Subject"].startswith(subject)]


def body_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def manage_link(body: str) -> str:
    match = re.search(r"http://\S+/support/manage/\S+/", body)
    assert match, body
    return match.group(0)


def choose(page: Page, served: str, query: str, method: str) -> None:
    page.goto(served + "/support/?" + query)
    form = page.locator("form.give-form")
    form.get_by_label(method, exact=True).check()
    form.get_by_role("button", name="Continue").click()


def pay_at_btcpay(page: Page, email: str, due: str) -> None:
    expect(page.get_by_role("heading", name="BTCPay test checkout")).to_be_visible()
    expect(page.get_by_text(f"Pay {due}")).to_be_visible()
    if email:
        page.get_by_label("Refund email").fill(email)
    page.get_by_role("button", name="Pay in full").click()
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()


def test_one_time_through_btcpay(page: Page, served, btcpay):
    problems = watch_console(page)
    page.goto(served + "/support/")
    methods = page.locator(".payment-methods-info")
    expect(methods.locator("[data-method=btcpay]")).to_contain_text("No card or bank needed")
    expect(methods.locator("[data-method=banktransfer]")).to_contain_text("No card needed")
    shoot(page, "give-methods")
    choose(page, served, "frequency=once&amount=1000&currency=EUR", "Bitcoin")
    pay_at_btcpay(page, "coin.reader@example.org", "10.00 EUR")
    contribution = Contribution.objects.get(provider="btcpay")
    assert contribution.status == "succeeded"
    assert ProviderEvent.objects.filter(provider="btcpay", status="processed").count() >= 3
    [receipt] = messages_to("coin.reader@example.org", "Receipt")
    assert "€10" in body_of(receipt)
    page.goto(manage_link(body_of(receipt)))
    expect(page.get_by_role("heading", name="Your support")).to_be_visible()
    assert page.context.cookies() == []
    assert problems == []


def test_monthly_through_btcpay_pay_by_link(page: Page, served, btcpay):
    problems = watch_console(page)
    choose(page, served, "frequency=monthly&amount=500&currency=USD", "Bitcoin")
    pay_at_btcpay(page, "monthly.coin@example.org", "5.00 USD")
    plan = RecurringPlan.objects.get(provider="btcpay")
    assert plan.status == "active"
    assert len(messages_to("monthly.coin@example.org", "Receipt")) == 1

    # A month on, the job opens the period and emails its link; the link opens a fresh
    # invoice at BTCPay each time it is followed.
    report = paybylink.run(timezone.now() + dt.timedelta(days=32))
    assert report["periods opened"] == 1
    [period_email] = messages_to("monthly.coin@example.org", "Your support for this period")
    link = re.search(r"http://\S+/support/pay/\S+/", body_of(period_email)).group(0)
    page.goto(link)
    pay_at_btcpay(page, "", "5.00 USD")
    renewal = plan.payments.get(is_renewal=True)
    assert renewal.status == "succeeded"
    receipts = messages_to("monthly.coin@example.org", "Receipt")
    assert len(receipts) == 2

    page.goto(manage_link(body_of(receipts[-1])))
    expect(page.get_by_role("heading", name="Your support")).to_be_visible()
    page.get_by_role("button", name="Cancel my monthly support").click()
    page.get_by_role("button", name="Yes, cancel my monthly support").click()  # confirm
    expect(page.get_by_role("status")).to_contain_text("Your recurring support is cancelled")
    plan.refresh_from_db()
    assert plan.status == "cancelled"
    # The paid period's link, followed again, opens no second invoice.
    invoices = len(btcpay.invoices)
    page.goto(link)
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    assert len(btcpay.invoices) == invoices
    assert problems == []


def test_monthly_bank_transfer_pledge(page: Page, served, btcpay):
    account = BankAccountSettings.load()
    account.account_holder = "Example Media Foundation"
    account.iban = "DE89370400440532013000"
    account.swift = "COBADEFFXXX"
    account.other_details = "Correspondent bank: Example Bank, New York"
    account.save()
    problems = watch_console(page)
    choose(page, served, "frequency=monthly&amount=500&currency=USD", "Bank transfer")
    expect(page.get_by_role("heading", name="Pay by bank transfer")).to_be_visible()
    reference = page.locator("[data-reference]").inner_text()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", reference)
    expect(page.locator(".transfer-account")).to_contain_text("DE89 3704 0044 0532 0130 00")
    shoot(page, "transfer-pledge")
    page.get_by_label("Email for your receipt").fill("bank.reader@example.org")
    page.get_by_role("button", name="Email me these details").click()
    expect(page.get_by_role("status")).to_contain_text("We have emailed you these details")
    [details] = messages_to("bank.reader@example.org", "How to make your bank transfer")
    assert reference in body_of(details)

    # The transfer arrives; staff record it (as from the admin): the receipt goes out once.
    line = statements.record_transfer(
        reference.lower().replace("-", " "), "5.00", "USD", dt.date.today().isoformat()
    )
    assert line.outcome == "recorded"
    statements.record_transfer(reference, "5", "USD", dt.date.today().isoformat())
    [receipt] = messages_to("bank.reader@example.org", "Receipt")
    assert "$5" in body_of(receipt)
    plan = RecurringPlan.objects.get(provider="banktransfer")
    assert plan.status == "active"

    page.goto(manage_link(body_of(receipt)))
    expect(page.get_by_role("heading", name="Your support")).to_be_visible()
    page.get_by_role("button", name="Cancel my monthly support").click()
    page.get_by_role("button", name="Yes, cancel my monthly support").click()  # confirm
    expect(page.get_by_role("status")).to_contain_text("Your recurring support is cancelled")
    plan.refresh_from_db()
    assert plan.status == "cancelled"
    assert page.context.cookies() == []
    assert problems == []


def test_admin_imports_a_statement(page: Page, served, btcpay, settings, tmp_path):
    """Staff import a statement in the admin and see what matched and what needs a look."""
    from django.contrib.auth.models import User

    from masthead.contributions import giving

    settings.MASTHEAD_STAFF_TWO_FACTOR = False  # two-factor has its own tests
    User.objects.create_superuser("cashier", "cashier@example.org", "pw-cashier-123456")
    pledge, _url = giving.start_contribution(
        frequency="once", amount=2500, currency="EUR", provider_key="banktransfer"
    )
    statement = tmp_path / "statement.csv"
    statement.write_text(
        "date,reference,amount,currency,payer\n"
        f"2026-11-30,{pledge.checkout_ref.lower()},25.00,EUR,P. Payer\n"
        f"2026-11-30,{pledge.checkout_ref},20.00,EUR,Short\n"
        "2026-11-30,WXYZ-2345,10.00,EUR,Someone else\n"
    )
    page.goto(served + "/admin/login/")
    page.get_by_label("Username").fill("cashier")
    page.get_by_label("Password").fill("pw-cashier-123456")
    page.get_by_role("button", name="Sign in").click()
    page.goto(served + "/admin/giving/transfers/")
    expect(page.get_by_role("heading", name="Bank transfers").first).to_be_visible()
    page.get_by_label("Bank statement (CSV)").set_input_files(str(statement))
    page.get_by_role("button", name="Import").click()
    report = page.locator(".transfer-report")
    expect(report.locator("[data-outcome=recorded]")).to_contain_text("1")
    expect(report.locator("[data-line='3']")).to_contain_text("the pledge is €25")
    expect(report.locator("[data-line='4']")).to_contain_text("unmatched")
    shoot(page, "admin-transfers")
    pledge.refresh_from_db()
    assert pledge.status == "succeeded"
