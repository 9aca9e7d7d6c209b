"""Contributions: one-time and recurring reader contributions, donors, receipts, self-service."""

from django.apps import AppConfig


class ContributionsConfig(AppConfig):
    name = "masthead.contributions"
    label = "contributions"
    verbose_name = "Contributions"
