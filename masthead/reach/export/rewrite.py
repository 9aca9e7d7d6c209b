"""Rewriting rendered pages for the static copy: links made relative, forms that cannot work
on a static host pointed at the live host or replaced by the email alternative, the search
page switched to the offline index, articles marked for indexing.

Only our own templates' output passes through here, so a careful regular expression over
tags is enough (and fast enough for ten thousand pages); attribute values are unescaped
before they are resolved and escaped again when written back.
"""

from __future__ import annotations

import html
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote, urljoin, urlsplit

from django.utils.translation import gettext as _

# Paths (after the language prefix) that are never part of the copy: token pages, form
# targets, staff pages, endpoints. Links to them go to the live host or are dropped.
PRIVATE_PREFIXES = (
    "/admin/",
    "/django-admin/",
    "/account/",
    "/healthz",
    "/campaigns/",
    "/anymail/",
    "/support/checkout/",
    "/support/sandbox/",
    "/support/webhooks/",
    "/support/manage/",
    "/newsletter/subscribe/",
    "/newsletter/confirm/",
    "/newsletter/unsubscribe/",
    "/newsletter/r/",
)
FEED_RE = re.compile(r"^(?P<dir>.*/feeds/(?:[^/]+/)?)(?P<kind>rss|atom)/$")
PAGE_QUERY_RE = re.compile(r"^page=(\d{1,6})$")
TAG_RE = re.compile(r"<([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
ATTR_RE = re.compile(
    r"""(?P<lead>\s)(?P<name>href|src|srcset|action|poster|data-events|content)="""
    r"""(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')"""
)
FORM_RE = re.compile(r"<form\b(?P<attrs>[^>]*)>.*?</form>", re.S)
ANCHOR_RE = re.compile(r"<a\b[^>]*\bdata-static-unwrap\b[^>]*>(?P<text>.*?)</a>", re.S)
CSS_URL_RE = re.compile(r"""url\(\s*(['"]?)(?P<url>[^'")]+)\1\s*\)""")
SKIP_SCHEMES = ("mailto:", "tel:", "data:", "javascript:", "#", "blob:")


def language_free(path: str, prefixes: tuple[str, ...]) -> str:
    """``/ru/newsletter/`` → ``/newsletter/`` (the URL without its language prefix)."""
    for prefix in prefixes:
        if path.startswith(prefix + "/"):
            return path[len(prefix) :]
    return path


def is_private(path: str, prefixes: tuple[str, ...]) -> bool:
    bare = language_free(path, prefixes)
    return bare.startswith(PRIVATE_PREFIXES)


def file_for(path: str, query: str = "") -> str:
    """The file (relative to the copy's root) that holds the URL ``path?query``.

    Pages become ``path/index.html`` (so links work on hosts without directory indexes,
    from ``file://`` and on IPFS gateways), feeds ``…/rss.xml``, section pages past the
    first ``…/page/N/index.html``; other query strings are dropped (the copy has one
    version of each page). Names are decoded (``новости/``, not ``%D0%BD…``): a static
    server decodes the request path before it looks for the file.
    """
    path = unquote(path)
    feed = FEED_RE.match(path)
    if feed:
        return f"{feed['dir']}{feed['kind']}.xml".lstrip("/")
    if path.endswith("/"):
        match = PAGE_QUERY_RE.match(query)
        if match and match[1] != "1":
            return f"{path}page/{match[1]}/index.html".lstrip("/")
        return f"{path}index.html".lstrip("/")
    return path.lstrip("/")


def relative(target_file: str, from_file: str) -> str:
    """A link from one file of the copy to another, percent-encoded."""
    return quote(posixpath.relpath(target_file, posixpath.dirname(from_file) or "."))


@dataclass
class Link:
    """An internal URL a page refers to: what to render and where it lands."""

    path: str
    query: str  # only ``page=N`` is kept; other queries are one page
    file: str


@dataclass
class Rewriter:
    """Rewrites one page's HTML for the copy; ``found`` collects the internal URLs it saw."""

    origin: str  # scheme://host of the copy's base URL
    internal_hosts: frozenset[str]
    language_prefixes: tuple[str, ...]
    live_url: str = ""  # forms and private links go here when set
    subscribe_email: str = ""

    def internal(self, value: str, page_url: str) -> tuple[str, str, str] | None:
        """(path, query, fragment) of an internal URL, or None for anything else."""
        if not value or value.startswith(SKIP_SCHEMES):
            return None
        absolute = urljoin(page_url, value)
        parts = urlsplit(absolute)
        if parts.scheme not in ("http", "https") or parts.netloc not in self.internal_hosts:
            return None
        return parts.path or "/", parts.query, parts.fragment

    def target(self, value: str, page_url: str, from_file: str, found: Callable) -> str | None:
        """The rewritten value for an internal URL (None: leave the value alone)."""
        parsed = self.internal(value, page_url)
        if parsed is None:
            return None
        path, query, fragment = parsed
        if is_private(path, self.language_prefixes):
            if self.live_url:
                return self.live_url + path + (f"?{query}" if query else "")
            return ""  # the caller drops the link
        keep = query if PAGE_QUERY_RE.match(query) and path.endswith("/") else ""
        link = Link(path, keep, file_for(path, keep))
        found(link)
        return relative(link.file, from_file) + (f"#{fragment}" if fragment else "")

    # --- HTML -------------------------------------------------------------------------------

    def html(self, text: str, path: str, from_file: str, found: Callable, lang: str) -> str:
        page_url = self.origin + path
        text = self._forms(text, page_url, lang)

        def tag(match: re.Match) -> str:
            name, attrs = match[1].lower(), match[2] or ""
            if not attrs or not ATTR_RE.search(attrs):
                return match[0]
            if name == "link" and (
                re.search(r"""rel=["']?canonical""", attrs) or "hreflang=" in attrs
            ):
                return match[0]  # they name the main domain on purpose
            is_meta = name == "meta"
            if is_meta and not re.search(r"""property=["']og:image["']|twitter:image""", attrs):
                return match[0]
            drop = False

            def attr(m: re.Match) -> str:
                nonlocal drop
                attr_name = m["name"]
                if attr_name == "content" and not is_meta:
                    return m[0]
                if attr_name == "action" and "data-static-live" in attrs:
                    return m[0]
                raw = html.unescape(m["dq"] if m["dq"] is not None else m["sq"])
                if attr_name == "srcset":
                    items = []
                    for item in raw.split(","):
                        bits = item.strip().split(None, 1)
                        if not bits:
                            continue
                        new = self.target(bits[0], page_url, from_file, found)
                        items.append(" ".join([bits[0] if new is None else new, *bits[1:]]))
                    value = ", ".join(items)
                elif attr_name == "data-events":
                    # the campaign counters: on the live host, or nowhere
                    parsed = self.internal(raw, page_url)
                    value = self.live_url + parsed[0] if parsed and self.live_url else ""
                    if parsed is None and raw:
                        value = raw
                elif is_meta:
                    new = self.target(raw, page_url, from_file, found)
                    parsed = self.internal(raw, page_url)
                    # social previews need an absolute address: the copy's own
                    value = raw if new is None or parsed is None else self.origin + parsed[0]
                else:
                    new = self.target(raw, page_url, from_file, found)
                    if new == "" and attr_name == "href" and name == "a":
                        drop = True
                    value = raw if new is None else new
                return f'{m["lead"]}{attr_name}="{html.escape(value, quote=True)}"'

            attrs = ATTR_RE.sub(attr, attrs)
            if drop:
                attrs += " data-static-unwrap"
            return f"<{match[1]}{attrs}>"

        text = TAG_RE.sub(tag, text)
        # links to private pages with no live host: keep the words, drop the dead link
        text = ANCHOR_RE.sub(lambda m: f"<span>{m['text']}</span>", text)
        if 'class="article"' in text:
            # Pagefind indexes the article itself (not the header, appeal, read more)
            marked = '<article data-pagefind-body class="article"'
            text = text.replace('<article class="article"', marked, 1)
        return text

    def _forms(self, text: str, page_url: str, lang: str) -> str:
        def form(match: re.Match) -> str:
            attrs = match["attrs"]
            if 'role="search"' in attrs:
                return match[0]
            action = re.search(r'action="([^"]*)"', attrs)
            parsed = self.internal(html.unescape(action[1]) if action else "", page_url)
            if parsed is None:
                return match[0]  # a form to elsewhere, or none of ours
            path = parsed[0]
            if self.live_url:
                live = html.escape(self.live_url + path, quote=True)
                # ``data-static-live`` marks it so the link pass leaves the action alone
                return match[0].replace(action[0], f'action="{live}" data-static-live', 1)
            return self.notice(language_free(path, self.language_prefixes))

        return FORM_RE.sub(form, text)

    def notice(self, bare_path: str) -> str:
        """What a reader sees instead of a form the static copy cannot take."""
        email = self.subscribe_email
        mail = (
            f'<a href="mailto:{html.escape(email)}?subject=subscribe">{html.escape(email)}</a>'
            if email
            else ""
        )
        if bare_path.startswith("/newsletter/"):
            first = _("This copy of the site cannot take sign-ups.")
            second = (
                _("To subscribe, write to %(address)s: we reply with a link to confirm.")
                % {"address": mail}
                if email
                else _("To subscribe, open the site itself or one of its mirrors.")
            )
        else:
            first = _("This copy of the site cannot take contributions.")
            second = (
                _(
                    "To support us, open the site itself or one of its mirrors. Write to "
                    "%(address)s for the newsletter and the current list of mirrors."
                )
                % {"address": mail}
                if email
                else _("To support us, open the site itself or one of its mirrors.")
            )
        return f'<p class="static-notice" role="note">{html.escape(first)} {second}</p>'


def search_page(text: str, root: str) -> str:
    """The copy's search page: Pagefind's UI (from the copy) instead of the server's form."""
    start, end = text.find('<main id="main"'), text.find("</main>")
    if start < 0 or end < 0:
        return text
    open_end = text.find(">", start) + 1
    heading = re.search(r"<h1>.*?</h1>", text[open_end:end], re.S)
    body = (
        f"{heading[0] if heading else ''}\n"
        f'<link rel="stylesheet" href="{root}pagefind/pagefind-ui.css">\n'
        f'<div id="static-search" data-root="{root}"></div>\n'
        f'<noscript><p class="static-notice">{html.escape(_("Search on this copy of the site needs JavaScript."))}</p></noscript>\n'  # noqa: E501
        f'<script src="{root}pagefind/pagefind-ui.js"></script>\n'
        f'<script src="{root}static-search.js"></script>\n'
    )
    return text[:open_end] + body + text[end:]


SEARCH_JS = """\
/* The static copy's search: Pagefind's index, built when the copy was exported. */
window.addEventListener("DOMContentLoaded", function () {
  var el = document.getElementById("static-search");
  var root = new URL(el.dataset.root, window.location.href).pathname;
  var ui = new PagefindUI({ element: "#static-search", baseUrl: root, showImages: false });
  var q = new URLSearchParams(window.location.search).get("q");
  if (q) ui.triggerSearch(q);
});
"""


def css(text: str, path: str, from_file: str, rewriter: Rewriter, found: Callable) -> str:
    """Root-relative ``url()`` in a style sheet made relative; referenced files collected."""
    page_url = rewriter.origin + path

    def one(match: re.Match) -> str:
        new = rewriter.target(match["url"], page_url, from_file, found)
        return match[0] if not new else f'url("{new}")'

    return CSS_URL_RE.sub(one, text)


def absolute_in_xml(text: str, hosts: list[str], base_url: str) -> str:
    """Feeds and sitemaps name the copy's base URL (not the main domain), and feeds their
    copy's file names."""
    for origin in hosts:
        if origin and origin != base_url:
            text = text.replace(origin + "/", base_url + "/")
    return re.sub(
        re.escape(base_url) + r"(/(?:[a-z]{2}/)?feeds/(?:[^/<\"]+/)?)(rss|atom)/",
        lambda m: f"{base_url}{m[1]}{m[2]}.xml",
        text,
    )
