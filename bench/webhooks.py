"""Webhook benchmark: Stripe-signed renewal webhooks through gunicorn, then the same again
(duplicates). A benchmark, not a test.

    .venv/bin/python bench/webhooks.py                       # 2,000 renewals, 8 senders
    .venv/bin/python bench/webhooks.py --events 500 --concurrency 1,8

It builds a throw-away data folder (SQLite unless --database-url is given), migrates, creates
``--plans`` active monthly Stripe plans directly in the database, starts gunicorn on a free
loopback port (``--workers 2 --threads 4``, as ``masthead run``) with Stripe enabled and a
known webhook secret, and posts ``invoice.paid`` renewals signed exactly as Stripe signs them
(each one verified, stored once, applied: a new contribution and a queued receipt). Then it
posts every event again: the duplicates are answered from the event table. Prints events/s
and latency percentiles per concurrency. Only talks to 127.0.0.1; no Stripe API call is made.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
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
from masthead.contributions.models import RecurringPlan
plans = [RecurringPlan(provider="stripe", provider_ref=f"sub_bench_{i}", frequency="monthly",
                       amount=500, currency="USD", status="active") for i in range({plans})]
RecurringPlan.objects.bulk_create(plans)
print(",".join(str(p.pk) for p in RecurringPlan.objects.filter(provider="stripe")))
"""

COUNT = """
from masthead.contributions.models import Contribution, ProviderEvent
print(Contribution.objects.count(), ProviderEvent.objects.count())
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


def sign(body: bytes) -> str:
    t = int(time.time())
    digest = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def blast(port: int, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], dict]:
    queue = list(enumerate(bodies))
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    def sender():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not queue:
                    break
                _, body = queue.pop()
            started = time.perf_counter()
            conn.request(
                "POST",
                "/support/webhooks/stripe/",
                body=body,
                headers={"Content-Type": "application/json", "Stripe-Signature": sign(body)},
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--plans", type=int, default=200)
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--database-url", default="")
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
        LOG_LEVEL="WARNING",
    )
    env.pop("MASTHEAD_TESTING", None)
    if options.database_url:
        env["DATABASE_URL"] = options.database_url
    manage = [sys.executable, "-m", "masthead.cli"]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    out = (
        subprocess.run(
            [*manage, "shell", "-c", SETUP.replace("{plans}", str(options.plans))],
            env=env,
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    plan_ids = [int(x) for x in out.split(",")]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "masthead.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "4", "--log-level", "warning"],
        env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        print(f"{options.events} renewals for {len(plan_ids)} plans; database: "
              f"{options.database_url or 'SQLite'}")  # fmt: skip
        offset = 0
        for level in [int(c) for c in options.concurrency.split(",")]:
            bodies = [
                invoice_event(offset + i, plan_ids[(offset + i) % len(plan_ids)])
                for i in range(options.events)
            ]
            offset += options.events
            for label, batch in (("new", bodies), ("duplicate", bodies)):
                seconds, latencies, statuses = blast(port, batch, level)
                print(
                    f"  {label:9} x{level:<2}: {len(batch) / seconds:7.1f} events/s  "
                    f"p50 {percentile(latencies, 50) * 1000:6.1f} ms  "
                    f"p95 {percentile(latencies, 95) * 1000:6.1f} ms  statuses {statuses}"
                )
        counts = subprocess.run(
            [*manage, "shell", "-c", COUNT], env=env, check=True, cwd=ROOT,
            capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1].split()  # fmt: skip
        print(f"  contributions {counts[0]}, events stored {counts[1]} (each exactly once)")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
