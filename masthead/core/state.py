"""The state store: small values whose loss would change what the site does.

The ``default`` cache is a cache — bounded, it drops entries to make room (a flood of distinct
URLs fills it with pages). What must survive that lives in the ``state`` cache alias instead,
which never evicts (diskcache with ``eviction_policy="none"`` in its own folder on one box;
Redis under its own key prefix when Redis is configured): the page-cache generation, rate-limit
counters, campaign counters not yet flushed, the scheduler's once-per-interval locks.

Keep it small: every key here either expires (a rate-limit window, a lock) or is bounded by
the site's own objects (one generation, a few counters per campaign variant).
"""

from __future__ import annotations

from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

STATE_ALIAS = "state"


class StateUnavailable(RuntimeError):
    """The state store did not answer (Redis down, disk full): callers fail safe."""


def state_store() -> BaseCache:
    return caches[STATE_ALIAS]


def add_and_incr(key: str, delta: int = 1, timeout=DEFAULT_TIMEOUT) -> int:
    """Add ``delta`` to ``key`` atomically, creating it with ``timeout`` if missing.

    Returns the new value; concurrent callers each see a different value, so "am I within the
    limit?" has one exact answer per caller.
    """
    store = state_store()
    atomic = getattr(store, "add_and_incr", None)
    if atomic is not None:
        return atomic(key, delta, timeout)
    # Another Django backend configured by hand (e.g. local memory in a settings override):
    # add then incr, both atomic on the backends that can be shared at all.
    store.add(key, 0, timeout=timeout)
    try:
        return store.incr(key, delta)
    except ValueError:  # expired between the two
        store.add(key, delta, timeout=timeout)
        return delta
