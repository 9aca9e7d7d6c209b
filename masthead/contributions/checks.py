"""System checks: payment providers configured sensibly for where the site runs."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.utils.module_loading import import_string


@register("masthead")
def check_payment_providers(app_configs=None, **kwargs):
    problems = []
    providers = settings.MASTHEAD_PAYMENT_PROVIDERS
    if not providers:
        problems.append(Error("No payment provider is enabled.", id="contributions.E001"))
    for key, config in providers.items():
        try:
            import_string(config.get("BACKEND", ""))
        except ImportError:
            problems.append(
                Error(
                    f"Payment provider {key!r} has no importable BACKEND.", id="contributions.E002"
                )
            )
    if "stripe" in providers and not (
        settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET
    ):
        problems.append(
            Error(
                "Stripe is enabled without STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET.",
                id="contributions.E003",
            )
        )
    if "paypal" in providers and not (
        settings.PAYPAL_CLIENT_ID and settings.PAYPAL_CLIENT_SECRET and settings.PAYPAL_WEBHOOK_ID
    ):
        problems.append(
            Error(
                "PayPal is enabled without PAYPAL_CLIENT_ID, PAYPAL_CLIENT_SECRET and "
                "PAYPAL_WEBHOOK_ID.",
                id="contributions.E004",
            )
        )
    if settings.PRODUCTION and "sandbox" in providers and len(providers) > 1:
        # A sandbox-only production site is a demo (every page says "no real money"); the
        # sandbox beside real providers would mix pretend gifts into real revenue.
        problems.append(
            Warning(
                "The sandbox payment provider is enabled beside real ones in production: "
                "anyone can 'pay' without money. Remove it from MASTHEAD_PAYMENT_PROVIDERS.",
                id="contributions.W001",
            )
        )
    return problems
