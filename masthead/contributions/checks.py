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
    if "stripe" in providers and not settings.STRIPE_SECRET_KEY:
        problems.append(
            Error("Stripe is enabled without STRIPE_SECRET_KEY.", id="contributions.E003")
        )
    if "paypal" in providers and not (
        settings.PAYPAL_CLIENT_ID and settings.PAYPAL_CLIENT_SECRET
    ):
        problems.append(
            Error(
                "PayPal is enabled without PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET.",
                id="contributions.E004",
            )
        )
    problems.extend(_webhook_problems(providers))
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


def _webhook_problems(providers) -> list[Error]:
    """A provider whose webhooks cannot be verified takes none (its route answers 404), so
    no payment through it would ever be confirmed: that is a configuration error."""
    from .providers import get_provider

    problems = []
    for key, config in providers.items():
        try:
            import_string(config.get("BACKEND", ""))
        except ImportError:
            continue  # E002 already says so
        missing = get_provider(key).missing_webhook_settings()
        if missing:
            problems.append(
                Error(
                    f"Payment provider {key!r} has no webhook secret: set {', '.join(missing)}. "
                    "Until then its webhook URL is not served (404) and no payment through it "
                    "is ever confirmed.",
                    hint="Copy the signing secret (Stripe) or webhook id (PayPal) from the "
                    "provider's dashboard, where the webhook endpoint is registered.",
                    id="contributions.E005",
                )
            )
    return problems
