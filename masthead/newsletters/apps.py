"""Newsletters: newsletters, subscriptions with consent, editions, delivery and bounces."""

from django.apps import AppConfig


class NewslettersConfig(AppConfig):
    name = "masthead.newsletters"
    label = "newsletters"
    verbose_name = "Newsletters"

    def ready(self) -> None:
        # periodic jobs, anymail event receivers, the webhook secret checks
        from masthead.core.staff_otp import require_two_factor_for

        from . import checks, jobs, signals  # noqa: F401

        # The Subscribers pages and their CSV export show decrypted addresses: staff who can
        # open them must use two-factor authentication, as for donors.
        require_two_factor_for(
            "newsletters.view_subscription",
            "newsletters.change_subscription",
            "newsletters.delete_subscription",
        )
