"""Lighthouse on what readers see: the demo site's home and an article, mobile, in Chromium.
A benchmark, not a test: Lighthouse's performance score swings with machine load, and the
tool comes from the npm registry.

    .venv/bin/python bench/lighthouse.py              # 3 runs per page, median recorded
    .venv/bin/python bench/lighthouse.py --runs 1 --no-record

It installs Lighthouse 12 (the newest line that runs on Node.js 20) with npm into
``~/.cache/masthead-bench/lighthouse`` the first time, builds a throw-away demo site
(SQLite, ``masthead setup --demo``), serves it with gunicorn on a loopback port with the
page cache on (as in production) and runs Lighthouse's default mobile profile (simulated
slow 4G, 4× CPU slowdown) against ``/`` and the newest article, in Debian's Chromium. The
median score of each category goes to stdout and, unless ``--no-record``, replaces the
"## Lighthouse" section of docs/benchmarks.md. Goals (issue 13): performance ≥ 98,
accessibility, best practices and SEO 100.
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
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pages import ROOT, article_path, base_env, get, machine, record, run_server  # noqa: E402

SECTION = "## Lighthouse"
VERSION = "12.8.2"
CACHE = Path.home() / ".cache" / "masthead-bench" / "lighthouse"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
GOALS = {"performance": 98, "accessibility": 100, "best-practices": 100, "seo": 100}
METRICS = ("first-contentful-paint", "largest-contentful-paint", "total-blocking-time",
           "cumulative-layout-shift")
CHROMIUM = os.environ.get("MASTHEAD_CHROMIUM", "/usr/bin/chromium")


def lighthouse_binary() -> Path:
    binary = CACHE / "node_modules" / ".bin" / "lighthouse"
    installed = CACHE / "node_modules" / "lighthouse" / "package.json"
    if installed.exists() and json.loads(installed.read_text())["version"] == VERSION:
        return binary
    if not shutil.which("npm"):
        raise SystemExit("npm is needed to install Lighthouse (apt-get install npm)")
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"Installing lighthouse@{VERSION} into {CACHE} …", flush=True)
    subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund",
                    f"lighthouse@{VERSION}"], cwd=CACHE, check=True)
    return binary


def run_lighthouse(binary: Path, url: str, out: Path) -> dict[str, float]:
    env = dict(os.environ, CHROME_PATH=CHROMIUM)
    subprocess.run(
        [str(binary), url, "--quiet", "--output=json", f"--output-path={out}",
         f"--only-categories={','.join(CATEGORIES)}",
         "--chrome-flags=--headless=new --no-sandbox --disable-gpu --no-first-run"],
        env=env, check=True, timeout=300,
    )
    report = json.loads(out.read_text())
    scores = {key: round(report["categories"][key]["score"] * 100) for key in CATEGORIES}
    failing = [
        audit["id"] for audit in report["audits"].values()
        if audit.get("score") is not None and audit["score"] < 1
        and audit.get("scoreDisplayMode") in ("binary", "numeric")
        and any(ref["id"] == audit["id"] for key in CATEGORIES[1:]
                for ref in report["categories"][key]["auditRefs"] if ref.get("weight"))
    ]
    scores["failing"] = failing
    for metric in METRICS:
        scores[metric] = report["audits"][metric]["numericValue"]
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per page (median recorded)")
    parser.add_argument("--no-record", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    options = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"Chromium is needed at {CHROMIUM} (apt-get install chromium)")
    binary = lighthouse_binary()

    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="masthead-lighthouse-") as tmp:
        data_dir = Path(tmp)
        print(f"Preparing the demo site in {data_dir} …", flush=True)
        subprocess.run([sys.executable, "-m", "masthead.cli", "setup", "--demo", "--no-admin"],
                       env=base_env(data_dir), cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        process, port = run_server(data_dir, cached=True, workers=2, threads=4)
        try:
            pages = {"home": "/", "article": article_path(port)}
            for name, path in pages.items():
                runs = []
                get(port, path)  # warm the page cache first, as a front cache would be
                for attempt in range(options.runs):
                    out = data_dir / f"{name}-{attempt}.json"
                    runs.append(run_lighthouse(binary, f"http://127.0.0.1:{port}{path}", out))
                    print(f"{name} run {attempt + 1}: "
                          + ", ".join(f"{k} {runs[-1][k]}" for k in CATEGORIES), flush=True)
                median = {k: statistics.median(r[k] for r in runs)
                          for k in (*CATEGORIES, *METRICS)}
                failing = sorted({audit for r in runs for audit in r["failing"]})
                rows.append((name, path, median, failing))
        finally:
            process.terminate()
            process.wait(timeout=30)
    load_after = os.getloadavg()[0]

    lines = [
        SECTION,
        "",
        f"`.venv/bin/python bench/lighthouse.py --runs {options.runs}` — "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Lighthouse {VERSION}, default mobile profile "
        f"(simulated slow 4G, 4× CPU slowdown), Debian Chromium, demo site under gunicorn with "
        f"the page cache on. Machine: {machine()}; load average {load_before:.1f} before, "
        f"{load_after:.1f} after. Median of {options.runs} run(s) per page.",
        "",
        "| page | performance | accessibility | best practices | SEO | FCP ms | LCP ms | TBT ms "
        "| CLS | audits not passed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, _path, median, failing in rows:
        lines.append(
            f"| {name} | {median['performance']:.0f} | {median['accessibility']:.0f} | "
            f"{median['best-practices']:.0f} | {median['seo']:.0f} | "
            f"{median['first-contentful-paint']:.0f} | {median['largest-contentful-paint']:.0f} | "
            f"{median['total-blocking-time']:.0f} | {median['cumulative-layout-shift']:.3f} | "
            f"{', '.join(failing) or '—'} |"
        )
    goals = ", ".join(f"{k} ≥ {v}" for k, v in GOALS.items())
    met = all(median[k] >= GOALS[k] for _n, _p, median, _f in rows for k in CATEGORIES)
    lines += ["", f"Goals: {goals} — {'met' if met else 'NOT met'}.", ""]
    markdown = "\n".join(lines)
    print(markdown)
    if not options.no_record:
        record(markdown, options.output, SECTION)
        print(f"Recorded in {options.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
