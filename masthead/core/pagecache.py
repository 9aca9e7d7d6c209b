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
"""

from __future__ import annotations

import hashlib
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.utils.cache import patch_cache_control

from .state import StateUnavailable, state_store

GENERATION_KEY = "pagecache:generation"
HIT_HEADER = "X-Masthead-Cache"

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
    url = f"{request.method == 'HEAD'}:{request.get_host()}:{request.get_full_path()}"
    return f"pagecache:{generation()}:{hashlib.sha256(url.encode()).hexdigest()}"


class PageCacheMiddleware:
    """Serves and stores responses marked public, for requests that carry no session."""

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
            except Exception:
                # Without the generation a stored page might predate a publication: render.
                log.exception("page cache bypassed: no page-cache generation")
                cacheable_request = False
        if cacheable_request:
            stored = cache.get(key)
            if stored is not None:
                response = stored
                response[HIT_HEADER] = "hit"
                return response
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
            response[HIT_HEADER] = "miss"
            cache.set(key, response, settings.MASTHEAD_PAGE_CACHE_SECONDS)
        return response
