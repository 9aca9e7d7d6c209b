"""Front-cache benchmark: a cached article behind the shipped nginx config vs nginx serving the
same HTML as a file, and the app's own page-cache hit path (gunicorn alone), now vs a baseline.

    .venv/bin/python bench/front_cache.py                          # front cache vs static
    git worktree add /tmp/base <commit>                            # "today's" code, once
    .venv/bin/python bench/front_cache.py --baseline /tmp/base     # + the app's hit path vs it

It installs nothing: without nginx (and Debian's cache-purge module) or wrk it prints the
apt-get command and stops. It builds throw-away demo sites (``masthead setup --demo``, SQLite,
diskcache — one per code tree), starts gunicorn as in issue 12 (``--workers 2``, sync, no
threads) on free loopback ports, renders deploy/nginx/masthead.conf into a temporary folder
(its own ports, cache, logs and pid; no root paths) with a second server block serving the
article's HTML from a file (and its gzip next to it, ``gzip_static``), and drives everything
with ``wrk -t2 -c16``, runs interleaved over several rounds. Only 127.0.0.1 is ever contacted;
every run is bounded by ``--seconds``.

Figures go to stdout and, unless ``--no-record``, replace the "## Front cache" section of
docs/benchmarks.md (bench/pages.py's ``record``), with the load average of the machine.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pages import base_env, free_port, machine, record, sharing, wait_until_up  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "deploy" / "nginx" / "masthead.conf"
SECTION = "## Front cache (nginx) and the page-cache hit path"
PURGE_MODULE = Path("/usr/lib/nginx/modules/ngx_http_cache_purge_module.so")
APT = "apt-get install -y nginx libnginx-mod-http-cache-purge wrk"


def missing_tools() -> list[str]:
    missing = [tool for tool in ("nginx", "wrk") if not shutil.which(tool)]
    if not PURGE_MODULE.exists():
        missing.append(str(PURGE_MODULE))
    return missing


def render_site_conf(text: str, *, app_port: int, listen_port: int, purge_port: int,
                     cache_dir: Path, log_dir: Path) -> str:
    """deploy/nginx/masthead.conf with its addresses and folders replaced by these."""
    replacements = [
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{app_port};"),
        ("listen 80;\n    listen [::]:80;", f"listen 127.0.0.1:{listen_port};"),
        ("listen 127.0.0.1:8081;", f"listen 127.0.0.1:{purge_port};"),
        ("/var/cache/nginx/masthead", str(cache_dir)),
        ("/var/log/nginx/masthead.access.log", str(log_dir / "masthead.access.log")),
    ]
    for old, new in replacements:
        if old not in text:
            raise ValueError(f"deploy/nginx/masthead.conf no longer contains {old!r}")
        text = text.replace(old, new)
    return text


def render_nginx_conf(folder: Path, *, app_port: int, listen_port: int, purge_port: int,
                      static_port: int | None = None) -> Path:
    """A complete nginx.conf in ``folder`` running the shipped site config; its path."""
    for sub in ("cache", "logs", "tmp", "static"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    site = render_site_conf(CONF.read_text(), app_port=app_port, listen_port=listen_port,
                            purge_port=purge_port, cache_dir=folder / "cache",
                            log_dir=folder / "logs")
    (folder / "masthead.conf").write_text(site)
    static = ""
    if static_port:
        static = f"""
    server {{
        listen 127.0.0.1:{static_port};
        root {folder / "static"};
        gzip_static on;
        access_log {folder / "logs" / "static.access.log"} combined buffer=64k flush=5s;
        location / {{ try_files $uri $uri/index.html =404; }}
    }}"""
    temp = folder / "tmp"
    conf = f"""# Rendered by bench/front_cache.py from deploy/nginx/masthead.conf.
load_module {PURGE_MODULE};
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 2;
pid {folder / "nginx.pid"};
error_log {folder / "logs" / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {folder / "masthead.conf"};{static}
}}
"""
    path = folder / "nginx.conf"
    path.write_text(conf)
    return path


def start_nginx(conf: Path) -> None:
    subprocess.run(["nginx", "-t", "-q", "-c", str(conf), "-e", str(conf.parent / "logs" /
                    "error.log")], check=True)
    subprocess.run(["nginx", "-c", str(conf), "-e", str(conf.parent / "logs" / "error.log")],
                   check=True)


def stop_nginx(conf: Path) -> None:
    pid_file = conf.parent / "nginx.pid"
    if pid_file.exists():
        subprocess.run(["nginx", "-c", str(conf), "-e", str(conf.parent / "logs" /
                        "error.log"), "-s", "quit"], check=False)
        deadline = time.monotonic() + 10
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)


def fetch(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
        return response.status, dict(response.headers), response.read()


def wrk(port: int, path: str, seconds: float, headers: dict | None = None) -> float:
    """Requests per second of ``wrk -t2 -c16`` against 127.0.0.1:port; errors are fatal."""
    command = ["wrk", "-t2", "-c16", f"-d{seconds:g}s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(command + [f"http://127.0.0.1:{port}{path}"], check=True,
                            capture_output=True, text=True).stdout
    if "Non-2xx" in output:
        raise SystemExit(f"wrk saw error answers from {port}{path}:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def start_gunicorn(tree: Path, data_dir: Path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "masthead.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--log-level", "warning"],
        env=base_env(data_dir), cwd=tree,
    )
    try:
        wait_until_up(port, process)
    except BaseException:
        process.terminate()
        raise
    return process, port


def setup_demo(tree: Path, data_dir: Path) -> None:
    print(f"Preparing the demo site for {tree} in {data_dir} …", flush=True)
    subprocess.run([sys.executable, "-m", "masthead.cli", "setup", "--demo", "--no-admin"],
                   env=base_env(data_dir), cwd=tree, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


HIT_CPU = r"""
import io, os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "masthead.settings")
from django.core.wsgi import get_wsgi_application
app = get_wsgi_application()
path, n = sys.argv[1], int(sys.argv[2])
def call():
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "",
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1:8000",
               "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr,
               "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_ACCEPT_ENCODING": "gzip, br"}
    seen = {}
    body = app(environ, lambda status, headers, exc=None: seen.update(headers))
    b"".join(body)
    body.close()
    return seen.get("X-Masthead-Cache")
call(); assert call() == "hit", "the article is not served from the page cache"
start = time.process_time()
for _ in range(n):
    call()
print((time.process_time() - start) / n * 1e6)
"""


def hit_cpu_us(tree: Path, data_dir: Path, path: str, n: int = 2000) -> float:
    """CPU microseconds per page-cache hit, in-process (WSGI handler, no server or client)."""
    out = subprocess.run([sys.executable, "-c", HIT_CPU, path, str(n)], env=base_env(data_dir),
                         cwd=tree, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def article_path(port: int) -> str:
    _status, _headers, body = fetch(port, "/feeds/rss/")
    match = re.search(rb"<item><title>.*?</title><link>https?://[^/<]+(/[^<]+)</link>", body)
    if not match:
        raise SystemExit("no article link in the feed")
    return match.group(1).decode()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path,
                        help="a work tree of the code to compare the app's hit path with")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--seconds", type=float, default=8, help="seconds per wrk run (8)")
    parser.add_argument("--no-record", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    options = parser.parse_args(argv)
    missing = missing_tools()
    if missing:
        print(f"Missing: {', '.join(missing)}. Install them with:\n\n    {APT}\n")
        return 2

    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    load_before = os.getloadavg()[0]
    processes = []
    conf = None
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="masthead-front-") as tmp:
        tmp = Path(tmp)
        trees = {"now": ROOT}
        if options.baseline:
            trees["baseline"] = options.baseline.resolve()
        ports = {}
        try:
            for name, tree in trees.items():
                setup_demo(tree, tmp / f"data-{name}")
                process, port = start_gunicorn(tree, tmp / f"data-{name}")
                processes.append(process)
                ports[name] = port
            path = article_path(ports["now"])
            front, purge, static = free_port(), free_port(), free_port()
            conf = render_nginx_conf(tmp / "nginx", app_port=ports["now"], listen_port=front,
                                     purge_port=purge, static_port=static)
            # The static copy: the same HTML the app sends (identity and gzip).
            _s, _h, html = fetch(ports["now"], path, {"Accept-Encoding": "identity"})
            target = tmp / "nginx" / "static" / path.strip("/") / "index.html"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(html)
            target.with_name("index.html.gz").write_bytes(gzip.compress(html, 6, mtime=0))
            start_nginx(conf)
            for encoding in ("identity", "gzip"):
                fetch(front, path, {"Accept-Encoding": encoding})
                _s, headers, _b = fetch(front, path, {"Accept-Encoding": encoding})
                if headers.get("X-Cache-Status") != "HIT":
                    raise SystemExit(f"the front cache did not keep {path} ({encoding}): "
                                     f"{headers}")
            for port in ports.values():
                for _ in range(3):
                    fetch(port, path)
            print(f"Article {path} ({len(html):,} bytes, "
                  f"{len(target.with_name('index.html.gz').read_bytes()):,} gzipped)")

            cpu = {name: hit_cpu_us(tree, tmp / f"data-{name}", path)
                   for name, tree in trees.items()}
            for name, value in cpu.items():
                print(f"page-cache hit CPU ({name}): {value:,.0f} µs", flush=True)

            runs = [("front cache, identity", front, {}),
                    ("nginx static, identity", static, {}),
                    ("front cache, gzip", front, {"Accept-Encoding": "gzip"}),
                    ("nginx static, gzip", static, {"Accept-Encoding": "gzip"})]
            runs += [(f"gunicorn hit ({name})", port, {"Accept-Encoding": "gzip"})
                     for name, port in ports.items()]
            for round_ in range(1, options.rounds + 1):
                for label, port, headers in runs:
                    rps = wrk(port, path, options.seconds, headers)
                    rows.setdefault(label, []).append(rps)
                    print(f"round {round_} {label:28} {rps:10,.0f} req/s  "
                          f"(load {os.getloadavg()[0]:.1f})", flush=True)
        finally:
            if conf is not None:
                stop_nginx(conf)
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
    uptime_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()

    def ratio(a: str, b: str) -> str:
        pairs = [x / y for x, y in zip(rows[a], rows[b], strict=True) if y]
        return f"{median(pairs):.2f}× (rounds: {', '.join(f'{p:.2f}' for p in pairs)})"

    lines = [
        "| run | req/s, median of rounds | each round |",
        "| --- | ---: | --- |",
    ]
    for label, values in rows.items():
        lines.append(f"| {label} | {median(values):,.0f} | "
                     f"{', '.join(f'{v:,.0f}' for v in values)} |")
    summary = [
        f"- front cache ÷ nginx static, identity: {ratio('front cache, identity', 'nginx static, identity')}",  # noqa: E501
        f"- front cache ÷ nginx static, gzip: {ratio('front cache, gzip', 'nginx static, gzip')}",
    ]
    if "baseline" in cpu:
        summary += [
            f"- app's own hit path, gunicorn alone, now ÷ baseline: "
            f"{ratio('gunicorn hit (now)', 'gunicorn hit (baseline)')}",
            f"- CPU per page-cache hit in-process: {cpu['now']:,.0f} µs now, "
            f"{cpu['baseline']:,.0f} µs baseline ({cpu['baseline'] / cpu['now']:.1f}× less)",
        ]
    else:
        summary.append(f"- CPU per page-cache hit in-process: {cpu['now']:,.0f} µs")
    command = "python bench/front_cache.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    markdown = "\n".join([
        SECTION,
        "",
        f"Command: `{command.strip()}` (source: `bench/front_cache.py`; the baseline is a "
        "`git worktree` of the commit before the change). "
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Machine: {machine()}, {sharing(load_before)} — absolute figures move with the "
        "machine's load; the ratios come from runs interleaved round by round, so both "
        "sides of each ratio saw the same load. "
        f"`uptime` before: `{uptime_before}`; after: `{uptime_after}`.",
        "",
        "Setup: demo site (SQLite, diskcache), gunicorn `--workers 2` (sync), "
        "deploy/nginx/masthead.conf rendered onto loopback ports (nginx 2 workers) in front "
        "of it; \"nginx static\" is the same nginx serving the article's HTML from a file "
        "(`gzip_static` for the gzip run); client `wrk -t2 -c16` on the same machine, "
        f"{options.seconds:g} s per run, {options.rounds} rounds. \"gunicorn hit\" is the "
        "app's own page-cache hit with no front cache (gunicorn straight).",
        "",
        *lines,
        "",
        *summary,
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
