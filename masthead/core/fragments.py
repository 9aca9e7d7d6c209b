"""Parts of reader pages that are the same on many pages, built once per publication
generation and kept in this process's memory: the support banner, the sign-up block, the
appeal's campaigns, the section list, Wagtail's routing of a URL to its page.

A page-cache miss (after every publication, or for a URL not seen since) renders the page
itself; what it shares with every other page is taken from here. Each entry is keyed by

* the page-cache generation (:func:`masthead.core.pagecache.generation`, read from the state
  store once per request), so publishing, unpublishing or editing anything a reader page shows
  starts every process on fresh fragments, exactly as it starts the page cache afresh;
* the active language, and the scheme and host the reader came in on (mirrors and the onion
  address link to themselves), whether or not a fragment's links happen to need them today;
* whatever else the caller says the fragment varies on (the section, for campaigns).

Entries also expire after ``MASTHEAD_PAGE_CACHE_SECONDS`` — no later than a cached page — so
what changes with the clock (a campaign that starts at a date) is as fresh as cached pages.

Nothing per reader may go into a fragment: reader pages carry no CSRF token (their forms post
to ``csrf_exempt`` views) and no per-reader content; the CSP nonce, the userbar and anything
else per request stays outside the fragments. A request that carries a session (an editor)
or a preview is served fresh fragments and never stores any.

Why process memory and not the shared cache: a fragment read from memory costs nothing, one
from diskcache or Redis costs a round trip and a write per process per generation — the very
cache writes this avoids. The store is small (``MAX_ENTRIES``, least recently used goes
first), and hand-written: Django's local-memory cache pickles every value on the way in and
out, which would copy model instances on every read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest
from django.utils.translation import get_language

from .pagecache import is_anonymous_request

log = logging.getLogger(__name__)

MAX_ENTRIES = 2000
_MISSING = object()


class _Store:
    """A thread-safe LRU of (expiry, value) entries."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return _MISSING
            if entry[0] < time.monotonic():
                del self._entries[key]
                return _MISSING
            self._entries.move_to_end(key)
            return entry[1]

    def set(self, key: Hashable, value: Any, timeout: float) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + timeout, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget_generations_before(self, generation: int) -> None:
        """Drop entries of older generations (they can never be read again)."""
        with self._lock:
            for key in [k for k in self._entries if k[0] < generation]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_store = _Store(MAX_ENTRIES)
_newest = {"generation": 0}


def clear(**kwargs) -> None:
    """Forget every fragment of this process (tests; any setting changed by a test)."""
    _store.clear()


setting_changed.connect(clear, dispatch_uid="masthead.core.fragments.clear")


def request_generation(request: HttpRequest | None) -> int | None:
    """The page-cache generation, read once per request; None when unknowable or when the
    request must not share fragments (no request, a session, a preview)."""
    if request is None:
        return None
    memo = getattr(request, "_masthead_generation", _MISSING)
    if memo is not _MISSING:
        return memo
    value = None
    if is_anonymous_request(request) and not getattr(request, "is_preview", False):
        from .pagecache import generation

        try:
            value = generation()
        except Exception:
            # Without the generation a fragment might predate a publication: build afresh.
            log.exception("fragments bypassed: no page-cache generation")
    request._masthead_generation = value
    if value is not None and value > _newest["generation"]:
        _newest["generation"] = value
        _store.forget_generations_before(value)
    return value


_building = threading.RLock()


def origin(request: HttpRequest) -> str:
    """The scheme and host the reader came in on (part of every key)."""
    try:
        host = request.get_host()
    except Exception:  # DisallowedHost: the page answers 400 anyway; never share
        host = "?"
    return f"{'https' if request.is_secure() else 'http'}://{host}"


def cached(
    request: HttpRequest | None,
    name: str,
    build: Callable[[], Any],
    vary: tuple = (),
    keep: Callable[[Any], bool] = lambda value: True,
) -> Any:
    """``build()``, or what it returned for this generation, language, origin and ``vary``
    (kept only when ``keep(value)``)."""
    generation = request_generation(request)
    if generation is None:
        return build()
    key = (generation, name, get_language(), origin(request), *vary)
    value = _store.get(key)
    if value is _MISSING:
        # One build at a time in a process (re-entrant: fragments nest). Builds share model
        # instances kept here, and two threads rendering renditions of one shared image read
        # its file through one handle: "Unknown image format" (seen on the threaded live
        # server, tests/test_language_isolation.py). Builds happen once per generation.
        with _building:
            value = _store.get(key)
            if value is _MISSING:
                value = build()
                if keep(value):
                    _store.set(key, value, settings.MASTHEAD_PAGE_CACHE_SECONDS)
    return value
