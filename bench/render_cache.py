"""Article render cost as the cache fills: an uncached article render, warm, with an empty
default cache and again after 50,000 entries have been written to it. A benchmark, not a test.

    .venv/bin/python bench/render_cache.py
    .venv/bin/python bench/render_cache.py --renders 100 --entries 20000 --no-record

It builds a throw-away data folder (SQLite, ``masthead setup --demo``) and then, in a child
process with that folder and the one-box defaults (diskcache, unless CACHE_URL / REDIS_URL are
set in the environment, which are passed on), renders the demo's newest English article with
the page cache off (``MASTHEAD_PAGE_CACHE=0``: every render goes through Wagtail, templates
and the database, as a cache miss does), through Django's test client — no HTTP server, so the
figures are render cost alone. It counts the cache writes each render makes, writes
``--entries`` distinct entries of ``--entry-bytes`` each into the default cache (as a flood of
distinct URLs would), timing those writes, and renders again. Figures go to stdout and, unless
``--no-record``, replace the "## Render cost as the cache fills" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pages import machine, record  # noqa: E402  (bench/pages.py: machine line, recording)

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Render cost as the cache fills"
WRITES = ("set", "add", "set_many", "incr", "decr", "delete", "touch", "add_and_incr")


def child(options) -> None:
    """Runs inside the prepared data folder: measure, flood, measure; prints one JSON line."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "masthead.settings")
    django.setup()
    from django.conf import settings
    from django.core.cache import caches
    from django.test import Client

    from masthead.publishing.models import ArticlePage

    article = (
        ArticlePage.objects.live()
        .filter(locale__language_code="en", lead_image__isnull=False)
        .order_by("-published_at")
        .first()
    )
    url = article.url
    client = Client(HTTP_HOST="127.0.0.1")  # an ALLOWED_HOSTS default
    writes: list[str] = []
    for alias in settings.CACHES:
        backend = caches[alias]
        for name in WRITES:
            method = getattr(backend, name, None)
            if method is not None:
                def spy(*args, _method=method, _name=f"{alias}.{name}", **kwargs):
                    writes.append(_name)
                    return _method(*args, **kwargs)

                setattr(backend, name, spy)

    def measure() -> dict:
        for _ in range(5):  # warm: renditions found and cached, templates compiled
            assert client.get(url).status_code == 200
        writes.clear()
        timings = []
        cpu_started = time.process_time()
        for _ in range(options.renders):
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        cpu_ms = (time.process_time() - cpu_started) * 1000 / options.renders
        ordered = sorted(timings)
        return {
            "p50": statistics.median(ordered),
            "p90": ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))],
            "mean": statistics.fmean(ordered),
            "cpu": cpu_ms,
            "writes_per_render": len(writes) / options.renders,
        }

    empty = measure()
    cache = caches["default"]
    payload = "x" * options.entry_bytes
    batch_ms = []
    started = time.perf_counter()
    for start in range(0, options.entries, 1000):
        t = time.perf_counter()
        for i in range(start, min(start + 1000, options.entries)):
            cache.set(f"flood:{i}", payload, 3600)
        batch_ms.append((time.perf_counter() - t) * 1000 / (min(1000, options.entries - start)))
    fill_seconds = time.perf_counter() - started
    full = measure()
    backend = cache.__class__.__module__ + "." + cache.__class__.__name__
    location = Path(cache._dir if hasattr(cache, "_dir") else getattr(cache, "directory", ""))
    folder_mb = (
        sum(f.stat().st_size for f in location.rglob("*") if f.is_file()) / 1024 / 1024
        if str(location) not in ("", ".") and location.exists() else None
    )
    print(json.dumps({
        "backend": backend,
        "empty": empty,
        "full": full,
        "fill_seconds": fill_seconds,
        "write_ms_first": batch_ms[0] if batch_ms else None,
        "write_ms_last": batch_ms[-1] if batch_ms else None,
        "folder_mb": folder_mb,
    }))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=200,
                        help="renders per measurement (default 200)")
    parser.add_argument("--entries", type=int, default=50_000,
                        help="entries written to the default cache between (default 50000)")
    parser.add_argument("--entry-bytes", type=int, default=1000,
                        help="size of each entry (default 1000)")
    parser.add_argument("--no-record", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--data-dir", type=Path,
                        help="a folder to prepare (or reuse, if already set up) and keep")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        child(options)
        return 0

    env = {
        key: value for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "MASTHEAD_TESTING", "MASTHEAD_DEBUG"}
    }
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="masthead-bench-") as tmp:
        data_dir = options.data_dir or Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        # PYTHONPATH: measure this checkout's code, whichever one the venv has installed.
        env.update(MASTHEAD_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1",
                   LOG_LEVEL="WARNING", MASTHEAD_PAGE_CACHE="0", PYTHONPATH=str(ROOT))
        if not (data_dir / "masthead.sqlite3").exists():
            print(f"Preparing the demo site in {data_dir} …", flush=True)
            subprocess.run(
                [sys.executable, "-m", "masthead.cli", "setup", "--demo", "--no-admin"],
                env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
            )
        for folder in ("cache", "state"):  # start from an empty cache every run
            shutil.rmtree(data_dir / folder, ignore_errors=True)
        print("Rendering, filling the cache, rendering again …", flush=True)
        args = [sys.executable, __file__, "--child", "--renders", str(options.renders),
                "--entries", str(options.entries), "--entry-bytes", str(options.entry_bytes)]
        finished = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True)
        if finished.returncode:
            print(finished.stderr, file=sys.stderr)
            return 1
        out = finished.stdout
    load_after = os.getloadavg()[0]
    figures = json.loads(out.strip().splitlines()[-1])
    empty, full = figures["empty"], figures["full"]
    rows = [
        "| default cache | p50 ms | p90 ms | mean ms | CPU ms per render "
        "| cache writes per render |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, f in (("empty", empty), (f"after {options.entries:,} entries", full)):
        rows.append(f"| {label} | {f['p50']:.1f} | {f['p90']:.1f} | {f['mean']:.1f} | "
                    f"{f['cpu']:.1f} | {f['writes_per_render']:g} |")
    folder = (f", {figures['folder_mb']:.0f} MB on disk after it"
              if figures["folder_mb"] is not None else "")
    command = "python bench/render_cache.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    markdown = "\n".join([
        SECTION,
        "",
        f"Command: `{command.strip()}` (source: `bench/render_cache.py`). "
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Machine: {machine()}. Cache backend `{figures['backend']}`, SQLite, demo content; "
        f"the newest English article rendered {options.renders} times per row through "
        "Django's test client with the page cache off (every render is a cache miss), after "
        "five warm-up renders. Wall-clock milliseconds (p50/p90/mean) grow with other work on the "
        "machine; \"CPU ms\" is the rendering process's own CPU time (`time.process_time()`), "
        "which other work moves far less. 1-minute load average "
        f"{load_before:.1f} before and {load_after:.1f} after (on {os.cpu_count()} CPUs; the "
        "machine is shared, so rows move between runs).",
        "",
        "\n".join(rows),
        "",
        f"Filling: {options.entries:,} entries of {options.entry_bytes:,} bytes took "
        f"{figures['fill_seconds']:.1f} s ({figures['write_ms_first']:.2f} ms a write for the "
        f"first thousand, {figures['write_ms_last']:.2f} ms for the last){folder}.",
        "",
    ])
    print()
    print(markdown)
    if not options.no_record:
        record(markdown, options.output, SECTION)
        print(f"Recorded in {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
