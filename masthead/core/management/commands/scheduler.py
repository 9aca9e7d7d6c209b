"""``masthead scheduler``: run the periodic jobs (scheduled publishing, sends, reconciliation)."""

import signal
import time

from django.core.management.base import BaseCommand

from masthead.core.scheduler import JOBS, run_due


class Command(BaseCommand):
    help = "Run periodic jobs until stopped (or once with --once)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run due jobs once and exit.")
        parser.add_argument("--tick", type=float, default=5.0, help="Seconds between checks.")

    def handle(self, *args, once=False, tick=5.0, **options):
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"Scheduler: {len(JOBS)} jobs: {', '.join(sorted(JOBS))}")
        while not stopping:
            run_due()
            if once:
                break
            time.sleep(tick)
