"""Core: the base templates, security headers, page cache, mail outbox and shared helpers."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "masthead.core"
    label = "core"
    verbose_name = "Masthead core"

    def ready(self) -> None:
        from django.core.signals import request_finished

        from . import signals  # noqa: F401  (page cache invalidation)
        from .middleware import reset_language

        request_finished.connect(reset_language, dispatch_uid="masthead.core.reset_language")
