"""Webhook benchmark: Stripe-signed renewal webhooks through gunicorn, and the worker that
applies them. A benchmark, not a test.

    .venv/bin/python bench/webhooks.py                       # 4,000 renewals, 8 senders
    .venv/bin/python bench/webhooks.py --events 1000 --concurrency 1,8 --no-record

It builds a throw-away data folder (SQLite unless --database-url is given), migrates, creates
``--plans`` active monthly Stripe plans with their donors directly in the database, starts
gunicorn on a free loopback port (``--workers 2 --threads 4``, as ``masthead run``) with
Stripe enabled and a known webhook secret, and posts ``invoice.paid`` renewals signed exactly
as Stripe signs them (signed before the clock starts). Three phases per concurrency level:

1. **requests** — the worker is stopped: each request verifies the signature, stores the
   event once and answers. Then every event again: duplicates answered from the unique
   index. Events/s and latency percentiles (p50, p95, p99).
2. **apply** — the backlog the requests stored is applied by the worker's task body
   (``ledger.apply_received_events``, in batches) in a separate process: events/s, each a
   renewal recorded (a contribution, its history row, its receipt task queued).
3. **together** (``--together``, default on) — the task worker (``db_worker``, as ``masthead
   run`` starts it) runs while the senders post a fresh set: request latency with the worker
   competing for the database, and the time until the last event is applied.

At the end it checks every event was stored and applied exactly once. Only talks to
127.0.0.1; no Stripe API call is made. Figures go to stdout and, unless ``--no-record``,
replace the "## Payment webhooks" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_bench"

SETUP = """
from masthead.contributions.models import Donor, RecurringPlan
donors = []
for i in range({plans}):
    donor = Donor(name=f"Reader {i}")
    donor.set_email(f"reader{i}@example.org")
    donors.append(donor)
Donor.objects.bulk_create(donors)
donors = list(Donor.objects.order_by("pk"))
plans = [RecurringPlan(provider="stripe", provider_ref=f"sub_bench_{i}", frequency="monthly",
                       amount=500, currency="USD", status="active", donor=donors[i])
         for i in range({plans})]
RecurringPlan.objects.bulk_create(plans)
print(",".join(str(p.pk) for p in RecurringPlan.objects.filter(provider="stripe")))
"""

APPLY = """
import time
from masthead.contributions.ledger import apply_received_events
started, cpu = time.perf_counter(), time.process_time()
applied = apply_received_events(max_seconds=3600)
print(applied, time.perf_counter() - started, time.process_time() - cpu)
"""

COUNT = """
from django_tasks_db.models import DBTaskResult
from masthead.contributions.models import Contribution, ProviderEvent
print(Contribution.objects.count(), ProviderEvent.objects.count(),
      ProviderEvent.objects.filter(status="received").count(),
      ProviderEvent.objects.filter(status="processed").count(),
      DBTaskResult.objects.filter(task_path__endswith="send_receipt").count(),
      DBTaskResult.objects.filter(task_path__contains="reference_index").count())
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def invoice_event(n: int, plan_id: int) -> bytes:
    now = int(time.time())
    event = {
        "id": f"evt_bench_{n}",
        "object": "event",
        "created": now,
        "type": "invoice.paid",
        "livemode": False,
        "data": {
            "object": {
                "id": f"in_bench_{n}",
                "object": "invoice",
                "billing_reason": "subscription_cycle",
                "currency": "usd",
                "amount_paid": 500,
                "status_transitions": {"paid_at": now},
                "parent": {
                    "subscription_details": {
                        "subscription": f"sub_bench_{plan_id}",
                        "metadata": {"plan_id": str(plan_id)},
                    }
                },
            }
        },
    }
    return json.dumps(event).encode()


def sign(body: bytes, ago: int = 0) -> str:
    """Stripe's signature header; a retry is signed afresh, at its own time (``ago``)."""
    t = int(time.time()) - ago
    digest = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def blast(port: int, requests: list[tuple[bytes, str]], concurrency: int,
          provider: str = "stripe") -> tuple[float, list[float], dict]:
    """Post the signed requests from ``concurrency`` threads, each with one keep-alive
    connection; returns seconds, latencies and the count of each status."""
    queue = list(requests)
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    def sender():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not queue:
                    break
                body, signature = queue.pop()
            started = time.perf_counter()
            conn.request(
                "POST",
                f"/support/webhooks/{provider}/",
                body=body,
                headers={"Content-Type": "application/json", "Stripe-Signature": signature},
            )
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[response.status] = statuses.get(response.status, 0) + 1
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=sender) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, statuses


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def latency_text(latencies: list[float]) -> str:
    return (f"p50 {percentile(latencies, 50) * 1000:.1f} ms, "
            f"p95 {percentile(latencies, 95) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.1f} ms")  # fmt: skip


def shell(manage: list[str], code: str, env: dict) -> list[str]:
    out = subprocess.run([*manage, "shell", "-c", code], env=env, check=True, cwd=ROOT,
                         capture_output=True, text=True).stdout  # fmt: skip
    return out.strip().splitlines()[-1].split()


def wait_for_port(port: int) -> None:
    for _ in range(150):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def record(lines: list[str], command: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text()
    start = text.index("## Payment webhooks")
    end = text.index("\n## ", start + 3)
    load = os.getloadavg()
    section = "\n".join([
        "## Payment webhooks",
        "",
        f"Command: `{command}` (source: `bench/webhooks.py`). Measured "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this machine"
        f" ({platform.machine()}, {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}; load average at the end {load[0]:.1f}). Gunicorn 2 "
        "workers × 4 threads; the load generator (Python threads, keep-alive connections) "
        "runs on the same machine and competes for the CPUs. A request verifies the Stripe "
        "signature, stores the transmission and the event in one transaction and answers; "
        "the worker applies the events in batches (`ledger.apply_received_events`). Goal "
        "(issue 12): ≥ 1,000 requests/s with 8 senders on SQLite, p99 ≤ 50 ms; apply ≥ 500 "
        "events/s.",
        "",
        *lines,
        "",
        "See `docs/contributions.md` (Webhooks) for what a request and the worker do.",
        "",
    ])
    path.write_text(text[:start] + section + text[end + 1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--plans", type=int, default=200)
    parser.add_argument("--concurrency", default="8")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (as masthead run)")
    parser.add_argument("--threads", type=int, default=4, help="threads a worker (as masthead run)")
    parser.add_argument("--no-together", action="store_true",
                        help="skip the phase with the worker running beside the senders")
    parser.add_argument("--no-record", action="store_true")
    options = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="masthead-bench-webhooks-"))
    env = dict(os.environ)
    env.update(
        MASTHEAD_DATA_DIR=str(data),
        MASTHEAD_PAYMENT_PROVIDERS="stripe",
        STRIPE_SECRET_KEY="sk_test_bench",
        STRIPE_WEBHOOK_SECRET=SECRET,
        MASTHEAD_WEBHOOK_TOLERANCE="3600",
        MASTHEAD_PAGE_CACHE="false",
        MASTHEAD_TASKS="db",
        LOG_LEVEL="WARNING",
    )
    env.pop("MASTHEAD_TESTING", None)
    if options.database_url:
        env["DATABASE_URL"] = options.database_url
    database = "PostgreSQL" if options.database_url else "SQLite"
    manage = [sys.executable, "-m", "masthead.cli"]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    plan_ids = [int(x) for x in shell(manage, SETUP.replace("{plans}", str(options.plans)),
                                      env)[0].split(",")]  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "masthead.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(options.workers), "--threads", str(options.threads),
         "--log-level", "warning"],
        env=env, cwd=ROOT,
    )  # fmt: skip
    lines = [
        f"{options.events:,} renewals per phase for {len(plan_ids)} plans, {database}.",
        "",
        "| phase | senders | events/s | latency | statuses |",
        "| --- | --- | --- | --- | --- |",
    ]
    offset = 0
    sent = 0

    def fresh() -> list[tuple[bytes, str]]:
        nonlocal offset, sent
        bodies = [invoice_event(offset + i, plan_ids[(offset + i) % len(plan_ids)])
                  for i in range(options.events)]  # fmt: skip
        offset += options.events
        sent += len(bodies)
        return [(body, sign(body)) for body in bodies]

    def row(phase: str, level: int | str, rate: float, latency: str, statuses) -> None:
        line = f"| {phase} | {level} | {rate:,.0f} | {latency} | {statuses} |"
        lines.append(line)
        print(line, flush=True)

    try:
        wait_for_port(port)
        print(lines[0])
        for level in [int(c) for c in options.concurrency.split(",")]:
            # The ceiling on this machine: the same server, the same lean path and client,
            # a request that does no work (an unknown provider: 404, no database).
            nothing = [(body, sign(body)) for body, _ in
                       [(invoice_event(-1, 0), "")] * options.events]  # fmt: skip
            blast(port, nothing[:400], level, "nobody")  # warm-up: imports, connections
            seconds, latencies, statuses = blast(port, nothing, level, "nobody")
            row("ceiling: lean path, no work (404)", level, len(nothing) / seconds,
                latency_text(latencies), statuses)  # fmt: skip
            requests = fresh()
            retries = [(body, sign(body, ago=60)) for body, _ in requests]
            for label, batch in (("requests: new", requests), ("requests: duplicate", retries)):
                seconds, latencies, statuses = blast(port, batch, level)
                row(label, level, len(batch) / seconds, latency_text(latencies), statuses)
            applied, seconds, cpu = shell(manage, APPLY, env)
            row("apply (worker, batches)", "—", int(applied) / float(seconds),
                f"{float(cpu) / int(applied) * 1000:.2f} ms CPU per event", f"{applied} applied")
        if not options.no_together:
            level = max(int(c) for c in options.concurrency.split(","))
            worker = subprocess.Popen(
                [*manage, "db_worker", "--queue-name", "*", "--no-reload", "--interval", "0.2"],
                env=env, cwd=ROOT,
            )  # fmt: skip
            try:
                time.sleep(3)  # its start-up
                requests = fresh()
                started = time.perf_counter()
                seconds, latencies, statuses = blast(port, requests, level)
                row("together: requests, worker applying", level, len(requests) / seconds,
                    latency_text(latencies), statuses)
                while int(shell(manage, COUNT, env)[2]):
                    time.sleep(0.5)
                total = time.perf_counter() - started
                row("together: last event applied", "—", len(requests) / total,
                    f"{total:.1f} s after the first request", "")
            finally:
                worker.terminate()
                worker.wait(timeout=60)
        contributions, stored, received, processed, receipts, refs = map(
            int, shell(manage, COUNT, env))  # fmt: skip
        check = (
            f"Check: {sent:,} distinct events sent (each twice or more), {stored:,} stored, "
            f"{processed:,} applied, {received} left unapplied; {contributions:,} "
            f"contributions (renewals), {receipts:,} receipt tasks queued, {refs} Wagtail "
            f"reference-index tasks."
        )
        print(check)
        lines += ["", check]
        if stored != sent or processed != sent or contributions != sent:
            print("MISMATCH: events were lost or applied twice", file=sys.stderr)
            return 1
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
    if not options.no_record:
        record(lines, "python bench/webhooks.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
