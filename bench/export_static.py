"""Static-copy benchmark: ``masthead export-static`` time and size for the demo site and for a
site of many articles, and an incremental export after one publication. Not a test.

    .venv/bin/python bench/export_static.py                        # demo + 10,000 articles
    .venv/bin/python bench/export_static.py --articles 2000 --no-record

It builds a throw-away data folder (SQLite, the demo site), exports it, publishes one
article and exports again with ``--incremental``; then imports generated articles through
the importer (``masthead.publishing.importer.import_article``, text only: no lead images, so
the time is the pages' and not Pillow's) until ``--articles`` or ``--import-seconds`` is
reached, and does the same. When the import budget stops it short, the 10,000-article
figures are extrapolated linearly from the measured ones and marked as such. Everything
runs in this process (the export is the function the command calls); figures go to stdout
and, unless ``--no-record``, replace the "## Static export" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Static export"
sys.path.insert(0, str(ROOT))

from bench.pages import machine, record  # noqa: E402

WORDS = (
    "harbour council river ferry winter library orchard printing tram depot island quay "
    "budget contract archive reporter volunteer station market bridge school hospital "
    "election festival museum railway factory garden bakery theatre clinic workshop "
    "lantern signal mountain valley border village district mayor court teacher "
    "shipyard lighthouse granary vineyard forestry observatory cathedral bicycle"
).split()
WORDS_RU = "гавань совет река паром зима библиотека сад трамвай остров рынок мост школа".split()


def article(number: int, rng: random.Random) -> dict:
    russian = number % 5 == 0
    words = WORDS_RU if russian else WORDS

    def sentence() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(8, 18))).capitalize() + "."

    paragraphs = "".join(
        f"<p>{' '.join(sentence() for _ in range(4))}</p>" for _ in range(rng.randint(4, 8))
    )
    sections = ["Новости", "Мнения"] if russian else ["News", "Features", "Opinion", "Culture"]
    return {
        "external_id": f"bench-{number:06d}",
        "section": sections[number % len(sections)],
        "language": "ru" if russian else "en",
        "age_hours": 48 + number,
        "headline": f"{sentence()[:-1][:90]} ({number})",
        "standfirst": sentence(),
        "authors": [f"Reporter {number % 40}"],
        "tags": [rng.choice(WORDS)],
        "body": paragraphs + f"<p>Unique marker word bench{number}x.</p>",
    }


def du(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def timed_export(directory: Path, **kwargs):
    from masthead.reach.export import export_static

    started = time.monotonic()
    report = export_static(directory, base_url="https://static-mirror.example", **kwargs)
    return report, time.monotonic() - started


def publish_one():
    from masthead.publishing.models import ArticlePage

    page = ArticlePage.objects.live().filter(locale__language_code="en").order_by("-pk").first()
    page.standfirst = f"Updated at {datetime.now(UTC):%H:%M:%S}."
    page.save_revision().publish()


def measure(name: str, directory: Path, articles: int) -> dict:
    print(f"[{name}] full export of {articles} articles …", flush=True)
    full, full_s = timed_export(directory, progress=True)
    files, size = du(directory)
    publish_one()
    print(f"[{name}] incremental export after one publication …", flush=True)
    inc, inc_s = timed_export(directory, incremental=True)
    return {
        "name": name,
        "articles": articles,
        "full_s": full_s,
        "search_s": full.search_seconds,
        "files": files,
        "bytes": size,
        "pages": full.rendered,
        "missing": len(full.missing),
        "inc_s": inc_s,
        "inc_rendered": inc.rendered,
        "inc_written": len(inc.written),
        "inc_search_s": inc.search_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--import-seconds", type=float, default=600)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    options = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="masthead-bench-export-"))
    for key in ("DATABASE_URL", "CACHE_URL", "REDIS_URL", "MASTHEAD_TESTING", "MASTHEAD_DEBUG"):
        os.environ.pop(key, None)
    os.environ.update(MASTHEAD_DATA_DIR=str(tmp / "data"), LOG_LEVEL="WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "masthead.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from masthead.publishing.importer import import_article
    from masthead.publishing.models import ArticlePage

    load_before = os.getloadavg()[0]
    call_command("setup", "--demo", "--no-admin", verbosity=0)
    results = [measure("demo", tmp / "demo-copy", ArticlePage.objects.live().count())]

    rng = random.Random(11)
    started, imported = time.monotonic(), 0
    print(f"importing up to {options.articles} articles …", flush=True)
    while imported < options.articles and time.monotonic() - started < options.import_seconds:
        import_article(article(imported, rng), tmp)
        imported += 1
        if imported % 500 == 0:
            print(f"  {imported} in {time.monotonic() - started:.0f} s", flush=True)
    import_s = time.monotonic() - started
    total = ArticlePage.objects.live().count()
    big = measure(f"{total} articles", tmp / "big-copy", total)
    big["import_s"], big["imported"] = import_s, imported
    results.append(big)
    load_after = os.getloadavg()[0]

    lines = [
        SECTION,
        "",
        f"Command: `python bench/export_static.py` (source: `bench/export_static.py`). "
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Machine: {machine()}. SQLite, diskcache page cache (the one-box defaults); the export "
        "runs in-process (`export_static()`, what `masthead export-static` calls) with "
        "`--base-url https://static-mirror.example`, no live host (forms give way to the "
        "email alternative), Pagefind's index built at the end. "
        f"1-minute load average {load_before:.1f} before and {load_after:.1f} after the run "
        "(other work shares the machine).",
        "",
        "| site | articles | full export s | of which Pagefind s | URLs rendered | files | "
        "size MB | incremental after 1 publication s | URLs re-rendered | files rewritten |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['articles']:,} | {r['full_s']:.1f} | {r['search_s']:.1f} | "
            f"{r['pages']:,} | {r['files']:,} | {r['bytes'] / 1e6:.1f} | {r['inc_s']:.1f} | "
            f"{r['inc_rendered']:,} | {r['inc_written']:,} |"
        )
    lines.append("")
    lines.append(
        f"Generated articles: {big['imported']:,} imported through `import_article()` in "
        f"{big['import_s']:.0f} s ({big['imported'] / big['import_s']:.1f}/s; text only, 4–8 "
        "paragraphs, 80 % English, 20 % Russian, six sections)."
    )
    if big["imported"] < options.articles:
        per = big["full_s"] / big["articles"]
        estimate = per * (options.articles + results[0]["articles"])
        mb = big["bytes"] / big["articles"] * (options.articles + results[0]["articles"]) / 1e6
        lines.append(
            f"**Extrapolated, not measured:** the import budget ({options.import_seconds:.0f} s) "
            f"stopped at {big['imported']:,} of {options.articles:,} articles. At the measured "
            f"{per * 1000:.0f} ms and {big['bytes'] / big['articles'] / 1e3:.0f} kB per "
            f"article (all pages, listings and assets included), a full export of "
            f"{options.articles:,} articles would take about {estimate / 60:.0f} min and "
            f"{mb:.0f} MB. An incremental export re-renders the listing pages (home, sections "
            "and their older pages, feeds, sitemaps, newsletter pages), whose number grows "
            "with the article count divided by the 20 teasers a section page shows: about "
            f"{big['inc_rendered'] * options.articles / big['articles']:.0f} URLs and "
            f"{big['inc_s'] * options.articles / big['articles']:.0f} s at "
            f"{options.articles:,} articles, scaled linearly."
        )
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    if not options.no_record:
        record(markdown, options.output, SECTION)
        print(f"recorded in {options.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
