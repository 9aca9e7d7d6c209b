"""Newsletters: newsletters, subscriptions with consent, editions, delivery and bounces."""

from django.apps import AppConfig


class NewslettersConfig(AppConfig):
    name = "masthead.newsletters"
    label = "newsletters"
    verbose_name = "Newsletters"

    def ready(self) -> None:
        # periodic jobs, anymail event receivers, the webhook secret checks
        from . import checks, jobs, signals  # noqa: F401
