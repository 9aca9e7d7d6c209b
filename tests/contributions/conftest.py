"""Fixtures for contributions: immediate tasks, providers configured per test, helpers."""

from __future__ import annotations

import re

import pytest

SANDBOX = "masthead.contributions.providers.sandbox.SandboxProvider"
WHSEC = "whsec_standin_secret"
WEBHOOK_ID = "WH-ID-standin"  # PayPal's id of our webhook endpoint


@pytest.fixture(autouse=True)
def contributions_settings(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.MASTHEAD_PAYMENT_PROVIDERS = {"sandbox": {"BACKEND": SANDBOX}}
    settings.MASTHEAD_BASE_URL = "http://testserver"
    settings.MASTHEAD_RECEIPT_NEUTRAL = False
    settings.MASTHEAD_STAFF_TWO_FACTOR = True
    return settings


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run on-commit side effects (receipts, signals) inside a test transaction."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


def manage_link_from(body: str) -> str:
    match = re.search(r"https?://[^\s\"<>]+/support/manage/[^\s\"<>]+/", body)
    assert match, body
    return match.group(0)


@pytest.fixture
def stripe_api(settings):
    from .standins import StripeStandIn

    standin = StripeStandIn()
    settings.MASTHEAD_PAYMENT_PROVIDERS = {
        "stripe": {"BACKEND": "masthead.contributions.providers.stripe.StripeProvider"},
        "sandbox": {"BACKEND": SANDBOX},
    }
    settings.STRIPE_SECRET_KEY = standin.secret_key
    settings.STRIPE_WEBHOOK_SECRET = WHSEC
    settings.STRIPE_API_BASE = standin.url
    yield standin
    standin.close()


@pytest.fixture
def paypal_api(settings):
    from .standins import PayPalStandIn

    standin = PayPalStandIn()
    settings.MASTHEAD_PAYMENT_PROVIDERS = {
        "paypal": {"BACKEND": "masthead.contributions.providers.paypal.PayPalProvider"},
        "sandbox": {"BACKEND": SANDBOX},
    }
    settings.PAYPAL_CLIENT_ID = standin.client_id
    settings.PAYPAL_CLIENT_SECRET = standin.secret
    settings.PAYPAL_WEBHOOK_ID = WEBHOOK_ID
    settings.PAYPAL_API_BASE = standin.url
    settings.PAYPAL_PRODUCT_ID = ""
    yield standin
    standin.close()
