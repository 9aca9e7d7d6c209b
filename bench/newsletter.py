"""Benchmark: send one edition to N confirmed subscribers through the real task worker.

    .venv/bin/python bench/newsletter.py                    # N = 100,000
    .venv/bin/python bench/newsletter.py --sizes 20000,100000,200000    # is memory flat?
    .venv/bin/python bench/newsletter.py -n 20000 --dkim rsa        # DKIM-signed (or ed25519)
    .venv/bin/python bench/newsletter.py -n 20000 --language ru     # the Russian edition
    .venv/bin/python bench/newsletter.py -n 20000 --esp             # SendGrid stand-in, batches
    .venv/bin/python bench/newsletter.py -n 20000 --esp mailgun     # or brevo, postmark, …
    .venv/bin/python bench/newsletter.py -n 2000 --esp --esp-batch 0    # one call a recipient
    .venv/bin/python bench/newsletter.py --issue12 --record     # the issue 12 set, recorded

``--esp [sendgrid|mailgun|brevo|postmark|amazon_ses]`` (SendGrid if not named) sends through
django-anymail's real backend for that ESP to the local stand-in of its API in
``tests/newsletters/esp.py`` (in this process, counting only) instead of SMTP; Amazon SES's
through boto3, pointed at the stand-in by ``AWS_ENDPOINT_URL_SESV2``, in calls of at most 50.
Every row prints the edition's message size as sent (8bit where the server offers
8BITMIME, as the sinks here do) and in its 7bit-safe form.

For each N, in a fresh data folder (SQLite unless --database-url is given): migrate, import
the demo articles, create N confirmed subscribers (encrypted addresses, as in production)
and an edition of four articles (two in full text). Then start a local SMTP sink that
accepts and discards everything — Postfix's ``smtp-sink`` (``apt-get install postfix``) if
present, else a small asyncio sink below — enqueue the send, and run ``masthead db_worker
--batch`` as a child process. Prints messages/s (from the delivery's start to its end, as
recorded in the ledger) and the worker's peak RSS (``wait4`` rusage of the child).
Not a test: nothing asserts; run it on a quiet machine and write the figures to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Newsletter sending: ESP batches, DKIM, compact editions"
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- A fallback sink: accepts everything, keeps nothing, supports PIPELINING ----------------


async def _sink_session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 sink ESMTP\r\n")
    in_data = False
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    writer.write(b"250 2.0.0 Ok: queued\r\n")
                continue
            command = line[:4].upper()
            if command == b"EHLO":
                writer.write(b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 0\r\n")
            elif command == b"DATA":
                in_data = True
                writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif command == b"QUIT":
                writer.write(b"221 Bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 Ok\r\n")
            if reader._buffer == b"":  # noqa: SLF001 - answer pipelined commands together
                await writer.drain()
    finally:
        writer.close()


def start_python_sink(port: int) -> threading.Thread:
    loop = asyncio.new_event_loop()

    def run():
        asyncio.set_event_loop(loop)
        # asyncio.Server is only an *async* context manager: keep a reference, run forever.
        run.server = loop.run_until_complete(
            asyncio.start_server(_sink_session, "127.0.0.1", port)
        )
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(0.3)
    return thread


def start_sink(port: int, prefer_python: bool) -> tuple[str, subprocess.Popen | None]:
    binary = shutil.which("smtp-sink") or ("/usr/sbin/smtp-sink" if Path(
        "/usr/sbin/smtp-sink").exists() else None)
    if binary and not prefer_python:
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        process = subprocess.Popen([binary, *user, f"127.0.0.1:{port}", "256"])
        time.sleep(0.3)
        return "postfix smtp-sink", process
    start_python_sink(port)
    return "asyncio sink (bench/newsletter.py)", None


# --- One run ----------------------------------------------------------------------------------


def prepare(n: int, data_dir: Path, env: dict, language: str = "en") -> int:
    """Database, demo articles, N subscribers and an edition; returns the edition's id.
    Runs in a child process so that this process never imports Django with another data
    folder's settings."""
    script = f"""
import django, time
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.db import transaction
from masthead.core.crypto import email_index
from masthead.publishing.demo import ensure_site, load_demo_articles
from masthead.publishing.models import ArticlePage
from masthead.newsletters.models import (Edition, EditionArticle, Newsletter, Subscriber,
    Subscription)
with transaction.atomic():
    ensure_site()
load_demo_articles()
language = {language!r}
names = {{"en": "The Friday Lantern", "ru": "Фонарь по пятницам"}}
newsletter = Newsletter.objects.create(name=names[language], slug="lantern-" + language,
    is_default=True, language=language)
started = time.monotonic()
for start in range(0, {n}, 5000):
    with transaction.atomic():
        people = Subscriber.objects.bulk_create(
            Subscriber(email=f"reader{{i}}@example.org",
                       email_index=email_index(f"reader{{i}}@example.org"),
                       name=f"Reader {{i}}" if i % 3 == 0 else "")
            for i in range(start, min({n}, start + 5000)))
        Subscription.objects.bulk_create(
            Subscription(subscriber=p, newsletter=newsletter, status="confirmed") for p in people)
edition = Edition.objects.create(newsletter=newsletter,
    subject="Ice on the river, a council's open books and the last letterpress",
    preheader="The week in the Orlin valley", intro="<p>Good morning. Here is the week.</p>")
for order, article in enumerate(ArticlePage.objects.live().filter(
        locale__language_code=language).order_by("-published_at")[:4]):
    EditionArticle.objects.create(edition=edition, article=article, sort_order=order,
                                  full_text=order < 2)
print("EDITION", edition.pk, "subscribers in %.1fs" % (time.monotonic() - started))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
        check=False,
    )
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    # Drain the tasks the set-up queued (Wagtail's reference index) so the measured worker
    # runs the send alone.
    subprocess.run([sys.executable, "-m", "masthead.cli", "db_worker", "--batch", "--queue-name",
                    "*", "--no-reload", "--no-startup-delay", "-v", "0"], env=env, cwd=ROOT,
                   check=True, capture_output=True)
    line = next(line for line in out.stdout.splitlines() if line.startswith("EDITION"))
    print("  " + line.split(" ", 2)[2], flush=True)
    return int(line.split()[1])


def start_send(edition_id: int, env: dict) -> dict:
    script = f"""
import django
django.setup()
from masthead.newsletters.delivery import delivery_start
from masthead.newsletters.models import Edition
from masthead.newsletters.rendering import MessageTemplate, Recipient
d = delivery_start(Edition.objects.get(pk={edition_id}))
t = MessageTemplate.for_delivery(d)
r = Recipient(0, 1, "reader1@example.org", "", "x")
print("DELIVERY", d.pk, d.total, len(t.raw(r, eightbit=True)), len(t.raw(r, eightbit=False)),
      "/".join(p.encoding for p in t.parts[True]))
"""
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True,
                         text=True, check=False)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    _, pk, total, size, size7, encodings = next(
        line for line in out.stdout.splitlines() if line.startswith("DELIVERY")).split()
    return {"delivery": int(pk), "total": int(total), "message_bytes": int(size),
            "message_bytes_7bit": int(size7), "encodings": encodings}


def delivery_figures(delivery_id: int, env: dict) -> dict:
    script = f"""
import django, json
django.setup()
from masthead.newsletters.delivery import delivery_progress
from masthead.newsletters.models import Delivery
print("JSON", json.dumps(delivery_progress(Delivery.objects.get(pk={delivery_id}))))
"""
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True,
                         text=True, check=True)
    import json

    return json.loads(next(
        line for line in out.stdout.splitlines() if line.startswith("JSON"))[5:])


def run_once(n: int, args) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="masthead-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "masthead.settings",
        "MASTHEAD_DATA_DIR": str(data_dir),
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "MASTHEAD_NEWSLETTER_CONNECTIONS": str(args.connections),
        "MASTHEAD_NEWSLETTER_BATCH": str(args.batch),
        "MASTHEAD_NEWSLETTER_RATE": "0",
        "MASTHEAD_NEWSLETTER_PARALLEL": str(args.workers),
        "MASTHEAD_PAGE_CACHE": "0",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("MASTHEAD_TESTING", None)
    for name in ("MASTHEAD_DKIM_PRIVATE_KEY", "MASTHEAD_DKIM_PRIVATE_KEY_FILE"):
        env.pop(name, None)
    if args.dkim:
        env["MASTHEAD_DKIM_PRIVATE_KEY"] = dkim_key(args.dkim)
        env["MASTHEAD_DKIM_SELECTOR"] = "bench"
    standin = None
    if args.esp:
        from tests.newsletters import esp

        kind, setting, key = ESPS[args.esp]
        standin = getattr(esp, kind)(record=False)
        name = args.esp.upper()
        env["EMAIL_BACKEND"] = f"anymail.backends.{args.esp}.EmailBackend"
        if hasattr(standin, setting):
            setattr(standin, setting, key)
        if args.esp == "amazon_ses":  # boto3 reads these (no dict setting from the environment)
            env.update(AWS_ENDPOINT_URL_SESV2=standin.start(), AWS_DEFAULT_REGION="us-east-1",
                       AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY="bench-secret",  # noqa: S106
                       AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull,
                       AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        else:
            env[f"ANYMAIL_{name}_{setting.upper()}"] = key
            env[f"ANYMAIL_{name}_API_URL"] = standin.start()
        env["MASTHEAD_NEWSLETTER_ESP_BATCH"] = str(args.esp_batch)
        env["PYTHONWARNINGS"] = "ignore::UserWarning"
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    else:
        env.pop("DATABASE_URL", None)
    print(f"N = {n:,}: preparing in {data_dir}", flush=True)
    edition_id = prepare(n, data_dir, env, args.language)
    if standin is not None:
        sink_name, sink = f"{ESP_NAMES[args.esp]} stand-in, batches of {esp_batch(args)}", None
    else:
        sink_name, sink = start_sink(port, args.python_sink)
    try:
        started = start_send(edition_id, env)
        wall_start = time.monotonic()
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "masthead.cli", "db_worker", "--batch", "--queue-name",
                 "*", "--no-reload", "--no-startup-delay", "--interval", "0.1", "-v", "0"],
                env=env, cwd=ROOT,
            )
            for _ in range(args.workers)
        ]
        usages = [os.wait4(worker.pid, 0)[2] for worker in workers]
        wall = time.monotonic() - wall_start
    finally:
        if sink is not None:
            sink.terminate()
            sink.wait()
        if standin is not None:
            calls = standin.calls
            standin.stop()
    figures = delivery_figures(started["delivery"], env)
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    elapsed = figures["elapsed_seconds"] or wall
    cpu = sum(u.ru_utime + u.ru_stime for u in usages)
    return {
        "mode": describe(args),
        "api_calls": calls if standin is not None else None,
        "message_bytes_7bit": started["message_bytes_7bit"],
        "encodings": started["encodings"],
        "load": os.getloadavg()[0],
        "workers": args.workers,
        "cpu_seconds": cpu,
        "n": n,
        "sent": figures["sent"],
        "failed": figures["failed"],
        "message_bytes": started["message_bytes"],
        "send_seconds": elapsed,
        "rate": figures["sent"] / elapsed if elapsed else 0.0,
        "worker_wall_seconds": wall,
        "peak_rss_mb": max(u.ru_maxrss for u in usages) / 1024,
        "sink": sink_name,
    }


def dkim_key(kind: str) -> str:
    """A fresh private key in PEM, newlines escaped as an environment variable may hold it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa"
           else ed25519.Ed25519PrivateKey.generate())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem.replace("\n", "\\n")


def esp_batch(args) -> int:
    """Recipients a call: --esp-batch, within the ESP's own limit (SES: 50)."""
    return max(1, min(args.esp_batch, 50 if args.esp == "amazon_ses" else args.esp_batch))


def describe(args) -> str:
    if args.esp:
        standin = f"{ESP_NAMES[args.esp]} stand-in"
        how = (f"ESP ({standin}), batches of {esp_batch(args)}" if args.esp_batch > 1
               else f"ESP ({standin}), one call a recipient")
    else:
        how = "pipelined SMTP"
        if args.dkim:
            how += f", DKIM {'RSA-2048' if args.dkim == 'rsa' else 'Ed25519'}"
    return f"{how}, {'Russian' if args.language == 'ru' else 'English'} edition"


ESPS = {  # --esp: the stand-in in tests/newsletters/esp.py, its key's setting and a key
    "sendgrid": ("SendGridStandIn", "api_key", "SG.bench"),
    "mailgun": ("MailgunStandIn", "api_key", "key-bench"),
    "brevo": ("BrevoStandIn", "api_key", "xkeysib-bench"),
    "postmark": ("PostmarkStandIn", "server_token", "postmark-bench"),
    "amazon_ses": ("AmazonSESStandIn", "access_key", "AKIDMASTHEADBENCH"),
}
ESP_NAMES = {"sendgrid": "SendGrid", "mailgun": "Mailgun", "brevo": "Brevo",
             "postmark": "Postmark", "amazon_ses": "Amazon SES"}

NOTE = os.environ.get("BENCH_NOTE", "")  # a paragraph to record above the table

ISSUE12 = [  # (N, options): the rows of docs/benchmarks.md's section
    (None, {}),
    (None, {"dkim": "ed25519"}),
    (None, {"dkim": "rsa"}),
    (None, {"language": "ru"}),
    (None, {"esp": "sendgrid"}),
    (1000, {"esp": "sendgrid", "esp_batch": 0}),
]


def markdown(rows: list[dict], command: str, load_before: float, load_after: float) -> str:
    from datetime import UTC, datetime

    from bench.pages import machine

    lines = [
        SECTION, "",
        f"Command: `{command}` (source: `bench/newsletter.py`). Measured "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.", "", *([NOTE, ""] if NOTE else []),
        f"Machine: {machine()}. **The machine was shared** with other engineers' work (7 "
        "more on its 2 CPUs): the 1-minute load average was "
        f"{load_before:.1f} before and {load_after:.1f} after (each row shows it at its end), "
        "so msgs/s are floors and move between runs; msgs/CPU-s (messages per second of the "
        "worker's own CPU time, its start-up included) is the figure other load changes "
        "least. One `masthead db_worker` process, SQLite, default settings (2 connections, "
        "1,000 ledger rows a claim, no rate limit), four demo articles, two in full text; SMTP "
        "rows go to Postfix's smtp-sink (or the asyncio sink), which offers PIPELINING and "
        "8BITMIME; ESP rows go through django-anymail's SendGrid backend to the stand-in of "
        "SendGrid's API in `tests/newsletters/esp.py`, served from the benchmark's process.",
        "",
        "| what | N | sent | failed | API calls | msgs/s | msgs/CPU-s | message KB (as sent) "
        "| KB 7bit-safe | bodies | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in rows:
        calls = "—" if r["api_calls"] is None else f"{r['api_calls']:,}"
        lines.append(
            f"| {r['mode']} | {r['n']:,} | {r['sent']:,} | {r['failed']} | {calls} | "
            f"{r['rate']:,.0f} | {r['sent'] / r['cpu_seconds']:,.0f} | "
            f"{r['message_bytes'] / 1024:.1f} | {r['message_bytes_7bit'] / 1024:.1f} | "
            f"{r['encodings']} | {r['load']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="Subscribers (default 100,000).")
    parser.add_argument("--sizes", help="Comma-separated Ns to run one after the other.")
    parser.add_argument("--connections", type=int, default=2, help="SMTP connections.")
    parser.add_argument("--workers", type=int, default=1, help="db_worker processes sharing "
                        "the send (MASTHEAD_NEWSLETTER_PARALLEL).")
    parser.add_argument("--batch", type=int, default=1000, help="Ledger rows claimed at once.")
    parser.add_argument("--database-url", help="e.g. postgres://postgres@127.0.0.1/bench")
    parser.add_argument("--python-sink", action="store_true", help="Use the asyncio sink.")
    parser.add_argument("--keep", action="store_true", help="Keep the data folders.")
    parser.add_argument("--dkim", choices=["rsa", "ed25519"], help="Sign with a fresh key.")
    parser.add_argument("--language", choices=["en", "ru"], default="en",
                        help="The English or the Russian edition.")
    parser.add_argument("--esp", nargs="?", const="sendgrid", choices=sorted(ESPS),
                        help="Through an ESP's stand-in, with anymail's backend for it "
                        "(sendgrid if not named).")
    parser.add_argument("--esp-batch", type=int, default=500,
                        help="Recipients per ESP API call (MASTHEAD_NEWSLETTER_ESP_BATCH; 0: one "
                        "call per recipient).")
    parser.add_argument("--issue12", action="store_true", help="Run the issue 12 set of rows "
                        "(SMTP plain, DKIM, Russian, ESP batched and per recipient) at -n.")
    parser.add_argument("--json", help="Also append the rows, as JSON lines, to this file.")
    parser.add_argument("--from-json", help="Record rows read from this file (with --record) "
                        "instead of running: rows measured in separate runs, one table.")
    parser.add_argument("--record", action="store_true",
                        help=f"Write the rows to docs/benchmarks.md ({SECTION!r}).")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.n]
    load_before = os.getloadavg()[0]
    print(f"load average before: {load_before:.1f} (1 min)")
    print(f"machine: {platform.node()} · {os.cpu_count()} CPUs · Python "
          f"{platform.python_version()} · {platform.platform()}")
    rows = []
    if args.from_json:
        import json

        rows = [json.loads(line) for line in Path(args.from_json).read_text().splitlines()]
    elif args.issue12:
        for n, options in ISSUE12:
            run = argparse.Namespace(**{**vars(args), "dkim": None, "language": "en",
                                        "esp": None, **options})
            rows.append(run_once(n or args.n, run))
            print_rows(rows[-1:])
    else:
        rows = [run_once(n, args) for n in sizes]
    if args.json:
        import json

        with open(args.json, "a") as out:
            for row in rows:
                out.write(json.dumps(row) + "\n")
    print()
    print_rows(rows)
    print("msgs/s: from the delivery's start to its end (ledger times); msgs/CPU-s: messages "
          "per second of the workers' own CPU time (user + system), which other load on the "
          "machine does not change; peak RSS: the largest worker's maximum resident set.")
    load_after = os.getloadavg()[0]
    print(f"load average now: {load_after:.1f} (1 min) on {os.cpu_count()} CPUs")
    if args.record:
        from bench.pages import record

        command = "python " + " ".join(["bench/newsletter.py", *sys.argv[1:]])
        record(markdown(rows, command, load_before, load_after),
               ROOT / "docs" / "benchmarks.md", SECTION)
        print(f"recorded in docs/benchmarks.md, {SECTION}")


def print_rows(rows: list[dict]) -> None:
    print(f"{'what':<52} {'N':>8} {'sent':>8} {'failed':>6} {'calls':>6} {'KB':>5} "
          f"{'KB7':>5} {'msgs/s':>8} {'msgs/CPU-s':>10} {'RSS MB':>7} {'load':>5}")
    for r in rows:
        calls = "-" if r["api_calls"] is None else str(r["api_calls"])
        print(f"{r['mode']:<52} {r['n']:>8,} {r['sent']:>8,} {r['failed']:>6} {calls:>6} "
              f"{r['message_bytes'] / 1024:>5.1f} {r['message_bytes_7bit'] / 1024:>5.1f} "
              f"{r['rate']:>8,.0f} {r['sent'] / r['cpu_seconds']:>10,.0f} "
              f"{r['peak_rss_mb']:>7.1f} {r['load']:>5.1f}  {r['encodings']}", flush=True)


if __name__ == "__main__":
    main()
