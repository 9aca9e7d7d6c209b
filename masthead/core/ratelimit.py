"""Rate limits for the public forms and endpoints, kept in the state store (not the database).

``client_address`` is the reader's address as far as we can trust it: the first
X-Forwarded-For hop behind our own reverse proxy (``MASTHEAD_BEHIND_PROXY``), else the
connection's address. ``spend`` counts uses of a key in a fixed window, in the state store
(:mod:`masthead.core.state`), where a flood of cached pages cannot evict the counts.
"""

from __future__ import annotations

import logging

from django.conf import settings

from .state import add_and_incr, state_store

log = logging.getLogger(__name__)


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
    When the state store cannot be reached the spend is refused (fail safe).
    """
    if limit <= 0:
        return True
    try:
        # One atomic step: each concurrent caller gets its own count, so exactly ``limit``
        # of them are let through however they interleave.
        used = add_and_incr(key, amount, timeout=seconds)
    except Exception:
        # Fail safe: with no way to count, refuse rather than let everything through.
        log.exception("rate limit store unavailable; refusing %s", key.split(":")[0])
        return False
    if used <= limit:
        return True
    if refund_refused:
        try:
            state_store().decr(key, amount)
        except ValueError:  # the window expired meanwhile: nothing to refund
            pass
        except Exception:
            log.exception("could not refund a refused spend of %s", key.split(":")[0])
    return False
