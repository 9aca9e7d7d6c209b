"""Core: the base templates, security headers, page cache, mail outbox and shared helpers."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "masthead.core"
    label = "core"
    verbose_name = "Masthead core"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (page cache invalidation)
