"""Bad and hostile input to the giving form, the manage pages and the sandbox get clear 4xx
answers and change nothing."""

from __future__ import annotations

import time

import pytest
from django.core import mail, signing
from django.urls import reverse

from masthead.contributions import giving, tokens
from masthead.contributions.models import Contribution, Donor
from masthead.contributions.money import format_money, parse_major

from .standins import deliver

pytestmark = pytest.mark.django_db


def post(client, **fields):
    data = {"frequency": "once", "currency": "USD", "provider": "sandbox"}
    data.update(fields)
    return client.post(reverse("contributions:checkout"), data)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"amount": "100"}, "The smallest contribution we can accept is $2."),
        ({"custom_amount": "1.99"}, "The smallest contribution we can accept is $2."),
        (
            {"custom_amount": "1,50", "currency": "EUR"},
            "The smallest contribution we can accept is €2.",
        ),
        ({"custom_amount": "-5"}, "Enter an amount greater than zero."),
        ({"amount": "-500"}, "Enter the amount as a number."),
        ({"custom_amount": "0"}, "Enter an amount greater than zero."),
        ({"custom_amount": "abc"}, "Enter the amount as a number, like 5 or 12.50."),
        ({"custom_amount": "NaN"}, "Enter the amount as a number, like 5 or 12.50."),
        ({"custom_amount": "Infinity"}, "Enter the amount as a number, like 5 or 12.50."),
        ({"custom_amount": "1e3"}, "Enter the amount as a number, like 5 or 12.50."),
        ({"custom_amount": "5.555"}, "Enter the amount as a number, like 5 or 12.50."),
        ({"custom_amount": "٥"}, "Enter the amount as a number, like 5 or 12.50."),
        (
            {"custom_amount": "99999999999999999999"},
            "Enter the amount as a number, like 5 or 12.50.",
        ),
        ({"custom_amount": "1000000"}, "For a gift above $10,000, please write to us."),
        ({"amount": "99999999999999999999"}, "Enter the amount as a number."),
        ({}, "Choose an amount or enter your own."),
        ({"amount": "500", "currency": "XYZ"}, "Choose one of these currencies: USD, EUR, GBP."),
        ({"amount": "500", "currency": ""}, "Choose one of these currencies: USD, EUR, GBP."),
        (
            {"amount": "500", "frequency": "weekly"},
            "Choose how often to give: once, monthly or annual.",
        ),
        ({"amount": "500", "provider": "evil"}, "Choose a payment method."),
        ({"amount": "500", "source": "appeal:1:<b>"}, "Invalid source."),
        ({"amount": "500", "source": "x" * 101}, "at most 100 characters"),
    ],
)
def test_bad_amounts_and_choices_are_refused_clearly(client, site, fields, message):
    response = post(client, **fields)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html.replace("&#x27;", "'")
    assert "nothing has been charged" in html
    assert "no-store" in response["Cache-Control"]
    assert Contribution.objects.count() == 0


def test_hostile_text_is_escaped_and_control_characters_dropped(client, site, on_commit):
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    response = post(client, amount="1", name=evil, message=evil)
    html = response.content.decode()
    assert response.status_code == 400
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html
    ok = post(
        client,
        amount="500",
        name="Ann\r\nBcc: victim@example.org",
        public="1",
        message="Hi\u202eevil\u0007",
    )
    assert ok.status_code == 303
    contribution = Contribution.objects.get()
    assert contribution.public_name == "Ann Bcc: victim@example.org"
    assert contribution.message == "Hievil"
    nul = post(client, amount="500", message="a\x00b")
    assert nul.status_code == 400 and "Null characters are not allowed." in nul.content.decode()


def test_custom_amount_is_parsed_in_minor_units(client, site):
    assert post(client, custom_amount="5,50", currency="EUR").status_code == 303
    assert post(client, custom_amount="£12.30", currency="GBP").status_code == 303
    assert sorted(Contribution.objects.values_list("amount", "currency")) == [
        (550, "EUR"),
        (1230, "GBP"),
    ]
    assert parse_major("7", "USD") == 700 and format_money(123456, "USD") == "$1,234.56"


def test_checkout_accepts_only_post_and_no_csrf_cookie_is_needed(client, site):
    assert client.get(reverse("contributions:checkout")).status_code == 405
    strict = client.__class__(enforce_csrf_checks=True)
    response = strict.post(
        reverse("contributions:checkout"),
        {"frequency": "monthly", "amount": "500", "currency": "USD", "provider": "sandbox"},
    )
    assert response.status_code == 303


def test_manage_link_request_never_reveals_who_gave(client, site, on_commit):
    donor = Donor(name="Known")
    donor.set_email("known@example.org")
    donor.save()
    url = reverse("contributions:manage_request")
    with on_commit():
        known = client.post(url, {"email": "known@example.org"})
        unknown = client.post(url, {"email": "stranger@example.org"})
    assert known.status_code == unknown.status_code == 200
    assert known.content == unknown.content
    assert [m.to for m in mail.outbox] == [["known@example.org"]]
    bad = client.post(url, {"email": "not-an-email\r\nBcc: x@y"})
    assert bad.status_code == 400 and "Enter a valid email address." in bad.content.decode()
    # The limit per address: a fourth request in an hour sends nothing more.
    with on_commit():
        for _ in range(4):
            client.post(url, {"email": "known@example.org"})
    assert len(mail.outbox) == 3


def test_manage_links_expire_and_cannot_be_forged(client, site, settings):
    donor = Donor()
    donor.set_email("d@example.org")
    donor.save()
    token = tokens.manage_token(donor)
    assert client.get(reverse("contributions:manage", args=[token])).status_code == 200
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(reverse("contributions:manage", args=[forged])).status_code == 403
    settings.MASTHEAD_MANAGE_LINK_MAX_AGE = 60
    old = signing.TimestampSigner(salt=tokens.MANAGE_SALT)
    stale = old.sign_object({"d": donor.pk, "i": donor.email_index[:16]})
    original = time.time
    try:
        time.time = lambda: original() + 120  # two minutes later
        response = client.get(reverse("contributions:manage", args=[stale]))
    finally:
        time.time = original
    assert response.status_code == 403
    assert "expired" in response.content.decode()
    # A POST on someone else's plan id does nothing.
    response = client.post(
        reverse("contributions:manage", args=[token]), {"plan": "999999", "action": "cancel"}
    )
    assert response.status_code == 400


def test_sandbox_and_thanks_refuse_unknown_tokens(client, site):
    assert client.get(reverse("contributions:hosted_checkout", args=["nope"])).status_code == 404
    assert client.get(reverse("contributions:thanks", args=["nope"])).status_code == 404
    response = post(client, amount="500")
    sandbox = response["Location"]
    page = client.post(sandbox, {"action": "complete", "email": "not an email"})
    assert page.status_code == 400 and "Enter a valid email address." in page.content.decode()
    page = client.post(sandbox, {"action": "steal", "email": "a@example.org"})
    assert page.status_code == 400
    assert Contribution.objects.get().status == "pending"


def test_oversized_webhook_is_refused(client, site):
    response = client.post(
        reverse("contributions:webhook", args=["sandbox"]),
        b"x" * (1024 * 1024 + 1),
        content_type="application/json",
    )
    assert response.status_code == 413


def test_system_checks_catch_misconfigured_providers(settings):
    from masthead.contributions.checks import check_payment_providers

    settings.MASTHEAD_PAYMENT_PROVIDERS = {
        "stripe": {"BACKEND": "masthead.contributions.providers.stripe.StripeProvider"},
        "paypal": {"BACKEND": "masthead.contributions.providers.paypal.PayPalProvider"},
        "sandbox": {"BACKEND": "masthead.contributions.providers.sandbox.SandboxProvider"},
        "bogus": {"BACKEND": "masthead.nowhere.Provider"},
    }
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = "whsec_configured"
    settings.PAYPAL_CLIENT_ID = ""
    settings.PAYPAL_WEBHOOK_ID = "WH-configured"
    settings.PRODUCTION = True
    ids = sorted(problem.id for problem in check_payment_providers())
    assert ids == [
        "contributions.E002",
        "contributions.E003",
        "contributions.E004",
        "contributions.W001",
    ]


def test_plan_changes_are_validated(client, site, on_commit):
    from masthead.contributions.providers import get_provider

    contribution, _url = giving.start_contribution(
        frequency="monthly", amount=500, currency="EUR", provider_key="sandbox"
    )
    with on_commit():
        deliver(get_provider("sandbox").complete(contribution, "plan@example.org"))
    plan = contribution.plan
    url = reverse("contributions:manage", args=[tokens.manage_token(Donor.objects.get())])
    low = client.post(
        url, {"plan": plan.pk, "action": "change", "amount": "1", "frequency": "monthly"}
    )
    assert low.status_code == 400
    assert "The smallest contribution we can accept is €2." in low.content.decode()
    once = client.post(
        url, {"plan": plan.pk, "action": "change", "amount": "5", "frequency": "once"}
    )
    assert once.status_code == 400
    junk = client.post(url, {"plan": "x", "action": "change"})
    assert junk.status_code == 400
    plan.refresh_from_db()
    assert (plan.amount, plan.frequency, plan.status) == (500, "monthly", "active")


def test_checkout_floods_from_one_address_are_refused(client, site, settings):
    settings.MASTHEAD_CHECKOUTS_PER_IP = 2
    # (distinct gifts: the same form twice would be one submission, one checkout)
    assert post(client, amount="500").status_code == 303
    assert post(client, amount="600").status_code == 303
    third = post(client, amount="700")
    assert third.status_code == 429
    assert "Too many attempts" in third.content.decode()
    assert Contribution.objects.count() == 2
