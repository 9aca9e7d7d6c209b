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
    options = parser.parse_args(argv)
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
