"""Newsletters: newsletters, subscriptions with consent, editions, delivery and bounces."""

from django.apps import AppConfig


class NewslettersConfig(AppConfig):
    name = "masthead.newsletters"
    label = "newsletters"
    verbose_name = "Newsletters"

    def ready(self) -> None:
        from . import jobs, signals  # noqa: F401  (periodic jobs, anymail event receivers)
