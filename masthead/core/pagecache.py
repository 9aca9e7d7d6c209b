"""The full-page cache for anonymous readers, and the Cache-Control policy of reader pages.

Reader pages are identical for every anonymous reader, so a view marks its response with
:func:`mark_public`; :class:`PageCacheMiddleware` then keeps it in the cache and serves
repeat hits without touching the database. Invalidation is by generation: publishing,
unpublishing or editing anything a reader page shows calls :func:`invalidate_pages`, which
bumps one counter that is part of every key, so every page that might list the change (home,
sections, other articles' "Read more", feeds, sitemaps) is rebuilt on its next hit.

The pages live in the ``default`` cache, which may drop them at will; the generation lives in
the state store (:mod:`masthead.core.state`), which never evicts, and only ever goes up: a
generation that went back would bring back pages stored before a publication.

A page is stored once, compressed: a :class:`StoredPage` holds its headers and the body as
identity, gzip and — when the Brotli library is installed — brotli. A hit reads the
generation and the page (two reads, no database), picks the encoding the reader accepts and
answers with ``Vary: Accept-Encoding``; nothing is compressed on a hit, so a front cache
(deploy/nginx/) stores the same compressed bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import DisallowedHost
from django.http import HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers

from .state import StateUnavailable, state_store

try:  # Brotli is optional: without it readers get gzip.
    import brotli
except ImportError:  # pragma: no cover - the project depends on it
    brotli = None

GENERATION_KEY = "pagecache:generation"
HIT_HEADER = "X-Masthead-Cache"
# Headers a stored page never keeps: they are per response or per encoding.
_PER_RESPONSE = {"content-length", "content-encoding", HIT_HEADER.lower(), "set-cookie"}

log = logging.getLogger(__name__)


def is_anonymous_request(request) -> bool:
    """True when the request carries no session: an anonymous reader (cookie-free check)."""
    return settings.SESSION_COOKIE_NAME not in request.COOKIES


def mark_public(response, *, max_age: int | None = None, s_maxage: int | None = None):
    """Let browsers, CDNs and our page cache keep this response (for anonymous readers)."""
    patch_cache_control(
        response,
        public=True,
        max_age=settings.MASTHEAD_BROWSER_MAX_AGE if max_age is None else max_age,
        s_maxage=settings.MASTHEAD_CDN_MAX_AGE if s_maxage is None else s_maxage,
        stale_while_revalidate=60,
        stale_if_error=86400,
    )
    response._masthead_public = True
    return response


def _first_generation() -> int:
    """Where a generation starts when the store has none: the time in microseconds.

    The store may have lost it (a Redis without persistence restarted, the state folder
    deleted). Starting again at 1 could reuse a number pages were stored under before; the
    clock has moved on further than the generation could have been bumped since (each bump is
    a round trip to the store, far longer than a microsecond), so this is past any number used
    before — given clocks kept in step (NTP) on the machines that share the store.
    """
    return time.time_ns() // 1000


def generation() -> int:
    """The current page-cache generation (part of every page's key); raises if unknowable."""
    store = state_store()
    value = store.get(GENERATION_KEY)
    if value is None:
        store.add(GENERATION_KEY, _first_generation(), timeout=None)
        value = store.get(GENERATION_KEY)
        if value is None:
            raise StateUnavailable("the page-cache generation could not be stored")
    return int(value)


def invalidate_pages() -> None:
    """Forget every cached reader page (they are rebuilt lazily on their next hit)."""
    store = state_store()
    if not store.add(GENERATION_KEY, _first_generation() + 1, timeout=None):
        store.incr(GENERATION_KEY)


def _key(request) -> str:
    url = (f"{request.method == 'HEAD'}:{request.scheme}:{request.get_host()}:"
           f"{request.get_full_path()}")
    return f"pagecache:{generation()}:{hashlib.sha256(url.encode()).hexdigest()}"


def accepted_encoding(header: str, available) -> str:
    """The best of ``available`` ("br", "gzip") that an ``Accept-Encoding`` value allows, or "".

    Brotli before gzip (smaller); a coding with ``q=0`` is refused; ``*`` stands for any
    coding not named. Identity ("") when nothing matches.
    """
    if not header:
        return ""
    allowed: dict[str, bool] = {}
    for part in header.lower().split(","):
        name, _, params = part.partition(";")
        name = name.strip()
        refused = False
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    refused = float(value) <= 0
                except ValueError:
                    refused = True
        allowed[name] = not refused
    for coding in ("br", "gzip"):
        if coding in available and allowed.get(coding, allowed.get("*", False)):
            return coding
    return ""


@dataclass(frozen=True, slots=True)
class StoredPage:
    """A reader page as kept in the cache: status, final headers and a body per encoding."""

    status: int
    headers: tuple[tuple[str, str], ...]
    bodies: dict[str, bytes]  # "" (identity), "gzip", "br"

    @classmethod
    def from_response(cls, response) -> StoredPage:
        body = response.content
        bodies = {"": body, "gzip": gzip.compress(body, compresslevel=6, mtime=0)}
        if brotli is not None:
            # Quality 5: within a few per cent of the smallest output at a hundredth of
            # quality 11's time (a miss compresses once per page and generation).
            bodies["br"] = brotli.compress(body, quality=5, mode=brotli.MODE_TEXT)
        headers = tuple(
            (name, value) for name, value in response.items()
            if name.lower() not in _PER_RESPONSE
        )
        return cls(response.status_code, headers, bodies)

    def response(self, accept_encoding: str, hit: str) -> HttpResponse:
        """A new response for one reader: the encoding they accept, marked ``hit``/``miss``."""
        coding = accepted_encoding(accept_encoding, self.bodies)
        response = HttpResponse(self.bodies[coding], status=self.status)
        headers = response.headers
        del headers["Content-Type"]
        for name, value in self.headers:
            headers[name] = value
        if coding:
            headers["Content-Encoding"] = coding
        headers["Content-Length"] = str(len(self.bodies[coding]))
        headers[HIT_HEADER] = hit
        return response


class PageCacheMiddleware:
    """Serves and stores responses marked public, for requests that carry no session.

    It comes before the session, locale, CSRF, auth and CSP middlewares: a hit is answered
    without them (their headers were stored with the page); only the cheap header-adding
    middlewares outside it (security headers, Onion-Location) run on a hit.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        cacheable_request = (
            settings.MASTHEAD_PAGE_CACHE
            and request.method in ("GET", "HEAD")
            and is_anonymous_request(request)
            and not getattr(request, "is_preview", False)
        )
        if cacheable_request:
            try:
                key = _key(request)
            except DisallowedHost:
                cacheable_request = False  # the inner stack answers 400
            except Exception:
                # Without the generation a stored page might predate a publication: render.
                log.exception("page cache bypassed: no page-cache generation")
                cacheable_request = False
        accept = request.META.get("HTTP_ACCEPT_ENCODING", "")
        if cacheable_request:
            stored = cache.get(key)
            if isinstance(stored, StoredPage):
                return stored.response(accept, "hit")
        response = self.get_response(request)
        if not getattr(response, "_masthead_public", False):
            return response
        if not is_anonymous_request(request):
            # An editor's view of a page may carry the userbar: never shared.
            del response["Cache-Control"]
            patch_cache_control(response, private=True, no_cache=True)
            return response
        # The page does not depend on cookies (no session for anonymous readers).
        vary = [v.strip() for v in response.get("Vary", "").split(",") if v.strip()]
        vary = [v for v in vary if v.lower() != "cookie"]
        if vary:
            response["Vary"] = ", ".join(vary)
        elif "Vary" in response:
            del response["Vary"]
        if (
            cacheable_request
            and response.status_code == 200
            and not response.cookies
            and not response.streaming
        ):
            if hasattr(response, "render") and callable(response.render):
                response.render()
            patch_vary_headers(response, ("Accept-Encoding",))
            stored = StoredPage.from_response(response)
            cache.set(key, stored, settings.MASTHEAD_PAGE_CACHE_SECONDS)
            return stored.response(accept, "miss")
        return response
