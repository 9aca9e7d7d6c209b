"""System checks: payment providers configured sensibly for where the site runs, and the
money settings (currencies, minor units, minimums, presets) usable as they are."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
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
    pretend = _pretend_providers(providers)
    if settings.PRODUCTION and pretend and len(pretend) < len(providers):
        # A sandbox-only production site is a demo (every page says "no real money"); the
        # sandbox beside real providers would mix pretend gifts into real revenue.
        problems.append(
            Warning(
                f"A payment provider that moves no money ({', '.join(pretend)}) is enabled "
                "beside real ones in production: anyone can 'pay' without money. Remove it "
                "from MASTHEAD_PAYMENT_PROVIDERS.",
                id="contributions.W001",
            )
        )
    return problems


def _pretend_providers(providers) -> list[str]:
    """The enabled providers that move no real money (the sandbox), by their capability."""
    from .providers import UnknownProvider, get_provider

    pretend = []
    for key in providers:
        try:
            if not get_provider(key).moves_real_money:
                pretend.append(key)
        except (UnknownProvider, ImportError, TypeError, ValueError):
            continue  # reported by the checks above
    return pretend


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


@register("masthead")
def check_giving_options(app_configs=None, **kwargs):
    """Currencies, minor units, minimums and the default currency (``contributions.E010`` to
    ``E016``): the give page, the give form and the appeal read them from
    :func:`masthead.contributions.options.money_config`, which refuses to guess."""
    from .options import config_problems

    return [
        Error(text, hint=_MONEY_HINT, id=check_id) for check_id, text in config_problems()
    ]


_MONEY_HINT = (
    "Set MASTHEAD_CURRENCIES (ISO codes), MASTHEAD_DEFAULT_CURRENCY (one of them) and "
    "MASTHEAD_MINIMUM_AMOUNTS (a minimum in minor units for each, e.g. USD:200,JPY:300); "
    "see docs/contributions.md."
)


@register("masthead", Tags.database)
def check_preset_amounts(app_configs=None, databases=None, **kwargs):
    """Preset amounts a reader would be offered but the checkout refuses (``E017``): the
    editors' rows, else the built-in defaults in the currency's minor units. Needs the
    database, so it runs with ``check --database default`` and before ``migrate``."""
    from django.db import DatabaseError

    from .options import config_problems, configured_presets, money_config, preset_rows

    if not databases or config_problems():
        return []  # E010–E016 already say what is wrong
    config = money_config()
    try:
        rows = preset_rows(config.codes)
    except DatabaseError:
        return []  # not migrated yet
    problems = []
    for currency in config.currencies:
        for frequency, (amounts, _suggested) in configured_presets(currency, rows).items():
            outside = [a for a in amounts if not currency.accepts(a)]
            if outside:
                own = (currency.code, frequency) in rows
                problems.append(
                    Error(
                        f"{'Preset amounts' if own else 'The built-in preset amounts'} for "
                        f"{frequency} gifts in {currency.code} "
                        f"({', '.join(currency.format(a) for a in outside)}) are outside "
                        f"{currency.format(currency.minimum)}–"
                        f"{currency.format(currency.maximum)}: readers would not be offered "
                        "them.",
                        hint="Edit them under Giving → Preset amounts in the admin, or change "
                        "MASTHEAD_MINIMUM_AMOUNTS / MASTHEAD_MAXIMUM_AMOUNT.",
                        id="contributions.E017",
                    )
                )
    return problems
