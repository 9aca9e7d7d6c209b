"""Replays of signed webhooks: one row per signed transmission, kept for its time window.

Providers sign every delivery afresh (their own retries included), so a second request that
carries the same signed transmission — the same signed time and body, or the same signed
transmission id — is a captured request played back. The payment webhooks
(``contributions``) and the email webhooks (``newsletters``) both refuse it (409) through
:func:`first_delivery`, each under its own ``source`` ("payment:stripe", "email:mailgun").
Rows older than twice a source's timestamp tolerance are forgotten by the apps' periodic
jobs (:func:`forget_deliveries`): by then the signature's own age refuses the request.
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, models, transaction
from django.utils import timezone


class SignedDelivery(models.Model):
    source = models.CharField(max_length=60)
    delivery_id = models.CharField(max_length=128)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        app_label = "core"
        constraints = [
            models.UniqueConstraint(fields=["source", "delivery_id"], name="one_signed_delivery")
        ]

    def __str__(self) -> str:
        return f"{self.source} delivery {self.delivery_id[:12]}"


def first_delivery(source: str, delivery_id: str) -> bool:
    """Record this transmission; False when it was received before (a replay)."""
    try:
        with transaction.atomic():
            SignedDelivery.objects.create(source=source[:60], delivery_id=delivery_id[:128])
    except IntegrityError:
        return False
    return True


def forget_deliveries(source_prefix: str, older_than_seconds: int,
                      now: dt.datetime | None = None) -> int:
    """Forget the transmissions of sources starting with ``source_prefix`` older than that."""
    horizon = (now or timezone.now()) - dt.timedelta(seconds=older_than_seconds)
    deleted, _ = SignedDelivery.objects.filter(
        source__startswith=source_prefix, received_at__lt=horizon
    ).delete()
    return deleted
