"""Aggregate campaign counters: cheap to count, flushed to the database in batches.

Readers' browsers report impressions, clicks and dismissals to the events endpoint; each
event only increments a number in the state store (:mod:`masthead.core.state`: atomic, never
evicted, shared by every process; no database write per page view). A
scheduled job (:func:`flush_counters`, every minute) moves those numbers into
:class:`~masthead.campaigns.models.VariantCounter` with one ``UPDATE … SET n = n + k`` per
variant. Conversions are rare and arrive from the contributions app's signal: they are written
straight to the database.

Nothing about the reader is kept: the rate limiter keys on a salted hash of the address that
lives only in the state store for an hour.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import Counter
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import F

from masthead.core.ratelimit import client_address, spend
from masthead.core.scheduler import every
from masthead.core.state import add_and_incr, state_store

from .models import Variant, VariantCounter

log = logging.getLogger(__name__)

EVENTS = {"impression": "impressions", "click": "clicks", "dismiss": "dismissals"}
SOURCE_RE = re.compile(r"^(banner|appeal|overlay):(\d{1,18}):(\d{1,18})$")


def _key(variant_id: int, event: str) -> str:
    return f"campaigns:count:{variant_id}:{event}"


def count_events(events: Iterable[tuple[int, str]]) -> None:
    """Add validated ``(variant_id, event)`` pairs to the counters in the state store."""
    for (variant_id, event), n in Counter(events).items():
        add_and_incr(_key(variant_id, event), n, timeout=None)


def pending_counts(variant_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Counts still in the state store, not yet flushed (for tests and the results page)."""
    keys = {_key(v, e): (v, e) for v in variant_ids for e in EVENTS}
    found = state_store().get_many(list(keys))
    pending: dict[int, dict[str, int]] = {}
    for key, value in found.items():
        if value:
            variant_id, event = keys[key]
            pending.setdefault(variant_id, {})[event] = int(value)
    return pending


@every(60, name="campaigns.flush_counters")
def flush_counters() -> int:
    """Move the pending counts into the database; returns how many events were written."""
    variant_ids = list(Variant.objects.values_list("id", flat=True))
    written = 0
    for variant_id, counts in pending_counts(variant_ids).items():
        with transaction.atomic():
            VariantCounter.objects.get_or_create(variant_id=variant_id)
            VariantCounter.objects.filter(variant_id=variant_id).update(
                **{EVENTS[event]: F(EVENTS[event]) + n for event, n in counts.items()}
            )
        # Subtract what was written rather than deleting the key: events counted since the
        # read above survive for the next flush.
        for event, n in counts.items():
            try:
                state_store().decr(_key(variant_id, event), n)
            except ValueError:
                pass
        written += sum(counts.values())
    return written


def record_conversion(source: str) -> bool:
    """Count a completed contribution for the variant named by its ``source`` attribution.

    ``source`` looks like ``appeal:<campaign id>:<variant id>``; anything else (the give page
    reached directly, a newsletter link) is not a campaign conversion. Returns True if counted.
    """
    match = SOURCE_RE.match(source or "")
    if not match:
        return False
    _placement, campaign_id, variant_id = match.groups()
    if not Variant.objects.filter(id=int(variant_id), campaign_id=int(campaign_id)).exists():
        return False
    with transaction.atomic():
        VariantCounter.objects.get_or_create(variant_id=int(variant_id))
        VariantCounter.objects.filter(variant_id=int(variant_id)).update(
            conversions=F("conversions") + 1
        )
    return True


def on_contribution_succeeded(sender=None, contribution=None, source: str = "", **kwargs) -> None:
    """Receiver for ``masthead.contributions.signals.contribution_succeeded``."""
    try:
        record_conversion(source or getattr(contribution, "source", "") or "")
    except Exception:
        # Attribution must never break a payment's bookkeeping.
        log.exception("could not count a campaign conversion for source %r", source)


# --- rate limiting --------------------------------------------------------------------------


def within_rate_limit(request, n_events: int) -> bool:
    """Spend ``n_events`` from this address's hourly budget; False when it is exhausted.

    The address is hashed with the secret key and the hour, kept only as a cache key that
    expires with the hour: never stored, never logged.
    """
    limit = settings.MASTHEAD_CAMPAIGNS_EVENTS_PER_HOUR
    hour = int(time.time() // 3600)
    digest = hashlib.sha256(
        f"{settings.SECRET_KEY}:{hour}:{client_address(request)}".encode()
    ).hexdigest()[:32]
    key = f"campaigns:rate:{digest}"
    return spend(key, limit, 3700, amount=n_events, refund_refused=True)
