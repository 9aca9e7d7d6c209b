"""Contributions: one-time and recurring reader contributions, donors, receipts, self-service."""

from django.apps import AppConfig


class ContributionsConfig(AppConfig):
    name = "masthead.contributions"
    label = "contributions"
    verbose_name = "Contributions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from masthead.core.signals import invalidate_on_save
        from masthead.core.staff_otp import require_two_factor_for

        from . import checks, paybylink, tasks  # noqa: F401  (checks; the scheduled jobs)
        from .models import AmountPreset

        # The give page (a cached reader page) shows the presets.
        invalidate_on_save(AmountPreset)
        # Staff who can open donors' details (a provider event's payload names the donor too)
        # must use two-factor authentication in the admin.
        require_two_factor_for(
            "contributions.view_contribution",
            "contributions.view_recurringplan",
            "contributions.view_donor",
            "contributions.view_providerevent",
        )
