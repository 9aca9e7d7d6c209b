"""Campaigns: the support banner, the end-of-article appeal and the overlay, with their rules."""

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "masthead.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import counters, signals  # noqa: F401  (registers the flush job and receivers)

        signals.connect_contributions()
