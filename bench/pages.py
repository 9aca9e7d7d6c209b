"""Reader-page benchmark: the demo site under gunicorn, home and article page, page cache on
and off, at several concurrency levels. A benchmark, not a test.

    .venv/bin/python bench/pages.py                      # 1, 8, 32 concurrent readers
    .venv/bin/python bench/pages.py --concurrency 1,4 --requests 500 --no-record

It builds a throw-away data folder (SQLite, ``masthead setup --demo``), starts gunicorn on a
free loopback port (as ``masthead run`` does: ``--workers 2 --threads 4`` by default), and
drives it with a small load generator (threads, each with one keep-alive ``http.client``
connection). Every run is bounded by ``--requests`` and ``--seconds``; it only ever talks to
127.0.0.1. Figures go to stdout and, unless ``--no-record``, replace the "## Reader pages"
section of docs/benchmarks.md. The load generator runs on the same machine and competes with
the server for CPU, so the figures are a floor, not a ceiling.

``--cpu`` measures something else: the CPU time of one uncached render (page cache off),
home and article, on SQLite and (with ``--database-url``) PostgreSQL, and the SQL queries it
runs; ``--peer /tmp/bakerydemo`` measures Wagtail's bakerydemo (home and a blog page, set up
in its own venv there) the same way, interleaved with Masthead's rounds:

    .venv/bin/python bench/pages.py --cpu --database-url postgres://postgres@127.0.0.1:5432/x \
        --peer /tmp/bakerydemo

Each site runs in a long-lived child process that renders through Django's request handler
(the test client: middleware, routing, view, templates, database; no HTTP parsing and no
gunicorn), timing each batch with ``time.process_time()`` — the child's own CPU, so other
work on a shared machine slows it far less than wall time. The figure is the median of the
rounds' per-render means. With SQLite the database work is in the child and counted; with
PostgreSQL the server's own CPU is not. "after a publication" is the first render after the
page-cache generation was raised (every fragment and route of masthead.core.fragments
rebuilt), averaged over the rounds. Figures replace the "## Uncached render CPU" section.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Reader pages"
CPU_SECTION = "## Uncached render CPU"


@dataclass
class Result:
    page: str
    cached: bool
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(data_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CACHE_URL", "REDIS_URL", "MASTHEAD_TESTING",
                       "MASTHEAD_DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(MASTHEAD_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", LOG_LEVEL="WARNING")
    return env


def get(port: int, path: str, timeout: float = 10) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_until_up(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with status {process.returncode}")
        try:
            if get(port, "/healthz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("gunicorn did not answer /healthz in time")


def article_path(port: int) -> str:
    status, body = get(port, "/feeds/rss/")
    if status != 200:
        raise SystemExit(f"/feeds/rss/ answered {status}")
    match = re.search(rb"<item><title>.*?</title><link>https?://[^/<]+(/[^<]+)</link>", body)
    if not match:
        raise SystemExit("no article link in the feed")
    return match.group(1).decode()


def load(port: int, path: str, concurrency: int, total: int, seconds: float) -> tuple:
    """Run ``concurrency`` readers until ``total`` requests are done or ``seconds`` pass."""
    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    def reader() -> None:
        nonlocal issued, errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        failed = 0
        while time.monotonic() < deadline:
            with lock:
                if issued >= total:
                    break
                issued += 1
            start = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Accept-Encoding": "identity"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failed += 1
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            except OSError:
                failed += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            mine.append((time.perf_counter() - start) * 1000)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=reader) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, time.perf_counter() - started


def run_server(data_dir: Path, cached: bool, workers: int, threads: int):
    port = free_port()
    env = base_env(data_dir)
    env["MASTHEAD_PAGE_CACHE"] = "1" if cached else "0"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "masthead.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--log-level", "warning"],
        env=env, cwd=ROOT,
    )
    try:
        wait_until_up(port, process)
    except BaseException:
        process.terminate()
        raise
    return process, port


def sharing(load: float) -> str:
    """How busy the machine was, from the 1-minute load average when a run started."""
    cpus = os.cpu_count() or 1
    if load < cpus:
        return (f"quiet (load average {load:.1f} on {cpus} CPUs when it started: the "
                "benchmark's own processes)")
    return f"**shared with other work** (load average {load:.1f} on {cpus} CPUs)"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        ram = f"{kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, AttributeError):
        ram = "unknown RAM"
    return (f"{os.cpu_count()} CPUs (nproc), {model}, {ram}, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def table(results: list[Result]) -> str:
    lines = [
        "| page | page cache | readers | requests | errors | req/s | p50 ms | p99 ms |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.page} | {'on' if r.cached else 'off'} | {r.concurrency} | {r.requests} | "
            f"{r.errors} | {r.rps:,.0f} | {r.percentile(50):.1f} | {r.percentile(99):.1f} |"
        )
    return "\n".join(lines)


def record(markdown: str, path: Path, section: str = SECTION) -> None:
    """Replace ``section`` (a "## …" heading and its text) of ``path`` with ``markdown``."""
    header = "# Benchmarks\n\nMeasured figures and the commands that produce them.\n"
    text = path.read_text() if path.exists() else header
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: markdown.rstrip() + "\n\n", text)
    else:
        text = text.rstrip() + "\n\n" + markdown.rstrip() + "\n"
    path.write_text(text.rstrip() + "\n")

# --- --cpu: CPU per uncached render, in-process, interleaved with a peer ---------------------

def _child_pages(site: str) -> dict[str, str]:
    """The pages measured: home and one story page (newest English article / a blog page)."""
    if site == "masthead":
        from masthead.publishing.models import ArticlePage

        article = (
            ArticlePage.objects.live()
            .filter(locale__language_code="en", lead_image__isnull=False)
            .order_by("-published_at")
            .first()
        )
        return {"home": "/", "article": article.url}
    from bakerydemo.blog.models import BlogPage  # the peer, in its own venv

    return {"home": "/", "article": BlogPage.objects.live().order_by("pk").first().url}


def cpu_child(site: str, host: str) -> None:
    """Serve measurement requests from stdin ("<page> <renders>" or "cold <page>"), one JSON
    line each on stdout, until stdin closes."""
    import json

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    settings.DEBUG = False  # the peer's settings default to DEBUG (query log, template debug)
    if host not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, host]
    client = Client(HTTP_HOST=host)
    pages = _child_pages(site)

    def render(path: str) -> None:
        response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")

    for path in pages.values():
        for _ in range(5):  # warm: templates compiled, renditions made, fragments built
            render(path)
    print(json.dumps({"ready": pages}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "cold":
            from masthead.core.pagecache import invalidate_pages

            invalidate_pages()
            started = time.process_time()
            render(pages[words[1]])
            print(json.dumps({"ms": (time.process_time() - started) * 1000}), flush=True)
            continue
        name, renders = words[0], int(words[1])
        # After another page's "cold" (a new generation) the first render rebuilds the
        # shared parts: keep it out of both the count and the timing.
        render(pages[name])
        with CaptureQueriesContext(connection) as captured:
            render(pages[name])
        queries = len(captured.captured_queries)
        started = time.process_time()
        for _ in range(renders):
            render(pages[name])
        ms = (time.process_time() - started) * 1000 / renders
        print(json.dumps({"ms": ms, "queries": queries}), flush=True)


class CpuSite:
    """A child process rendering one site's pages on request."""

    def __init__(self, label: str, python: str, cwd: Path, env: dict, site: str, host: str):
        import json

        self.label = label
        self.process = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "--cpu-child", site, "--host", host],
            cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"{label}: the measuring process did not start")
        self.pages = json.loads(line)["ready"]

    def ask(self, command: str) -> dict:
        import json

        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"{self.label}: the measuring process stopped")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def _prepare_masthead(data_dir: Path, database_url: str | None) -> dict:
    env = base_env(data_dir)
    env.update(MASTHEAD_PAGE_CACHE="0", PYTHONPATH=str(ROOT),
               DJANGO_SETTINGS_MODULE="masthead.settings")
    if not database_url and (data_dir / "masthead.sqlite3").exists():
        print(f"Reusing the demo site in {data_dir}", flush=True)
        return env
    if database_url:
        env["DATABASE_URL"] = database_url
        _recreate_postgres(database_url)
    print(f"Preparing the demo site ({'PostgreSQL' if database_url else 'SQLite'}) …",
          flush=True)
    subprocess.run([sys.executable, "-m", "masthead.cli", "setup", "--demo", "--no-admin"],
                   env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return env


def _recreate_postgres(database_url: str) -> None:
    """Drop and create the (benchmark's own) database named in ``database_url``."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def cpu_main(options, argv) -> int:
    import statistics

    sites: list[CpuSite] = []
    started_uptime, started_load = uptime(), os.getloadavg()[0]
    print(started_uptime, flush=True)
    with tempfile.TemporaryDirectory(prefix="masthead-bench-cpu-") as tmp:
        try:
            targets = [("Masthead, SQLite", None)]
            if options.database_url:
                targets.append(("Masthead, PostgreSQL", options.database_url))
            for index, (label, url) in enumerate(targets):
                folder = options.data_dir if options.data_dir and not url else None
                env = _prepare_masthead(folder or Path(tmp) / f"site{index}", url)
                sites.append(CpuSite(label, sys.executable, ROOT, env, "masthead", "127.0.0.1"))
            if options.peer:
                peer = Path(options.peer)
                env = {k: v for k, v in os.environ.items()
                       if k not in {"DATABASE_URL", "PYTHONPATH", "DJANGO_SETTINGS_MODULE"}}
                env.update(DJANGO_SETTINGS_MODULE="bakerydemo.settings.base",
                           PYTHONPATH=str(peer), PYTHONUNBUFFERED="1")
                sites.append(CpuSite("bakerydemo (peer)", str(peer / ".venv/bin/python"), peer,
                                     env, "bakerydemo", "localhost"))
            figures: dict[tuple[str, str], list[float]] = {}
            queries: dict[tuple[str, str], int] = {}
            cold: dict[tuple[str, str], list[float]] = {}
            for round_ in range(options.rounds):
                for page in ("home", "article"):
                    for site in sites:  # interleaved: each round visits every site in turn
                        answer = site.ask(f"{page} {options.renders}")
                        figures.setdefault((site.label, page), []).append(answer["ms"])
                        queries[(site.label, page)] = answer["queries"]
                        if site.label.startswith("Masthead"):
                            cold.setdefault((site.label, page), []).append(
                                site.ask(f"cold {page}")["ms"])
                print(f"round {round_ + 1}/{options.rounds}: " + ", ".join(
                    f"{label} {page} {values[-1]:.1f} ms"
                    for (label, page), values in figures.items()), flush=True)
        finally:
            for site in sites:
                site.close()
    finished_uptime = uptime()
    print(finished_uptime, flush=True)
    rows = [
        "| site | page | CPU ms per uncached render (median of rounds) | min–max of rounds "
        "| first render after a publication, ms | SQL queries |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for (label, page), values in figures.items():
        after = cold.get((label, page))
        rows.append(
            f"| {label} | {page} ({sites_page(sites, label, page)}) | "
            f"{statistics.median(values):.1f} | {min(values):.1f}–{max(values):.1f} | "
            f"{statistics.fmean(after):.1f} | {queries[(label, page)]} |"
            if after else
            f"| {label} | {page} ({sites_page(sites, label, page)}) | "
            f"{statistics.median(values):.1f} | {min(values):.1f}–{max(values):.1f} | — | "
            f"{queries[(label, page)]} |"
        )
    command = "python bench/pages.py " + " ".join(argv if argv is not None else sys.argv[1:])
    markdown = "\n".join([
        CPU_SECTION,
        "",
        f"Command: `{command.strip()}` (source: `bench/pages.py`). "
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Machine: {machine()}, {sharing(started_load)}: "
        f"`uptime` before: `{started_uptime}`; after: `{finished_uptime}`. CPU time "
        "(`time.process_time()` of the rendering process) rather than wall time, which other "
        "work on the machine would inflate more; compare rows of one run, which were "
        "measured interleaved.",
        "",
        f"Each row: {options.rounds} rounds of {options.renders} renders of the page, page "
        "cache off (`MASTHEAD_PAGE_CACHE=0`), through Django's request handler in-process "
        "(middleware, routing, view, templates, database; no HTTP server), after five "
        "warm-up renders, with the demo content. SQL queries: one render, counted with "
        "`CaptureQueriesContext`. \"First render after a publication\": the page-cache "
        "generation raised, then one render (every shared fragment, route and read-more "
        "rebuilt in this process). With PostgreSQL the database server's own CPU is not in "
        "the figure; with SQLite the database work is.",
        "",
        "\n".join(rows),
        "",
    ])
    print()
    print(markdown)
    if not options.no_record:
        record(markdown, options.output, CPU_SECTION)
        print(f"Recorded in {options.output}")
    return 0


def sites_page(sites: list[CpuSite], label: str, page: str) -> str:
    for site in sites:
        if site.label == label:
            return f"`{site.pages[page]}`"
    return ""



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", default="1,8,32",
                        help="comma-separated numbers of concurrent readers (default 1,8,32)")
    parser.add_argument("--requests", type=int, default=2000,
                        help="requests per measurement at most (default 2000)")
    parser.add_argument("--seconds", type=float, default=15,
                        help="time limit per measurement (default 15)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument("--no-record", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--cpu", action="store_true",
                        help="CPU ms and queries per uncached render instead (see above)")
    parser.add_argument("--database-url",
                        help="--cpu: also on this PostgreSQL database (dropped and recreated)")
    parser.add_argument("--peer", help="--cpu: a bakerydemo checkout with its .venv, e.g. "
                        "/tmp/bakerydemo, measured interleaved")
    parser.add_argument("--data-dir", type=Path,
                        help="--cpu: a SQLite demo folder to reuse (set up if empty)")
    parser.add_argument("--rounds", type=int, default=7, help="--cpu: rounds (default 7)")
    parser.add_argument("--renders", type=int, default=30,
                        help="--cpu: renders per page per round (default 30)")
    parser.add_argument("--cpu-child", help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.cpu_child:
        cpu_child(options.cpu_child, options.host)
        return 0
    if options.cpu:
        return cpu_main(options, argv)
    levels = [int(n) for n in options.concurrency.split(",") if n.strip()]

    results: list[Result] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="masthead-bench-") as tmp:
        data_dir = Path(tmp)
        print(f"Preparing the demo site in {data_dir} …", flush=True)
        subprocess.run([sys.executable, "-m", "masthead.cli", "setup", "--demo", "--no-admin"],
                       env=base_env(data_dir), cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        for cached in (True, False):
            process, port = run_server(data_dir, cached, options.workers, options.threads)
            try:
                pages = {"home": "/", "article": article_path(port)}
                for name, path in pages.items():
                    load(port, path, min(4, max(levels)), 50, 10)  # warm up (and fill the cache)
                    for level in levels:
                        latencies, errors, seconds = load(
                            port, path, level, options.requests, options.seconds
                        )
                        result = Result(name, cached, level, len(latencies), errors, seconds,
                                        latencies)
                        results.append(result)
                        print(f"{name:8} cache={'on ' if cached else 'off'} readers={level:3} "
                              f"{result.requests:6} req {errors:3} err {result.rps:8.0f} req/s "
                              f"p50 {result.percentile(50):7.1f} ms "
                              f"p99 {result.percentile(99):7.1f} ms", flush=True)
            finally:
                process.terminate()
                process.wait(timeout=30)

    load_after = os.getloadavg()[0]
    command = "python bench/pages.py " + " ".join(argv if argv is not None else sys.argv[1:])
    markdown = "\n".join([
        SECTION,
        "",
        f"Command: `{command.strip()}` (source: `bench/pages.py`). "
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Machine: {machine()}. gunicorn `--workers {options.workers} --threads "
        f"{options.threads}`, SQLite, diskcache (the one-box defaults), demo content; "
        f"at most {options.requests} requests or {options.seconds:g} s per row, after a warm-up. "
        "Client: Python threads with keep-alive `http.client` connections on the same machine "
        "(it competes with the server for the CPUs, so these are floors). Page cache "
        "\"off\" is `MASTHEAD_PAGE_CACHE=0`: every request renders the page from the database.",
        f"1-minute load average {load_before:.1f} before and {load_after:.1f} after the run "
        f"(on {os.cpu_count()} CPUs; anything above the benchmark's own load is other work "
        "sharing the machine).",
        "",
        table(results),
        "",
        "Reading the figures: with the page cache on, a hit is served from the cache "
        "without touching the database or templates, so throughput is bound by gunicorn and "
        "the client, and the latency grows with the queue once readers outnumber the "
        f"{options.workers}×{options.threads} server threads. With the cache off, every "
        "request renders the page (Wagtail routing, the article, read-more, banner, appeal "
        "and sign-up blocks): that is the cost of a cache miss — after each publication, "
        "or for logged-in editors.",
        "",
    ])
    print()
    print(markdown)
    if not options.no_record:
        record(markdown, options.output)
        print(f"Recorded in {options.output}")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
