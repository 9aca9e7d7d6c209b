"""Payment providers, chosen by dotted path in ``settings.MASTHEAD_PAYMENT_PROVIDERS``.

Like Django's email backends: each configured key names a class (a subclass of
:class:`~masthead.contributions.providers.base.PaymentProvider`); :func:`get_provider` builds
it once per process.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .base import PaymentProvider, ProviderError, WebhookError

__all__ = [
    "PaymentProvider",
    "ProviderError",
    "UnknownProvider",
    "WebhookError",
    "enabled_providers",
    "get_provider",
]


class UnknownProvider(LookupError):
    pass


@cache
def get_provider(key: str) -> PaymentProvider:
    config = settings.MASTHEAD_PAYMENT_PROVIDERS.get(key)
    if not config or not config.get("BACKEND"):
        raise UnknownProvider(key)
    cls = import_string(config["BACKEND"])
    options = {k.lower(): v for k, v in config.items() if k != "BACKEND"}
    return cls(key, **options)


def enabled_providers() -> list[PaymentProvider]:
    return [get_provider(key) for key in settings.MASTHEAD_PAYMENT_PROVIDERS]


def _reset(setting, **kwargs):
    if setting.startswith(("MASTHEAD_PAYMENT_PROVIDERS", "STRIPE_", "PAYPAL_")):
        get_provider.cache_clear()


setting_changed.connect(_reset)
