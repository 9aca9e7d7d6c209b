"""The ``masthead`` command.

``masthead run`` is the one-box server: it prepares the database (migrations, site, demo
content, an admin account), then runs gunicorn, the database task worker and the scheduler
together until interrupted. Every other sub-command is a Django management command, so
``masthead import-articles FILE`` is ``manage.py import_articles FILE``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def _manage(*args: str) -> list[str]:
    return [sys.executable, "-m", "masthead.cli", *args]


def run(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="masthead run", description=run.__doc__)
    parser.add_argument("--bind", default=os.environ.get("MASTHEAD_BIND", "127.0.0.1:8000"))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    parser.add_argument("--no-demo", action="store_true", help="Do not load demo content.")
    parser.add_argument("--no-worker", action="store_true", help="Do not start the task worker.")
    options = parser.parse_args(argv)

    # Links in emails and feeds point at the address being served unless configured.
    os.environ.setdefault("MASTHEAD_BASE_URL", f"http://{options.bind}")
    if not options.no_demo:
        # The demo also offers a bank-transfer pledge (example account details, no money).
        os.environ.setdefault("MASTHEAD_PAYMENT_PROVIDERS", "sandbox,banktransfer")
    setup = ["setup"] if options.no_demo else ["setup", "--demo"]
    subprocess.run(_manage(*setup), check=True)
    children: list[subprocess.Popen] = []
    if not options.no_worker and os.environ.get("MASTHEAD_TASKS", "db") == "db":
        children.append(subprocess.Popen(_manage("db_worker", "--queue-name", "*", "--no-reload")))
    children.append(subprocess.Popen(_manage("scheduler")))
    web = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "masthead.wsgi",
            "--bind", options.bind,
            "--workers", str(options.workers),
            "--threads", "4",
            "--access-logfile", "-",
            # access-log lines without the link tokens (confirm, unsubscribe, manage, checkout)
            "--logger-class", "masthead.core.logredact.GunicornLogger",
            "--graceful-timeout", "10",
        ]
    )
    children.append(web)
    print(f"Masthead is serving on http://{options.bind}/ (Ctrl+C to stop)", flush=True)

    def stop(*_):
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "masthead.settings")
    if argv and argv[0] == "run":
        return run(argv[1:])
    if argv and not argv[0].startswith("-"):
        argv[0] = argv[0].replace("-", "_")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["masthead", *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main())
