"""The two cache backends Masthead configures, each with one atomic counting step.

Django's cache API has ``add`` and ``incr`` but nothing that does both at once, and a counter
with a window (a rate limit) needs exactly that: create the key with its expiry if it is
missing, otherwise add to it, with no moment in between where another process can slip in.
Each backend here is the library's own Django backend plus :meth:`add_and_incr` done the way
that store does it atomically — an SQLite ``BEGIN IMMEDIATE`` transaction for diskcache, a
``MULTI``/``EXEC`` of ``SET NX`` + ``INCRBY`` for Redis. Everything else is the library's.

``masthead.core.state`` calls :meth:`add_and_incr`; settings choose the backend by dotted path.
"""

from __future__ import annotations

from diskcache import DjangoCache
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache


class DiskCache(DjangoCache):
    """diskcache's Django backend (SQLite + files, process-safe, bounded in size)."""

    def close(self, **kwargs) -> None:
        """Keep the SQLite connections open between requests.

        Django closes every cache at the end of each request (``request_finished``). For
        diskcache that closed its SQLite connections, and the next request opened them again
        with a dozen PRAGMA statements: four fifths of a page-cache hit's time. diskcache's
        connections are per thread and reopened after a fork, so keeping them is safe.
        """

    def add_and_incr(self, key: str, delta: int = 1, timeout=DEFAULT_TIMEOUT,
                     version=None) -> int:
        """Add ``delta`` to ``key``, creating it with ``timeout`` if missing; the new value."""
        key = self.make_and_validate_key(key, version=version)
        expire = self.get_backend_timeout(timeout)
        shards = self._cache._shards
        shard = shards[self._cache._hash(key) % len(shards)]
        # One write transaction on the key's shard: the read, the create and the increment
        # happen with every other writer (thread or process) held off.
        with shard.transact(retry=True):
            try:
                return shard.incr(key, delta, default=None, retry=True)
            except KeyError:  # missing or expired
                shard.set(key, delta, expire=expire, retry=True)
                return delta


class RedisCache(DjangoRedisCache):
    """Django's Redis backend."""

    def add_and_incr(self, key: str, delta: int = 1, timeout=DEFAULT_TIMEOUT,
                     version=None) -> int:
        """Add ``delta`` to ``key``, creating it with ``timeout`` if missing; the new value."""
        key = self.make_and_validate_key(key, version=version)
        timeout = self.get_backend_timeout(timeout)
        client = self._cache.get_client(key, write=True)
        with client.pipeline(transaction=True) as pipe:
            if timeout is None:
                pipe.set(key, 0, nx=True)
            else:
                pipe.set(key, 0, ex=max(int(timeout), 1), nx=True)
            pipe.incrby(key, delta)
            _created, value = pipe.execute()
        return int(value)
