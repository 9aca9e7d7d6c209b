"""Reach: readers who cannot open the main domain — mirror hosts (domains, CDN, onion,
static, IPFS) and their health, the static export, mirror lists, and email as a way in."""

from django.apps import AppConfig


class ReachConfig(AppConfig):
    name = "masthead.reach"
    label = "reach"
    verbose_name = "Reach"

    def ready(self) -> None:
        # the periodic mirror health check; cached pages rebuilt when a mirror is edited;
        # the static copy kept fresh (when MASTHEAD_STATIC_EXPORT_DIR is set); email as a way
        # in (the inbound-mail receiver)
        from . import inbound, jobs, signals  # noqa: F401
        from .export import tasks  # noqa: F401
