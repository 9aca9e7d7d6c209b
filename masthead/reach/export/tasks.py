"""Keeping a static copy fresh: when ``MASTHEAD_STATIC_EXPORT_DIR`` is set, the scheduler
enqueues an incremental export (which does nothing when nothing was published)."""

from __future__ import annotations

from django.conf import settings
from django_tasks import task

from masthead.core.scheduler import every

from .exporter import export_static


@task(queue_name="default")
def export_static_copy() -> dict:
    report = export_static(
        settings.MASTHEAD_STATIC_EXPORT_DIR,
        base_url=settings.MASTHEAD_STATIC_EXPORT_BASE_URL or None,
        incremental=True,
    )
    return {
        "written": len(report.written),
        "removed": len(report.removed),
        "missing": report.missing[:20],
        "seconds": round(report.seconds, 1),
    }


@every(settings.MASTHEAD_STATIC_EXPORT_SECONDS, name="reach.static_export")
def keep_static_copy() -> None:
    if settings.MASTHEAD_STATIC_EXPORT_DIR:
        export_static_copy.enqueue()
