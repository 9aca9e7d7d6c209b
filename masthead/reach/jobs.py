"""Periodic reach jobs, run by ``masthead scheduler`` (see masthead.core.scheduler)."""

from django.conf import settings

from masthead.core.scheduler import every

from .health import check_mirrors


@every(settings.MASTHEAD_MIRROR_CHECK_SECONDS, name="reach.check_mirrors")
def check_mirror_health() -> None:
    """Check every active mirror from the server and record status and response time."""
    check_mirrors()
