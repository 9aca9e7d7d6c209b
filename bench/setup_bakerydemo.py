"""Set up Wagtail's bakerydemo as the peer that ``bench/pages.py --cpu --peer DEST`` measures.

    python3 bench/setup_bakerydemo.py SOURCE [DEST]      # DEST defaults to /tmp/bakerydemo

SOURCE is a copy of the bakerydemo git repository: a bare git directory (what the sandbox's
snapshot of ``github:wagtail/bakerydemo`` gives, e.g. /work/.mirror/wagtail+bakerydemo/repo),
a checkout, or a git URL (cloned with ``git clone --bare``). This script never fetches
anything itself except through git for a URL and pip for the packages; a benchmark machine
without the web needs a local copy of the repository.

What it does, in DEST (which must be empty, missing, or a previous run's folder):

1. ``git archive <commit>`` of SOURCE extracted into DEST (``--commit``, default HEAD); the
   commit is written to ``DEST/.bakerydemo-commit``.
2. ``DEST/.venv`` with ``--python`` (default python3.11, the interpreter Masthead runs on, so
   the comparison is about the application), ``pip install -r requirements/base.txt``.
   bakerydemo pins Django 6.0 since January 2026 (commit 49cda62, a requirements-only
   change), and Django 6.0 needs Python 3.12: on an older interpreter the Django line is
   replaced by ``Django>=5.2,<5.3`` (``--django`` sets it explicitly), which its pinned
   Wagtail supports, written to ``requirements/bench.txt``. Everything else is as pinned.
   What got installed is written to ``DEST/requirements-installed.txt``.
3. Under ``bakerydemo.settings.base`` (what bench/pages.py uses) with SQLite
   (``DEST/bakerydemodb``; ``DATABASE_URL`` is ignored): ``migrate``, ``load_initial_data``
   (the demo content and its media) and ``collectstatic`` (the settings use
   ManifestStaticFilesStorage, which needs the manifest once DEBUG is off, as the bench
   turns it).
4. Checks, the way the bench renders (Django's test client, DEBUG off, host ``localhost``),
   that ``/`` and ``/blog/wild-yeast/`` answer 200, and that the blog page the bench picks
   (the first live BlogPage by id) is ``/blog/wild-yeast/``.

Set up and measured with (2026-12-01): bakerydemo commit
8e2b625755d8942412d5b7627b146a795933b8b2 (2026-08-19, "Add ingredients entries to demo data
and associated them to bread page"), Wagtail 7.4.4 (as pinned, ``wagtail>=7.4,<7.5``),
Django 5.2.19 in place of its 6.0 pin, Python 3.11.7; every version is in
``DEST/requirements-installed.txt``. The whole set-up takes a few minutes (mostly pip).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MARKER = ".bakerydemo-commit"
SETTINGS = "bakerydemo.settings.base"  # bench/pages.py renders the peer under these
PAGES = ("/", "/blog/wild-yeast/")

CHECK = r"""
import sys
import django
django.setup()
from django.conf import settings
from django.test import Client
settings.DEBUG = False
settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
from bakerydemo.blog.models import BlogPage
client = Client(HTTP_HOST="localhost")
failed = False
for path in sys.argv[1:]:
    status = client.get(path).status_code
    print(f"  GET {path} -> {status}")
    failed |= status != 200
first = BlogPage.objects.live().order_by("pk").first()
print(f"  the bench's blog page (first live BlogPage by id): {first.url}")
failed |= first.url != "/blog/wild-yeast/"
sys.exit(1 if failed else 0)
"""


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("$ " + " ".join(str(part) for part in command), flush=True)
    return subprocess.run(command, check=True, **kwargs)


def git_dir(source: str, scratch: Path) -> str:
    """A git directory for ``source``: itself if local (bare or a checkout), else a clone."""
    path = Path(source)
    if path.exists():
        if (path / ".git").exists():
            return str(path / ".git")
        return str(path)
    clone = scratch / "bakerydemo.git"
    run(["git", "clone", "--bare", "--quiet", source, str(clone)])
    return str(clone)


def prepare_destination(dest: Path) -> None:
    if dest.exists() and any(dest.iterdir()):
        if not (dest / MARKER).exists():
            raise SystemExit(f"{dest} is not empty and not a previous bakerydemo set-up; "
                             "choose another folder")
        print(f"Replacing the previous set-up in {dest}", flush=True)
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)


def python_version(python: str) -> tuple[int, int]:
    out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                         check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]), int(out[1])


def requirements(dest: Path, python: str, django: str | None) -> Path:
    """requirements/base.txt, with the Django line replaced when it has to be."""
    base = dest / "requirements" / "base.txt"
    text = base.read_text()
    line = re.search(r"^django\b.*$", text, re.I | re.M)
    if django is None and line and re.search(r">=\s*6", line.group(0)) \
            and python_version(python) < (3, 12):
        django = "Django>=5.2,<5.3"
        print(f"{line.group(0)} needs Python 3.12+; installing {django} instead", flush=True)
    if django is None:
        return base
    if line is None:
        raise SystemExit(f"no Django line in {base}")
    bench = base.with_name("bench.txt")
    bench.write_text(text[: line.start()] + django + text[line.end():])
    return bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="the bakerydemo repository: a bare git dir, a checkout "
                        "or a git URL (this script does not download it)")
    parser.add_argument("dest", nargs="?", default="/tmp/bakerydemo", type=Path,
                        help="where to set it up (default /tmp/bakerydemo)")
    parser.add_argument("--commit", default="HEAD", help="commit to use (default HEAD)")
    parser.add_argument("--python", default="python3.11",
                        help="interpreter for its venv (default python3.11)")
    parser.add_argument("--django", help="requirement replacing the Django line of "
                        "requirements/base.txt (default: only if the pin needs a newer Python)")
    options = parser.parse_args(argv)
    dest = options.dest.resolve()

    with tempfile.TemporaryDirectory(prefix="bakerydemo-src-") as scratch:
        repo = git_dir(options.source, Path(scratch))
        commit = subprocess.run(
            ["git", "--git-dir", repo, "rev-parse", "--verify", options.commit + "^{commit}"],
            check=True, capture_output=True, text=True).stdout.strip()
        print(f"bakerydemo commit {commit}", flush=True)
        prepare_destination(dest)
        archive = subprocess.Popen(["git", "--git-dir", repo, "archive", commit],
                                   stdout=subprocess.PIPE)
        run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout)
        archive.stdout.close()
        if archive.wait() != 0:
            raise SystemExit("git archive failed")
    (dest / MARKER).write_text(commit + "\n")

    venv = dest / ".venv"
    run([options.python, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([python, "-m", "pip", "install", "--quiet", "-r",
         str(requirements(dest, python, options.django))])
    frozen = run([python, "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    (dest / "requirements-installed.txt").write_text(frozen)

    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "DATABASE_NAME", "PYTHONPATH"}}
    env.update(DJANGO_SETTINGS_MODULE=SETTINGS, PYTHONPATH=str(dest))
    for command in (["migrate", "--noinput"], ["load_initial_data"],
                    ["collectstatic", "--noinput"]):
        run([python, "manage.py", *command], cwd=dest, env=env, stdout=subprocess.DEVNULL)
    print("Checking the pages the bench renders:", flush=True)
    if subprocess.run([python, "-c", CHECK, *PAGES], cwd=dest, env=env).returncode:
        raise SystemExit("bakerydemo does not render as the bench expects (see above)")
    versions = {name: v for name, v in re.findall(r"^([\w-]+)==(\S+)$", frozen, re.M)}
    print(f"Ready: {dest} (bakerydemo {commit[:12]}, Wagtail {versions.get('wagtail')}, "
          f"Django {versions.get('Django')}, "
          f"Python {'.'.join(map(str, python_version(python)))})")
    print(f"Measure it with: .venv/bin/python bench/pages.py --cpu --peer {dest}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:
        command = " ".join(str(part) for part in exc.cmd)
        sys.exit(f"failed (exit status {exc.returncode}): {command}")
