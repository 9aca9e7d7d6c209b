"""Campaigns: the support banner, the end-of-article appeal and the overlay, with their rules."""

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "masthead.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"
