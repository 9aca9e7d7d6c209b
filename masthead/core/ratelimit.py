"""Rate limits for the public forms and endpoints, kept in the cache (nothing in the database).

``client_address`` is the reader's address as far as we can trust it: the first
X-Forwarded-For hop behind our own reverse proxy (``MASTHEAD_BEHIND_PROXY``), else the
connection's address. ``spend`` counts uses of a key in a fixed window.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache


def client_address(request) -> str:
    if settings.MASTHEAD_BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return request.META.get("REMOTE_ADDR", "")


def spend(key: str, limit: int, seconds: int = 3600, *, amount: int = 1,
          refund_refused: bool = False) -> bool:
    """Count ``amount`` uses of ``key`` in its window; False once that passes ``limit``.

    A ``limit`` of 0 or less means no limit. With ``refund_refused``, a refused spend is
    taken back, so a refused flood does not eat the budget of the next honest request.
    """
    if limit <= 0:
        return True
    cache.add(key, 0, timeout=seconds)
    try:
        used = cache.incr(key, amount)
    except ValueError:  # expired between add and incr
        cache.set(key, amount, timeout=seconds)
        used = amount
    if used <= limit:
        return True
    if refund_refused:
        try:
            cache.decr(key, amount)
        except ValueError:
            pass
    return False
