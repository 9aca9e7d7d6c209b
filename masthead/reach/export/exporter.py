"""Writing the static copy: render every public URL in-process, rewrite it for a static host,
keep a manifest so the next run re-renders only what publishing changed.

Pages are rendered by Django's test ``Client`` against the real URLconf with the Host header
of the copy's base URL, so every link, feed and sitemap is the one the site itself would
serve on that host; nothing goes over the network. The walk starts from every live public
page and the fixed reader URLs of each language (newsletter, search, support, feeds,
sitemaps) and follows the internal links it finds, so whatever a page links to — section
pages past the first, edition web versions, renditions, style sheets — is in the copy.
"""

from __future__ import annotations

import fcntl
import hashlib
import html
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.files.storage import default_storage
from django.test import Client, RequestFactory, override_settings
from django.utils import translation
from tqdm import tqdm
from wagtail.models import Page, Site

from . import rewrite
from .rewrite import Link, Rewriter

log = logging.getLogger(__name__)

MANIFEST = ".masthead-export.json"
MANIFEST_VERSION = 2
LOCK = ".masthead-export.lock"
# Pages whose content is their own; every other page lists others and is re-rendered on
# any change (home, sections, newsletter pages, feeds, sitemaps).
SELF_CONTAINED = {("publishing", "articlepage"), ("publishing", "standardpage")}
FIXED_PATHS = (
    "newsletter/",
    "newsletter/latest/",
    "search/",
    "support/",
    "feeds/rss/",
    "feeds/atom/",
)
ROOT_PATHS = ("/sitemap.xml", "/news-sitemap.xml", "/robots.txt", "/favicon.ico")


@dataclass
class ExportReport:
    directory: Path
    full: bool = True
    written: list[str] = field(default_factory=list)  # files whose content changed
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    rendered: int = 0
    missing: list[str] = field(default_factory=list)  # internal URLs that did not render
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    search_seconds: float = 0.0
    archive: Path | None = None


def export_static(
    directory: str | Path,
    *,
    base_url: str | None = None,
    live_url: str | None = None,
    incremental: bool = False,
    archive: str | Path | None = None,
    progress: bool = False,
    search_index: bool = True,
) -> ExportReport:
    """Write the public site into ``directory`` as files for a static host.

    ``base_url`` is where the copy will be served (feeds and sitemaps name it; default
    ``MASTHEAD_BASE_URL``); forms post to ``live_url`` (default
    ``MASTHEAD_STATIC_FORMS_URL``) or, without one, give way to the email alternative.
    """
    started = time.monotonic()
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one export into a directory at a time
        export = _Export(directory, base_url, live_url, progress)
        report = export.run(incremental)
        if report.written or report.removed or not (directory / "pagefind").exists():
            if search_index:
                report.search_seconds = build_search_index(directory)
    if archive:
        report.archive = write_archive(directory, Path(archive))
    for path in directory.rglob("*"):
        if path.is_file() and not path.name.startswith(".masthead-export"):
            report.files += 1
            report.bytes += path.stat().st_size
    report.seconds = time.monotonic() - started
    return report


class _Export:
    def __init__(self, directory: Path, base_url, live_url, progress: bool):
        self.directory = directory
        self.base_url = (base_url or settings.MASTHEAD_BASE_URL).rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"Not an http(s) base URL: {self.base_url!r}")
        self.host = parts.netloc
        self.secure = parts.scheme == "https"
        self.live_url = (
            live_url if live_url is not None else settings.MASTHEAD_STATIC_FORMS_URL
        ).rstrip("/")
        self.progress = progress
        self.prefixes = tuple(
            f"/{code}" for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE
        )
        main = settings.MASTHEAD_BASE_URL.rstrip("/")
        self.main_origins = [main]
        hosts = {self.host, urlsplit(main).netloc, "testserver"}
        for site in Site.objects.all():
            hosts.update({site.hostname, f"{site.hostname}:{site.port}"})
            self.main_origins.append(site.root_url)
        self.rewriter = Rewriter(
            origin=f"{parts.scheme}://{self.host}",
            internal_hosts=frozenset(hosts),
            language_prefixes=self.prefixes,
            live_url=self.live_url,
            subscribe_email=subscribe_email(),
        )

    # --- what there is to export ------------------------------------------------------------

    def pages(self) -> dict[str, dict]:
        """Live public pages: id → path, kind, last published time, translation key."""
        request = RequestFactory().get("/", HTTP_HOST=self.host)
        found = {}
        pages = Page.objects.live().public().filter(depth__gt=1).select_related("content_type")
        for page in pages.iterator(chunk_size=500):
            parts = page.get_url_parts(request)
            if parts is None:
                continue
            kind = (
                "page"
                if (page.content_type.app_label, page.content_type.model) in SELF_CONTAINED
                else "listing"
            )
            found[str(page.pk)] = {
                "path": parts[2],
                "kind": kind,
                "published": page.last_published_at.isoformat() if page.last_published_at else "",
                "translation_key": str(page.translation_key),
            }
        return found

    def fixed(self) -> list[str]:
        paths = list(ROOT_PATHS)
        for prefix in ("", *self.prefixes):
            paths += [f"{prefix}/{path}" for path in FIXED_PATHS]
        return paths

    # --- the walk ---------------------------------------------------------------------------

    def run(self, incremental: bool) -> ExportReport:
        report = ExportReport(self.directory)
        old = self.load_manifest() if incremental else None
        pages = self.pages()
        by_path = {info["path"]: (pid, info["kind"]) for pid, info in pages.items()}
        urls: dict[str, dict] = {}
        files: dict[str, str] = {}
        seeds: list[Link] = []
        keep_known: set[str] = set()

        if old is not None:
            report.full = False
            changed = {pid for pid, info in pages.items() if old["pages"].get(pid) != _state(info)}
            gone = set(old["pages"]) - set(pages)
            if not changed and not gone:
                report.unchanged = len(old["files"])
                return report
            keys = {pages[pid]["translation_key"] for pid in changed}
            changed |= {pid for pid, info in pages.items() if info["translation_key"] in keys}
            # carry everything over; what is re-rendered replaces its entry
            urls, files = dict(old["urls"]), dict(old["files"])
            for key, entry in old["urls"].items():
                if entry.get("page") in gone:
                    continue
                if entry["kind"] == "listing":
                    path, _, query = key.partition("?")
                    seeds.append(Link(path, query, entry["file"]))
                else:
                    keep_known.add(key)
            by_page: dict[str, list[str]] = {}
            for key, entry in urls.items():
                if entry.get("page"):
                    by_page.setdefault(entry["page"], []).append(key)

            def drop(pid: str, keep: str = "") -> None:
                for key in by_page.get(pid, ()):
                    if key != keep and key in urls:  # unpublished, moved or renamed
                        self.remove(urls[key]["file"], report)
                        files.pop(urls.pop(key)["file"], None)

            for pid in gone:
                drop(pid)
            for pid in changed:
                path = pages[pid]["path"]
                drop(pid, keep=path)
                keep_known.discard(path)
                seeds.append(Link(path, "", rewrite.file_for(path)))
        else:
            for info in pages.values():
                seeds.append(Link(info["path"], "", rewrite.file_for(info["path"])))
            for path in self.fixed():
                seeds.append(Link(path, "", rewrite.file_for(path)))

        queue: deque[Link] = deque()
        seen: set[str] = set()

        def found(link: Link) -> None:
            key = link.path + (f"?{link.query}" if link.query else "")
            if key in seen or key in keep_known:
                return
            seen.add(key)
            queue.append(link)
            bar.total += 1

        bar = tqdm(total=0, unit="file", disable=not self.progress, desc="export")
        for link in seeds:
            found(link)
        client = Client(HTTP_HOST=self.host, raise_request_exception=False)
        hostname = self.host.rsplit(":", 1)[0].strip("[]")
        with override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, hostname]):
            while queue:
                link = queue.popleft()
                key = link.path + (f"?{link.query}" if link.query else "")
                body = self.render(client, link, found, report)
                bar.update(1)
                if body is None:
                    gone_entry = urls.pop(key, None)
                    if gone_entry:  # a listing page that no longer exists (an older page)
                        self.remove(gone_entry["file"], report)
                        files.pop(gone_entry["file"], None)
                    continue
                report.rendered += 1
                self.write(link.file, body, files, report)
                page = by_path.get(link.path)
                kind = (
                    "asset"
                    if link.path.startswith((settings.STATIC_URL, settings.MEDIA_URL))
                    else page[1]
                    if page and not link.query
                    else "listing"
                )
                urls[key] = {"file": link.file, "kind": kind, "page": page[0] if page else None}
        bar.close()
        self.write("static-search.js", rewrite.SEARCH_JS.encode(), files, report)
        if old is None:
            # a full export: files an earlier export wrote that nothing refers to any more
            previous = self.load_manifest()
            for stale in set(previous["files"]) - set(files) if previous else ():
                self.remove(stale, report)
        self.save_manifest(pages, urls, files)
        return report

    def render(self, client: Client, link: Link, found, report: ExportReport) -> bytes | None:
        if link.path.startswith((settings.STATIC_URL, settings.MEDIA_URL)):
            body = asset_bytes(link.path)
            if body is not None:
                kind = "text/css" if link.path.endswith(".css") else ""
                return self.transform(link, body, kind, found)
        query = dict([link.query.split("=")]) if link.query else None
        response = client.get(link.path, data=query, secure=self.secure)
        if response.status_code in (301, 302, 303, 307, 308):
            target = self.rewriter.target(
                response["Location"], self.base_url + link.path, link.file, found
            )
            if not target:
                report.missing.append(f"{link.path} (redirect to {response['Location']})")
                return None
            target = html.escape(target, quote=True)
            return (
                f'<!DOCTYPE html><meta charset="utf-8"><meta http-equiv="refresh" '
                f'content="0; url={target}"><title>…</title><a href="{target}">{target}</a>'
            ).encode()
        if response.status_code != 200:
            report.missing.append(f"{link.path} ({response.status_code})")
            return None
        body = b"".join(response.streaming_content) if response.streaming else response.content
        return self.transform(link, body, response.get("Content-Type", ""), found)

    def transform(self, link: Link, body: bytes, content_type: str, found) -> bytes:
        if content_type.startswith("text/html"):
            text = body.decode()
            lang = self.language(link.path)
            with translation.override(lang):
                text = self.rewriter.html(text, link.path, link.file, found, lang)
                if rewrite.language_free(link.path, self.prefixes) == "/search/":
                    root = "../" * link.file.count("/") or "./"
                    text = rewrite.search_page(text, root)
            return text.encode()
        if content_type.startswith("text/css"):
            text = rewrite.css(body.decode(), link.path, link.file, self.rewriter, found)
            return text.encode()
        if "xml" in content_type or link.path == "/robots.txt":
            text = rewrite.absolute_in_xml(body.decode(), self.main_origins, self.base_url)
            return text.encode()
        return body

    def language(self, path: str) -> str:
        for prefix in self.prefixes:
            if path.startswith(prefix + "/"):
                return prefix[1:]
        return settings.LANGUAGE_CODE

    # --- files ------------------------------------------------------------------------------

    def write(self, name: str, body: bytes, files: dict, report: ExportReport) -> None:
        digest = hashlib.sha256(body).hexdigest()
        target = (self.directory / name).resolve()
        if not target.is_relative_to(self.directory):
            raise ValueError(f"{name!r} is outside the export directory")
        if files.get(name) == digest and target.exists():
            report.unchanged += 1
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(body)
        os.replace(partial, target)
        files[name] = digest
        report.written.append(name)

    def remove(self, name: str, report: ExportReport) -> None:
        target = self.directory / name
        if target.is_file():
            target.unlink()
            report.removed.append(name)

    def load_manifest(self) -> dict | None:
        try:
            data = json.loads((self.directory / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        same = (data.get("version"), data.get("base_url"), data.get("live_url")) == (
            MANIFEST_VERSION,
            self.base_url,
            self.live_url,
        )
        return data if same else None

    def save_manifest(self, pages: dict, urls: dict, files: dict) -> None:
        data = {
            "version": MANIFEST_VERSION,
            "base_url": self.base_url,
            "live_url": self.live_url,
            "pages": {pid: _state(info) for pid, info in pages.items()},
            "urls": urls,
            "files": files,
        }
        partial = self.directory / (MANIFEST + ".partial")
        partial.write_text(json.dumps(data, sort_keys=True))
        os.replace(partial, self.directory / MANIFEST)


def _state(page: dict) -> str:
    """What, when it changes, makes a page's file stale: a publication or a new address."""
    return f"{page['published']} {page['path']}"


def subscribe_email() -> str:
    """The address a reader writes to for the newsletter (email as a way in)."""
    return getattr(settings, "MASTHEAD_REACH_SUBSCRIBE_EMAIL", "")


def asset_bytes(path: str) -> bytes | None:
    """A static file or an upload read from disk (faster than a request), None if absent."""
    if path.startswith(settings.STATIC_URL):
        name = path[len(settings.STATIC_URL) :]
        collected = Path(settings.STATIC_ROOT) / name
        if ".." not in name and collected.is_file():
            return collected.read_bytes()
        source = finders.find(name)
        return Path(source).read_bytes() if source else None
    name = path[len(settings.MEDIA_URL) :]
    if ".." in name or not name:
        return None
    try:
        with default_storage.open(name) as handle:
            return handle.read()
    except (OSError, ValueError):
        return None


def build_search_index(directory: Path) -> float:
    """Pagefind over the copy: ``pagefind/`` with the index and its UI, served by the copy."""
    started = time.monotonic()
    shutil.rmtree(directory / "pagefind", ignore_errors=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pagefind",
            "--site",
            str(directory),
            "--keep-index-url",
            "--silent",
        ],
        check=True,
    )
    return time.monotonic() - started


def write_archive(directory: Path, archive: Path) -> Path:
    """The copy as one ``.zip`` or ``.tar.gz`` (by the name's extension), for upload."""
    archive = archive.resolve()
    archive.parent.mkdir(parents=True, exist_ok=True)
    members = sorted(
        path
        for path in directory.rglob("*")
        if path.is_file() and not path.name.startswith(".masthead-export") and path != archive
    )
    partial = archive.with_name(archive.name + ".partial")
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
            for path in members:
                out.write(path, path.relative_to(directory).as_posix())
    else:
        with tarfile.open(partial, "w:gz") as out:
            for path in members:
                out.add(path, path.relative_to(directory).as_posix())
    os.replace(partial, archive)
    return archive
