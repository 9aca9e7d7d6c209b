"""Periodic jobs: a tiny registry the ``scheduler`` command runs.

An app registers a job in its ``AppConfig.ready()`` with ``@every(seconds)``; a job should be
quick (usually it enqueues a task for the worker). Running several schedulers is safe: each
job run takes a lock for its interval in the state store (:mod:`masthead.core.state`, never
evicted), so a job runs once per interval across them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import close_old_connections

from .state import state_store

log = logging.getLogger(__name__)


@dataclass
class Job:
    name: str
    seconds: int
    func: Callable[[], object]
    next_run: float = 0.0


JOBS: dict[str, Job] = {}


def every(seconds: int, name: str | None = None):
    def register(func):
        job_name = name or f"{func.__module__}.{func.__qualname__}"
        JOBS[job_name] = Job(job_name, seconds, func)
        return func

    return register


def run_due(now: float | None = None) -> list[str]:
    """Run each job whose time has come; returns the names of those that ran here."""
    now = time.time() if now is None else now
    ran = []
    for job in JOBS.values():
        if job.next_run > now:
            continue
        job.next_run = now + job.seconds
        # One run per interval across all schedulers sharing the state store.
        slot = int(now // job.seconds)
        if not state_store().add(f"scheduler:{job.name}:{slot}", 1, timeout=job.seconds * 2):
            continue
        close_old_connections()
        try:
            job.func()
            ran.append(job.name)
        except Exception:
            log.exception("scheduled job %s failed", job.name)
    return ran


@every(60, name="wagtail.publish_scheduled")
def publish_scheduled() -> None:
    """Publish and unpublish pages whose scheduled time has come."""
    from django.core.management import call_command

    call_command("publish_scheduled", verbosity=0)
