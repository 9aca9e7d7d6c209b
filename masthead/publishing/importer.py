"""Importing articles from JSON Lines (one article per line; schema in docs/import.md).

:func:`import_article` is the one write: it validates a decoded line, then in one transaction
creates or updates the article found by ``external_id`` (so re-importing updates), its
section, authors, tags and lead image, and publishes it. A line that fails leaves nothing
behind. :func:`import_file` runs it over a file, reporting each bad line with its number and
reason while the good lines still import.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import markdown as markdown_lib
import nh3
from django.core.exceptions import ValidationError
from django.core.files.images import ImageFile
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify
from wagtail.models import Locale, Page

from .licences import parse_licence
from .models import ArticleAuthor, ArticlePage, Author, HomePage, NewsImage, SectionPage

MAX_LINE_BYTES = 2_000_000
MAX_IMAGE_BYTES = 20_000_000
ALLOWED_TAGS = {
    "p", "h2", "h3", "h4", "blockquote", "ul", "ol", "li", "a", "strong", "b", "em", "i",
    "br", "cite", "code", "sup", "sub",
}
ALLOWED_ATTRIBUTES = {"a": {"href"}}
INLINE_TAGS = {"a", "strong", "b", "em", "i", "br", "cite", "code", "sup", "sub"}


class ImportError_(ValueError):
    """A line that cannot be imported; the message says why, for a person."""


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.created + self.updated


# --- body conversion --------------------------------------------------------------------------


def sanitise_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


class _BlockSplitter(HTMLParser):
    """Splits sanitised HTML into top-level blocks: paragraphs, subheads, quotes, lists."""

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.blocks: list[tuple[str, str]] = []
        self.depth = 0
        self.current_tag: str | None = None
        self.buffer: list[str] = []
        self.loose: list[str] = []

    def _flush_loose(self):
        text = "".join(self.loose).strip()
        if text:
            self.blocks.append(("paragraph", f"<p>{text}</p>"))
        self.loose = []

    def handle_starttag(self, tag, attrs):
        raw = self.get_starttag_text() or f"<{tag}>"
        if self.depth == 0 and tag not in INLINE_TAGS:
            self._flush_loose()
            self.current_tag = tag
            self.buffer = []
            if tag != "br":
                self.depth = 1
            return
        if self.depth == 0:
            self.loose.append(raw)
            return
        if tag == self.current_tag:
            self.depth += 1
        self.buffer.append(raw)

    def handle_endtag(self, tag):
        if self.depth == 0:
            self.loose.append(f"</{tag}>")
            return
        if tag == self.current_tag:
            self.depth -= 1
            if self.depth == 0:
                self._finish_block()
                return
        self.buffer.append(f"</{tag}>")

    def handle_data(self, data):
        (self.buffer if self.depth else self.loose).append(data)

    def handle_entityref(self, name):
        self.handle_data(f"&{name};")

    def handle_charref(self, name):
        self.handle_data(f"&#{name};")

    def _finish_block(self):
        inner = "".join(self.buffer).strip()
        tag = self.current_tag
        self.current_tag = None
        if not inner:
            return
        if tag in {"h2", "h3", "h4"}:
            self.blocks.append(("subhead", nh3.clean(inner, tags=set())))
        elif tag == "blockquote":
            text = nh3.clean(inner.replace("</p>", "\n"), tags=set()).strip()
            self.blocks.append(("quote", {"quote": text, "attribution": ""}))
        elif tag in {"ul", "ol"}:
            self.blocks.append(("paragraph", f"<{tag}>{inner}</{tag}>"))
        else:
            self.blocks.append(("paragraph", f"<p>{inner}</p>"))

    def close(self):
        super().close()
        if self.depth and self.current_tag:
            self.depth = 0
            self._finish_block()
        self._flush_loose()


def body_blocks(body: str, body_format: str = "html") -> list[tuple[str, object]]:
    """StreamField blocks for an imported body given as HTML or Markdown."""
    if body_format == "markdown":
        html = markdown_lib.markdown(body, output_format="html")
    elif body_format == "html":
        html = body
    else:
        raise ImportError_(f"body_format must be 'html' or 'markdown', not {body_format!r}")
    splitter = _BlockSplitter()
    splitter.feed(sanitise_html(html))
    splitter.close()
    return splitter.blocks


# --- validation --------------------------------------------------------------------------------


def _text(data: dict, key: str, *, required: bool = False, max_length: int | None = None) -> str:
    value = data.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ImportError_(f"{key} must be a string")
    value = value.strip()
    if required and not value:
        raise ImportError_(f"{key} is required")
    if max_length and len(value) > max_length:
        raise ImportError_(f"{key} is longer than {max_length} characters")
    return value


def _string_list(data: dict, key: str) -> list[str]:
    value = data.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImportError_(f"{key} must be a list of strings")
    return [v.strip() for v in value if v.strip()]


def _published_at(data: dict) -> datetime:
    raw = data.get("published_at")
    if raw in (None, ""):
        return timezone.now()
    if not isinstance(raw, str):
        raise ImportError_("published_at must be an ISO 8601 date-time string")
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise ImportError_(f"published_at {raw!r} is not an ISO 8601 date-time")
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return value


def _locale(data: dict) -> Locale:
    code = _text(data, "language") or "en"
    try:
        return Locale.objects.get(language_code=code)
    except Locale.DoesNotExist:
        from django.conf import settings

        if code not in dict(settings.WAGTAIL_CONTENT_LANGUAGES):
            known = ", ".join(dict(settings.WAGTAIL_CONTENT_LANGUAGES))
            raise ImportError_(f"language {code!r} is not one of the site's languages ({known})")
        return Locale.objects.create(language_code=code)


# --- the write ---------------------------------------------------------------------------------


def home_for(locale: Locale) -> HomePage:
    """The home page in ``locale``, created as a translation of the default home if missing."""
    home = HomePage.objects.filter(locale=locale).first()
    if home:
        return home
    default = HomePage.objects.order_by("id").first()
    if default is None:
        raise ImportError_("the site has no home page yet: run `masthead setup` first")
    return default.copy_for_translation(locale, copy_parents=True, alias=False).specific


def section_for(title: str, locale: Locale) -> SectionPage:
    home = home_for(locale)
    slug = slugify(title, allow_unicode=True)[:200] or "section"
    section = SectionPage.objects.child_of(home).filter(slug=slug).first()
    if section is None:
        section = SectionPage.objects.child_of(home).filter(title=title).first()
    if section is None:
        section = SectionPage(title=title, slug=slug, locale=locale, show_in_menus=True)
        home.add_child(instance=section)
        section.save_revision().publish()
    return section.specific


def _lead_image(
    spec: object, base_dir: Path, created_files: list[str]
) -> tuple[NewsImage | None, str]:
    """The lead image (found by content hash, else created) and this article's caption."""
    if spec in (None, ""):
        return None, ""
    if not isinstance(spec, dict):
        raise ImportError_("lead_image must be an object with path, caption, credit, licence")
    path_text = _text(spec, "path", required=True)
    path = Path(path_text)
    if not path.is_absolute():
        path = base_dir / path
    try:
        path = path.resolve(strict=True)
    except (FileNotFoundError, OSError):
        raise ImportError_(f"lead_image.path {path_text!r} does not exist")
    if not path.is_file():
        raise ImportError_(f"lead_image.path {path_text!r} is not a file")
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise ImportError_(f"lead_image.path {path_text!r} is larger than 20 MB")
    licence_text = _text(spec, "licence") or "All rights reserved"
    try:
        licence = parse_licence(licence_text)
    except ValueError as exc:
        raise ImportError_(f"lead_image.licence: {exc}")
    caption = _text(spec, "caption", max_length=2000)
    credit = _text(spec, "credit", max_length=255)
    content = path.read_bytes()
    # Same hash as Wagtail's own ``file_hash`` (SHA-1 of the bytes), so a re-import, or a
    # photo already uploaded through the admin, reuses the image instead of duplicating it.
    digest = hashlib.sha1(content).hexdigest()  # noqa: S324 - de-duplication, not security
    image = NewsImage.objects.filter(file_hash=digest).first()
    if image is None:
        _check_image(content, path_text)
        with path.open("rb") as handle:
            image = NewsImage(
                title=(caption or path.stem)[:255],
                file=ImageFile(handle, name=path.name),
                caption=caption,
                credit=credit,
                licence=licence,
                file_hash=digest,
                file_size=len(content),
            )
            try:
                image.full_clean(exclude=["collection", "file_hash", "file_size"])
            except ValidationError as exc:
                raise ImportError_(
                    f"lead_image.path {path_text!r} is not a usable image: "
                    + " ".join(exc.messages)
                )
            image.save()
            created_files.append(image.file.name)
    else:
        # Credit and licence belong to the photo; the caption may differ per article (a
        # translation captions it in its own language), so the article keeps its own.
        if (image.credit, image.licence) != (credit, licence):
            image.credit, image.licence = credit, licence
            image.save(update_fields=["credit", "licence"])
        if not image.caption and caption:
            image.caption = caption
            image.save(update_fields=["caption"])
    return image, caption


def _check_image(content: bytes, path_text: str) -> None:
    """Refuse files Pillow cannot read as an image (and decompression bombs)."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(io.BytesIO(content)) as probe:
            probe.verify()
    except (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as exc:
        raise ImportError_(f"lead_image.path {path_text!r} is not a readable image ({exc})")


def import_article(data: object, base_dir: Path) -> tuple[ArticlePage, bool]:
    """Create or update one article from a decoded JSON line. Returns (page, created).

    Atomic: if anything fails, no page, section, author, image row or image file is left.
    """
    # Files written to storage for this line are deleted again if its transaction rolls
    # back: the database forgets the image row, so the disk must forget the file.
    created_files: list[str] = []
    try:
        return _import_article(data, base_dir, created_files)
    except BaseException:
        from django.core.files.storage import default_storage

        for name in created_files:
            default_storage.delete(name)
        raise


def _import_article(
    data: object, base_dir: Path, created_files: list[str]
) -> tuple[ArticlePage, bool]:
    """Create or update one article from a decoded JSON line. Returns (page, created)."""
    if not isinstance(data, dict):
        raise ImportError_("each line must be a JSON object")
    external_id = _text(data, "external_id", required=True, max_length=255)
    headline = _text(data, "headline", required=True, max_length=255)
    standfirst = _text(data, "standfirst", max_length=2000)
    section_title = _text(data, "section", required=True, max_length=255)
    body = data.get("body", "")
    if not isinstance(body, str):
        raise ImportError_("body must be a string of HTML or Markdown")
    blocks = body_blocks(body, _text(data, "body_format") or "html")
    author_names = _string_list(data, "authors")
    tags = _string_list(data, "tags")
    if any(len(t) > 100 for t in tags):
        raise ImportError_("a tag is longer than 100 characters")
    published_at = _published_at(data)
    locale = _locale(data)
    translation_of = _text(data, "translation_of")

    with transaction.atomic():
        image, caption = _lead_image(data.get("lead_image"), base_dir, created_files)
        section = section_for(section_title, locale)
        page = ArticlePage.objects.filter(external_id=external_id).first()
        created = page is None
        if created:
            original = None
            if translation_of:
                original = ArticlePage.objects.filter(external_id=translation_of).first()
                if original is None:
                    raise ImportError_(
                        f"translation_of {translation_of!r}: no article with that external_id "
                        "(put the original earlier in the file)"
                    )
            page = ArticlePage(external_id=external_id, locale=locale)
            if original is not None:
                if original.locale_id == locale.id:
                    raise ImportError_("translation_of points at an article in the same language")
                page.translation_key = original.translation_key
        elif page.locale_id != locale.id:
            raise ImportError_("an existing article cannot change its language on re-import")
        page.title = headline
        page.standfirst = standfirst
        page.body = blocks
        page.lead_image = image
        page.lead_caption = caption if image and caption != image.caption else ""
        page.published_at = published_at
        page.first_published_at = page.first_published_at or published_at
        base_slug = slugify(headline, allow_unicode=True)[:200] or "article"
        if created:
            page.slug = _free_slug(section, base_slug)
            section.add_child(instance=page)
        elif page.get_parent().id != section.id:
            page.move(section, pos="last-child")
            page.refresh_from_db()
            page.title, page.standfirst, page.body = headline, standfirst, blocks
            page.lead_image, page.published_at = image, published_at
            page.lead_caption = caption if image and caption != image.caption else ""
        page.article_authors = [
            ArticleAuthor(author=_author(name), sort_order=i) for i, name in enumerate(author_names)
        ]
        page.tags.set(tags)
        revision = page.save_revision()
        revision.publish()
    return page, created


def _author(name: str) -> Author:
    if len(name) > 255:
        raise ImportError_("an author name is longer than 255 characters")
    slug = slugify(name, allow_unicode=True)[:255] or "author"
    author, _ = Author.objects.get_or_create(slug=slug, defaults={"name": name})
    return author


def _free_slug(parent: Page, base: str) -> str:
    slug, n = base, 2
    while parent.get_children().filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _lines(handle) -> Iterator[tuple[int, bytes, bool]]:
    """(number, line, too_long) for each line, never holding more than 2 MB of one line."""
    number = 0
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        too_long = len(raw) > MAX_LINE_BYTES
        if too_long:
            # Skip the rest of the over-long line, a chunk at a time.
            while raw and not raw.endswith(b"\n"):
                raw = handle.readline(MAX_LINE_BYTES)
            raw = b""
        yield number, raw, too_long


def import_file(
    path: Path,
    *,
    progress: Callable[[int], object] | None = None,
    on_error: Callable[[int, str], object] | None = None,
) -> ImportReport:
    """Import every line of ``path``; bad lines are reported, never fatal."""
    report = ImportReport()
    base_dir = path.resolve().parent
    with path.open("rb") as handle:
        for number, raw, too_long in _lines(handle):
            if progress:
                progress(1)
            if not too_long and not raw.strip():
                continue
            try:
                if too_long:
                    raise ImportError_("line is longer than 2 MB")
                try:
                    # utf-8-sig: files saved by Windows editors start with a byte-order mark.
                    data = json.loads(raw.decode("utf-8-sig"))
                except UnicodeDecodeError:
                    raise ImportError_("line is not valid UTF-8")
                except json.JSONDecodeError as exc:
                    raise ImportError_(f"invalid JSON: {exc.msg} at column {exc.colno}")
                except RecursionError:
                    raise ImportError_("invalid JSON: nested too deeply")
                _page, created = import_article(data, base_dir)
            except ValidationError as exc:
                message = "; ".join(
                    f"{name}: {' '.join(errors)}" for name, errors in exc.message_dict.items()
                ) if hasattr(exc, "error_dict") else " ".join(exc.messages)
                report.errors.append((number, f"invalid article: {message}"))
                if on_error:
                    on_error(number, report.errors[-1][1])
                continue
            except DatabaseError as exc:
                report.errors.append((number, f"could not be saved: {exc}"))
                if on_error:
                    on_error(number, report.errors[-1][1])
                continue
            except ImportError_ as exc:
                report.errors.append((number, str(exc)))
                if on_error:
                    on_error(number, str(exc))
                continue
            if created:
                report.created += 1
            else:
                report.updated += 1
    return report
