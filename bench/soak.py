"""Soak benchmark: everything at once against a real server, then exact counts. Not a test.

    .venv/bin/python bench/soak.py                        # 60 s on SQLite (the one-box defaults)
    .venv/bin/python bench/soak.py --db postgres          # PostgreSQL + Redis (cache and RQ)
    .venv/bin/python bench/soak.py --seconds 20 --recipients 2000      # a quick look

In a throw-away data folder (SQLite) or a fresh PostgreSQL database (created and dropped here)
it runs ``masthead setup --demo``, adds a newsletter with ``--recipients`` confirmed
subscribers (bulk-created, addresses encrypted as in production) and an edition of four
articles. Then it starts what ``masthead run`` starts — gunicorn (2 workers x 4 threads,
access log), the task worker (``db_worker``, or ``rqworker`` with ``--tasks rq``) and the
scheduler — plus an SMTP sink (aiosmtpd, in its own process, counting what arrives per
recipient) and a local stand-in of Stripe's API (``tests/contributions/standins.py``) that the
real Stripe SDK talks to. For ``--seconds``, all at once:

- readers on cached pages (a fixed set of home, section and article URLs), and on uncached
  ones (the same pages with a distinct query string each time: every one is a page-cache miss);
- an editor republishing an article every ``--publish-every`` seconds (each publication
  empties the page cache, so the cached readers miss once more);
- newsletter sign-ups, each for a distinct address (each sends a confirmation email);
- campaign counter events (``POST /campaigns/events/``, batches of 1-5 events);
- donors: the give form (Stripe, once or monthly: a checkout session at the stand-in), the
  payment at the stand-in, and its Stripe-signed webhooks posted to ``/support/webhooks/stripe/``
  (plus one renewal for each monthly plan);
- the newsletter send, started after 3 s with ``masthead send-edition ID --enqueue``.

Afterwards it waits for the send to finish, stops the scheduler, runs the counter flush job
once, and checks: no 5xx and no connection errors; no request refused; campaign events counted
in the database = events accepted (per variant and kind); newsletter messages at the sink =
sent in the ledger = recipients, each address once; confirmation emails at the sink = sign-ups
accepted (= consent records); provider events stored = webhooks sent. Exits 1 if any check
fails. The load generator is Python threads with keep-alive ``http.client`` connections to
127.0.0.1 only, on the same machine as the server (so the figures are floors).

Rate limits are raised for the run through the environment (all the load comes from one
address); the values are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.contributions.standins import StripeStandIn, stripe_signature  # noqa: E402

WEBHOOK_SECRET = "whsec_soak"
RATE_LIMITS = {
    "MASTHEAD_NEWSLETTER_SIGNUPS_PER_IP": "1000000",
    "MASTHEAD_CAMPAIGNS_EVENTS_PER_HOUR": "100000000",
    "MASTHEAD_CHECKOUTS_PER_IP": "1000000",
}
EXPECTED = {
    "read cached": {200},
    "read uncached": {200},
    "sign-up": {200},
    "campaign events": {204},
    "checkout": {303},
    "webhook": {200},
}

# --- Child-process scripts (Django is only ever imported in children) -----------------------

PREPARE = """
import django, json, time
django.setup()
from django.db import transaction
from masthead.campaigns.models import Variant, VariantCounter
from masthead.core.crypto import email_index
from masthead.publishing.models import ArticlePage, SectionPage, HomePage
from masthead.newsletters.models import (Edition, EditionArticle, Newsletter, Subscriber,
    Subscription)
N = {recipients}
newsletter = Newsletter.objects.create(name="The Soak Weekly", slug="soak-weekly",
    language="en", is_default=False, sort_order=99)
started = time.monotonic()
for start in range(0, N, 5000):
    with transaction.atomic():
        people = Subscriber.objects.bulk_create(
            Subscriber(email=f"soak-reader-{{i}}@example.org",
                       email_index=email_index(f"soak-reader-{{i}}@example.org"),
                       name=f"Reader {{i}}" if i % 3 == 0 else "")
            for i in range(start, min(N, start + 5000)))
        Subscription.objects.bulk_create(
            Subscription(subscriber=p, newsletter=newsletter, status="confirmed")
            for p in people)
edition = Edition.objects.create(newsletter=newsletter, subject="The soak edition",
    preheader="Everything at once", intro="<p>Good morning. Here is the week.</p>")
articles = list(ArticlePage.objects.live().filter(locale__language_code="en")
                .order_by("-published_at"))
for order, article in enumerate(articles[:4]):
    EditionArticle.objects.create(edition=edition, article=article, sort_order=order,
                                  full_text=order < 2)
pages = ([p.url for p in HomePage.objects.live()] + [p.url for p in SectionPage.objects.live()]
         + [p.url for p in ArticlePage.objects.live()])
variants = [[v.campaign_id, v.id] for v in Variant.objects.all()]
counters = {{str(c.variant_id): [c.impressions, c.clicks, c.dismissals]
            for c in VariantCounter.objects.all()}}
print("JSON " + json.dumps({{"edition": edition.pk, "pages": pages, "variants": variants,
    "counters": counters, "republish": articles[0].pk,
    "subscribers_seconds": round(time.monotonic() - started, 1)}}))
"""

PUBLISHER = """
import django, sys, time
django.setup()
from masthead.publishing.models import ArticlePage
deadline, started = {deadline}, time.time()
published = 0
while True:
    time.sleep(max(0, started + {every} * (published + 1) - time.time()))
    if time.time() >= deadline:
        break
    page = ArticlePage.objects.get(pk={page}).specific
    page.standfirst = (page.standfirst or "").rstrip(" .") + "."
    page.save_revision().publish()
    published += 1
print("PUBLISHED", published, flush=True)
"""

FINAL = """
import django, json, time
django.setup()
from django.db.models import Count
from masthead.campaigns.counters import flush_counters
from masthead.campaigns.models import VariantCounter
from masthead.contributions.models import Contribution, ProviderEvent
from masthead.newsletters.delivery import delivery_progress
from masthead.newsletters.models import ConsentRecord, Delivery
deadline = time.time() + {drain}
while True:
    delivery = Delivery.objects.filter(edition_id={edition}).first()
    if delivery is not None and delivery.finished_at is not None:
        break
    if time.time() > deadline:
        break
    time.sleep(1)
progress = delivery_progress(delivery) if delivery else None
flushed = flush_counters()
counters = {{str(c.variant_id): [c.impressions, c.clicks, c.dismissals]
            for c in VariantCounter.objects.all()}}
print("JSON " + json.dumps({{
    "delivery": progress,
    "flushed": flushed,
    "counters": counters,
    "provider_events": ProviderEvent.objects.filter(provider="stripe").count(),
    "provider_event_status": dict(ProviderEvent.objects.filter(provider="stripe")
        .values_list("status").annotate(n=Count("id")).values_list("status", "n")),
    "contributions": dict(Contribution.objects.filter(provider="stripe")
        .values_list("status").annotate(n=Count("id")).values_list("status", "n")),
    "consents": ConsentRecord.objects.filter(source="soak", action="requested").count(),
}}))
"""

SINK = """
import json, sys, threading
from aiosmtpd.controller import Controller

KINDS = ("newsletter", "signup", "donor", "other", "newsletter_repeats", "signup_repeats")


class Handler:
    def __init__(self):
        self.counts = dict.fromkeys(KINDS, 0)
        self.seen = {"newsletter": set(), "signup": set()}
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                if rcpt.startswith("soak-reader-"):
                    kind = "newsletter"
                elif rcpt.startswith("soak-signup-"):
                    kind = "signup"
                elif rcpt.startswith("soak-donor-"):
                    kind = "donor"
                else:
                    kind = "other"
                self.counts[kind] += 1
                if kind in self.seen:
                    if rcpt in self.seen[kind]:
                        self.counts[kind + "_repeats"] += 1
                    self.seen[kind].add(rcpt)
        return "250 2.0.0 Ok: queued"


handler = Handler()
controller = Controller(handler, hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("READY", flush=True)
for _line in sys.stdin:
    with handler.lock:
        print(json.dumps(handler.counts), flush=True)
controller.stop()
"""


# --- Helpers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machine() -> str:
    model, ram = "unknown CPU", "unknown RAM"
    with contextlib.suppress(OSError, AttributeError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        ram = f"{kb / 1024 / 1024:.1f} GiB RAM"
    return (
        f"{os.cpu_count()} CPUs (nproc), {model}, {ram}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def django_json(script: str, env: dict, timeout: float = 900) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"child failed:\n{out.stderr[-4000:]}")
    line = next(line for line in out.stdout.splitlines() if line.startswith("JSON "))
    return json.loads(line[5:])


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


class Stats:
    """Latencies and statuses per kind of request, shared by the load threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.errors: dict[str, int] = Counter()
        self.error_samples: list[str] = []
        self.cache: Counter = Counter()

    def add(self, kind: str, status: int | None, ms: float, note: str = "") -> None:
        with self.lock:
            if status is None or status >= 500:
                self.errors[kind] += 1
                if len(self.error_samples) < 10:
                    self.error_samples.append(f"{kind}: {status or note}")
            if status is not None:
                self.statuses[kind][status] += 1
                self.latencies[kind].append(ms)


class Client:
    """One keep-alive connection to the server; reconnects after an error."""

    def __init__(self, port: int, stats: Stats):
        self.port, self.stats = port, stats
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(
        self,
        kind: str,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict | None = None,
    ) -> tuple[int | None, http.client.HTTPResponse | None, bytes]:
        started = time.perf_counter()
        try:
            self.conn.request(
                method, path, body=body, headers={"Accept-Encoding": "identity", **(headers or {})}
            )
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.stats.add(kind, None, 0.0, f"{type(exc).__name__}: {exc}")
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            return None, None, b""
        self.stats.add(kind, response.status, (time.perf_counter() - started) * 1000)
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        return response.status, response, data

    def close(self) -> None:
        self.conn.close()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# --- The run -------------------------------------------------------------------------------------


class Soak:
    def __init__(self, options):
        self.options = options
        self.stats = Stats()
        self.numbers = itertools.count(1)
        self.accepted_events: Counter = Counter()
        self.signups_accepted = 0
        self.webhooks_sent = 0
        self.webhook_ids: set[str] = set()
        self.donations = Counter()
        self.lock = threading.Lock()
        self.children: list[subprocess.Popen] = []
        self.cleanup: list = []

    # --- set-up ---

    def environment(self) -> dict:
        o = self.options
        self.data_dir = Path(tempfile.mkdtemp(prefix="masthead-soak-"))
        if not o.keep:
            self.cleanup.append(lambda: shutil.rmtree(self.data_dir, ignore_errors=True))
        env = {
            key: value
            for key, value in os.environ.items()
            if key
            not in {
                "DATABASE_URL",
                "CACHE_URL",
                "REDIS_URL",
                "MASTHEAD_TESTING",
                "MASTHEAD_DEBUG",
                "DJANGO_ALLOW_ASYNC_UNSAFE",
                "MASTHEAD_TASKS",
                "MASTHEAD_STATE_URL",
            }
        }
        self.port, self.smtp_port = free_port(), free_port()
        self.standin = StripeStandIn()
        self.standin.webhook_secret = WEBHOOK_SECRET
        self.cleanup.append(self.standin.close)
        env.update(
            DJANGO_SETTINGS_MODULE="masthead.settings",
            MASTHEAD_DATA_DIR=str(self.data_dir),
            MASTHEAD_BASE_URL=f"http://127.0.0.1:{self.port}",
            PYTHONUNBUFFERED="1",
            LOG_LEVEL="WARNING",
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(self.smtp_port),
            MASTHEAD_NEWSLETTER_RATE="0",
            MASTHEAD_PAYMENT_PROVIDERS="sandbox,stripe",
            STRIPE_SECRET_KEY=self.standin.secret_key,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            STRIPE_API_BASE=self.standin.url,
            **RATE_LIMITS,
        )
        self.database = "SQLite, diskcache (cache and state store in the data folder)"
        self.tasks = "db"
        if o.db == "postgres":
            name = f"masthead_soak_{os.getpid()}"
            psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c"]
            subprocess.run([*psql, f"CREATE DATABASE {name}"], check=True)
            self.cleanup.append(
                lambda: subprocess.run(
                    [*psql, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False
                )
            )
            redis_db = self.free_redis_db()
            env.update(
                DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{name}",
                REDIS_URL=f"redis://127.0.0.1:6379/{redis_db}",
            )
            self.cleanup.append(
                lambda: subprocess.run(
                    ["redis-cli", "-n", str(redis_db), "FLUSHDB"], check=False, capture_output=True
                )
            )
            self.tasks = o.tasks or "rq"
            self.database = (
                f"PostgreSQL {self.pg_version()}, Redis {redis_db} (cache and state store)"
            )
        else:
            self.tasks = o.tasks or "db"
        env["MASTHEAD_TASKS"] = self.tasks
        self.env = env
        return env

    @staticmethod
    def pg_version() -> str:
        out = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "SHOW server_version"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip().split(" ")[0] or "?"

    @staticmethod
    def free_redis_db() -> int:
        """An empty Redis database number (ours for the run; flushed at the end)."""
        for number in range(15, 0, -1):
            out = subprocess.run(
                ["redis-cli", "-n", str(number), "DBSIZE"],
                capture_output=True,
                text=True,
                check=True,
            )
            if out.stdout.strip() == "0":
                return number
        raise SystemExit("no empty Redis database number (1-15) to use")

    def prepare(self) -> None:
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "masthead.cli", "setup", "--demo", "--no-admin"],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        self.setup = django_json(PREPARE.format(recipients=self.options.recipients), self.env)
        print(
            f"  set-up: {time.monotonic() - started:.0f} s (demo site, "
            f"{self.options.recipients:,} subscribers in {self.setup['subscribers_seconds']} s)",
            flush=True,
        )
        # The set-up queued ~400 tasks (search and reference index of the demo pages): run them
        # now, so that the send does not wait behind them (a one-off of a fresh install).
        started = time.monotonic()
        manage = [sys.executable, "-m", "masthead.cli"]
        if self.tasks == "rq":
            burst = [*manage, "rqworker", "--burst", "--job-class", "django_tasks_rq.Job"]
            burst.append("default")
        else:
            burst = [*manage, "db_worker", "--batch", "--queue-name", "*", "--no-reload"]
            burst += ["--no-startup-delay"]
        subprocess.run(burst, env=self.env, cwd=ROOT, check=True, capture_output=True)
        print(f"  set-up tasks drained in {time.monotonic() - started:.0f} s", flush=True)
        if self.options.keep:
            print(f"  data folder (kept): {self.data_dir}")

    def start_sink(self) -> None:
        # Before the set-up: the demo sends an edition of its own, and waits for the server.
        self.sink = subprocess.Popen(
            [sys.executable, "-c", SINK, str(self.smtp_port)],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.children.append(self.sink)
        if self.sink.stdout.readline().strip() != "READY":
            raise SystemExit("the SMTP sink did not start")

    def start_services(self) -> None:
        env, logs = self.env, self.data_dir
        manage = [sys.executable, "-m", "masthead.cli"]
        if self.tasks == "rq":
            worker = [*manage, "rqworker", "--job-class", "django_tasks_rq.Job", "default"]
        else:
            worker = [*manage, "db_worker", "--queue-name", "*", "--no-reload"]
        for _ in range(self.options.task_workers):
            self.children.append(
                subprocess.Popen(
                    worker,
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=open(logs / "worker.log", "ab"),
                )
            )  # noqa: SIM115
        self.scheduler = subprocess.Popen(
            [*manage, "scheduler"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(logs / "scheduler.log", "ab"),
        )  # noqa: SIM115
        self.children.append(self.scheduler)
        self.web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "masthead.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.options.web_workers),
                "--threads",
                str(self.options.threads),
                "--access-logfile",
                str(logs / "access.log"),
                "--graceful-timeout",
                "10",
                "--log-level",
                "warning",
                "--error-logfile",
                str(logs / "gunicorn.log"),
            ],
            env=env,
            cwd=ROOT,
        )
        self.children.append(self.web)
        self.standin.webhook_url = f"http://127.0.0.1:{self.port}/support/webhooks/stripe/"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise SystemExit("gunicorn exited")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            time.sleep(0.3)
        else:
            raise SystemExit("gunicorn did not answer /healthz")
        # Warm the cached pages once (not counted).
        client = Client(self.port, Stats())
        for path in self.setup["pages"]:
            client.request("warm", "GET", path)
        client.close()

    def sink_counts(self) -> dict:
        self.sink.stdin.write("count\n")
        self.sink.stdin.flush()
        return json.loads(self.sink.stdout.readline())

    # --- load ---

    def read_cached(self, client: Client, rng: random.Random) -> None:
        status, response, _ = client.request("read cached", "GET", rng.choice(self.setup["pages"]))
        if response is not None:
            with self.stats.lock:
                self.stats.cache[response.getheader("X-Masthead-Cache") or "none"] += 1

    def read_uncached(self, client: Client, rng: random.Random) -> None:
        path = rng.choice(self.setup["pages"])
        client.request("read uncached", "GET", f"{path}?soak={next(self.numbers)}")

    def sign_up(self, client: Client, rng: random.Random) -> None:
        email = f"soak-signup-{next(self.numbers)}@example.net"
        body = urlencode({"email": email, "source": "soak"}).encode()
        status, _, _ = client.request("sign-up", "POST", "/newsletter/subscribe/", body, FORM)
        if status == 200:
            with self.lock:
                self.signups_accepted += 1

    def campaign_events(self, client: Client, rng: random.Random) -> None:
        batch = []
        for _ in range(rng.randint(1, 5)):
            campaign, variant = rng.choice(self.setup["variants"])
            batch.append(
                {
                    "campaign": campaign,
                    "variant": variant,
                    "event": rng.choice(("impression", "impression", "click", "dismiss")),
                }
            )
        status, _, _ = client.request(
            "campaign events",
            "POST",
            "/campaigns/events/",
            json.dumps({"events": batch}).encode(),
            {"Content-Type": "application/json"},
        )
        if status == 204:
            with self.lock:
                for item in batch:
                    self.accepted_events[(item["variant"], item["event"])] += 1

    def donate(self, client: Client, rng: random.Random) -> None:
        n = next(self.numbers)
        frequency = "monthly" if n % 2 else "once"
        # Each donor is another reader: a name of their own and the one-time submission key
        # the give page's script adds (identical posts are one checkout by design).
        body = urlencode(
            {
                "frequency": frequency,
                "amount": "500",
                "currency": "USD",
                "provider": "stripe",
                "source": "soak",
                "name": f"Soak donor {n}",
                "submission": secrets.token_urlsafe(16),
            }
        ).encode()
        status, response, _ = client.request("checkout", "POST", "/support/checkout/", body, FORM)
        if status != 303:
            return
        session_id = urlsplit(response.getheader("Location", "")).path.rsplit("/", 1)[-1]
        with self.standin.lock:
            events = self.standin.pay(session_id, f"soak-donor-{n}@example.com")
            session = self.standin.sessions[session_id]
            if session["subscription"]:
                events.append(self.standin.renewal(session["subscription"], period=2))
        with self.lock:
            self.donations[frequency] += 1
        for event in events:
            payload = json.dumps(event).encode()
            status, _, _ = client.request(
                "webhook",
                "POST",
                "/support/webhooks/stripe/",
                payload,
                {
                    "Content-Type": "application/json",
                    "Stripe-Signature": stripe_signature(payload, WEBHOOK_SECRET),
                },
            )
            if status is not None and status < 300:
                with self.lock:
                    self.webhooks_sent += 1
                    self.webhook_ids.add(event["id"])

    def worker(self, action, seed: int) -> None:
        rng = random.Random(seed)
        client = Client(self.port, self.stats)
        try:
            while time.monotonic() < self.deadline:
                action(client, rng)
        finally:
            client.close()

    def load(self) -> float:
        o = self.options
        plan = [
            (self.read_cached, o.cached_readers),
            (self.read_uncached, o.uncached_readers),
            (self.sign_up, o.signups),
            (self.campaign_events, o.event_senders),
            (self.donate, o.donors),
        ]
        threads = [
            threading.Thread(target=self.worker, args=(action, 1000 * i + j))
            for i, (action, count) in enumerate(plan)
            for j in range(count)
        ]
        started, self.load_started = time.monotonic(), time.time()
        self.deadline = started + o.seconds
        publisher = subprocess.Popen(
            [
                sys.executable,
                "-c",
                PUBLISHER.format(
                    deadline=time.time() + o.seconds,
                    every=o.publish_every,
                    page=self.setup["republish"],
                ),
            ],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.children.append(publisher)
        for thread in threads:
            thread.start()
        time.sleep(min(3, o.seconds / 4))
        send = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "masthead.cli",
                "send_edition",
                str(self.setup["edition"]),
                "--enqueue",
                "--no-progress",
            ],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.children.append(send)
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        _, errors = send.communicate(timeout=300)
        if send.returncode:
            print("send-edition failed:", errors[-2000:])
        out, _ = publisher.communicate(timeout=120)
        self.published = int(
            next(
                (line.split()[1] for line in out.splitlines() if line.startswith("PUBLISHED")), "0"
            )
        )
        return elapsed

    # --- results ---

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.poll() is None:
                child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        for step in reversed(self.cleanup):
            with contextlib.suppress(Exception):
                step()

    def run(self) -> int:
        o = self.options
        self.environment()
        print(
            f"soak: {o.seconds} s, {self.database}, tasks: {self.tasks}, "
            f"{o.recipients:,} recipients; {machine()}"
        )
        print(
            "rate limits raised for the run (one client address): "
            + ", ".join(f"{k}={v}" for k, v in RATE_LIMITS.items())
        )
        load_before = os.getloadavg()[0]
        try:
            self.start_sink()
            self.prepare()
            self.start_services()
            elapsed = self.load()
            sent_at_end = self.sink_counts()
            # The scheduler's flush job must not run beside the one below.
            self.scheduler.terminate()
            self.scheduler.wait(timeout=60)
            final = django_json(
                FINAL.format(drain=o.drain, edition=self.setup["edition"]),
                self.env,
                timeout=o.drain + 300,
            )
            sink = self.settle_sink(final["contributions"].get("succeeded", 0))
            load_after = os.getloadavg()[0]
            return self.report(elapsed, final, sink, sent_at_end, load_before, load_after)
        finally:
            self.stop()

    def settle_sink(self, receipts: int) -> dict:
        """Sink counts once the receipts (tasks queued behind the send) have arrived, or once
        nothing has arrived for 30 s (at most 300 s)."""
        previous, stable_since = None, time.monotonic()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            counts = self.sink_counts()
            if counts != previous:
                previous, stable_since = counts, time.monotonic()
            if counts["donor"] >= receipts and time.monotonic() - stable_since > 2:
                break
            if time.monotonic() - stable_since > 30:
                break
            time.sleep(0.5)
        return previous

    def offset(self, iso: str | None) -> str:
        if not iso:
            return "?"
        return f"{datetime.fromisoformat(iso).timestamp() - self.load_started:.1f}"

    def report(self, elapsed, final, sink, sent_at_end, load_before, load_after) -> int:
        o, stats = self.options, self.stats
        print(
            f"\nload: {elapsed:.1f} s; 1-minute load average {load_before:.1f} before, "
            f"{load_after:.1f} after, on {os.cpu_count()} CPUs; publications during the "
            f"run: {self.published}"
        )
        print(
            f"{'kind':16} {'clients':>7} {'requests':>8} {'req/s':>7} {'errors':>6} "
            f"{'p50 ms':>8} {'p99 ms':>8}  statuses"
        )
        clients = {
            "read cached": o.cached_readers,
            "read uncached": o.uncached_readers,
            "sign-up": o.signups,
            "campaign events": o.event_senders,
            "checkout": o.donors,
            "webhook": o.donors,
        }
        rows = []
        for kind, count in clients.items():
            lat = stats.latencies[kind]
            n = sum(stats.statuses[kind].values()) + (
                stats.errors[kind] - sum(v for s, v in stats.statuses[kind].items() if s >= 500)
            )
            row = (
                kind,
                count,
                n,
                n / elapsed,
                stats.errors[kind],
                percentile(lat, 50),
                percentile(lat, 99),
                dict(sorted(stats.statuses[kind].items())),
            )
            rows.append(row)
            print(
                f"{row[0]:16} {row[1]:>7} {row[2]:>8} {row[3]:>7.1f} {row[4]:>6} "
                f"{row[5]:>8.1f} {row[6]:>8.1f}  {row[7]}"
            )
        print(f"cached readers: page cache {dict(stats.cache)}")
        for sample in stats.error_samples:
            print("  error:", sample)

        checks: list[tuple[str, bool, str]] = []
        errors = sum(stats.errors.values())
        checks.append(("errors (5xx, connection)", errors == 0, f"{errors}"))
        refused = {
            kind: {
                s: n for s, n in stats.statuses[kind].items() if s < 500 and s not in EXPECTED[kind]
            }
            for kind in EXPECTED
        }
        refused = {k: v for k, v in refused.items() if v}
        checks.append(("requests refused (unexpected 4xx/3xx)", not refused, f"{refused or 0}"))

        kinds = ("impression", "click", "dismiss")
        before, after = self.setup["counters"], final["counters"]
        accepted_total = sum(self.accepted_events.values())
        counted_total, wrong = 0, []
        for _campaign, variant in self.setup["variants"]:
            for index, kind in enumerate(kinds):
                counted = (
                    after.get(str(variant), [0, 0, 0])[index]
                    - before.get(str(variant), [0, 0, 0])[index]
                )
                counted_total += counted
                accepted = self.accepted_events[(variant, kind)]
                if counted != accepted:
                    wrong.append(
                        f"variant {variant} {kind}: {counted} counted, {accepted} accepted"
                    )
        checks.append(
            (
                "campaign events counted == accepted",
                not wrong,
                f"{counted_total:,} counted, {accepted_total:,} accepted"
                + (f"; {len(wrong)} wrong, e.g. {wrong[0]}" if wrong else ""),
            )
        )

        delivery = final["delivery"] or {}
        ledger_sent = delivery.get("sent", 0)
        checks.append(
            (
                f"newsletter: ledger sent == {o.recipients:,}",
                ledger_sent == o.recipients
                and delivery.get("total") == o.recipients
                and not delivery.get("failed")
                and not delivery.get("remaining"),
                f"total {delivery.get('total')}, sent {ledger_sent:,}, failed "
                f"{delivery.get('failed')}, remaining {delivery.get('remaining')}, "
                f"status {delivery.get('status')}",
            )
        )
        checks.append(
            (
                "newsletter: sink received == sent, each address once",
                sink["newsletter"] == ledger_sent and not sink["newsletter_repeats"],
                f"{sink['newsletter']:,} received, {sink['newsletter_repeats']} repeats",
            )
        )
        checks.append(
            (
                "confirmation emails == sign-ups accepted == consent records",
                sink["signup"] == self.signups_accepted == final["consents"]
                and not sink["signup_repeats"],
                f"{sink['signup']} emails, {self.signups_accepted} accepted, {final['consents']} "
                f"consent records, {sink['signup_repeats']} repeats",
            )
        )
        checks.append(
            (
                "webhooks stored == webhooks sent",
                final["provider_events"] == self.webhooks_sent == len(self.webhook_ids),
                f"{final['provider_events']} stored, {self.webhooks_sent} sent "
                f"({final['provider_event_status']})",
            )
        )
        succeeded = final["contributions"].get("succeeded", 0)
        checks.append(
            (
                "receipts at the sink == contributions succeeded",
                sink["donor"] == succeeded,
                f"{sink['donor']} receipts, {succeeded} "
                f"succeeded ({self.donations['once']} one-time checkouts, "
                f"{self.donations['monthly']} monthly with one renewal each)",
            )
        )
        rate = delivery.get("rate") or 0
        print(
            f"newsletter send: {ledger_sent:,} in {delivery.get('elapsed_seconds')} s, from "
            f"{self.offset(delivery.get('started_at'))} to "
            f"{self.offset(delivery.get('finished_at'))} s after the load began "
            f"({rate:,.0f} msgs/s), {sent_at_end['newsletter']:,} at the sink when the load "
            f"ended"
        )
        print(
            f"donations: {dict(self.donations)}; contributions {final['contributions']}; "
            f"receipts at the sink {sink['donor']}; other mail {sink['other']}"
        )
        print("\nchecks:")
        failed = 0
        for name, ok, detail in checks:
            failed += not ok
            print(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}")
        self.rows = rows
        if o.markdown:
            print("\n| kind | clients | requests | req/s | errors | p50 ms | p99 ms |")
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
            for r in rows:
                print(
                    f"| {r[0]} | {r[1]} | {r[2]:,} | {r[3]:,.1f} | {r[4]} | {r[5]:.1f} | "
                    f"{r[6]:.1f} |"
                )
        print(
            f"\n{'all checks passed' if not failed else f'{failed} check(s) failed'} "
            f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)"
        )
        return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="Load duration (60).")
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="postgres: a fresh database on 127.0.0.1:5432 and Redis on :6379.",
    )
    parser.add_argument(
        "--tasks",
        choices=("db", "rq"),
        default="",
        help="Task backend (default: db on SQLite, rq on PostgreSQL + Redis).",
    )
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--cached-readers", type=int, default=8)
    parser.add_argument("--uncached-readers", type=int, default=4)
    parser.add_argument("--signups", type=int, default=2)
    parser.add_argument("--event-senders", type=int, default=4)
    parser.add_argument("--donors", type=int, default=2)
    parser.add_argument("--publish-every", type=float, default=15.0)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--task-workers", type=int, default=1)
    parser.add_argument(
        "--drain",
        type=float,
        default=300.0,
        help="Seconds to wait after the load for the send to finish.",
    )
    parser.add_argument("--markdown", action="store_true", help="Also print a Markdown table.")
    parser.add_argument("--keep", action="store_true", help="Keep the data folder (logs).")
    # Stopped from outside: still stop the children and drop the database (finally in run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return Soak(parser.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
