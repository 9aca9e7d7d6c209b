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

from django.db import connections, models, router
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


def insert_once(instance: models.Model, unique_fields: tuple[str, ...]) -> bool:
    """Insert an unsaved row unless one with the same ``unique_fields`` exists: True if it was
    inserted. One ``INSERT … ON CONFLICT (…) DO NOTHING`` (SQLite ≥ 3.24 and PostgreSQL),
    so a duplicate costs no exception, no savepoint and no second query — the hot path of
    every webhook. (Django's ``bulk_create(ignore_conflicts=True)`` writes the same statement
    but cannot say whether the row was new, which is the whole point here.) The primary key
    is not set on ``instance``."""
    model = type(instance)
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    conflict = ", ".join(quote(meta.get_field(name).column) for name in unique_fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # The identifiers are the model's own, quoted; the values are parameters.
    table = quote(meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) ON CONFLICT ({conflict}) DO NOTHING"  # noqa: S608, E501
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.rowcount == 1


def first_delivery(source: str, delivery_id: str) -> bool:
    """Record this transmission; False when it was received before (a replay)."""
    delivery = SignedDelivery(source=source[:60], delivery_id=delivery_id[:128])
    return insert_once(delivery, ("source", "delivery_id"))


def forget_deliveries(source_prefix: str, older_than_seconds: int,
                      now: dt.datetime | None = None) -> int:
    """Forget the transmissions of sources starting with ``source_prefix`` older than that."""
    horizon = (now or timezone.now()) - dt.timedelta(seconds=older_than_seconds)
    deleted, _ = SignedDelivery.objects.filter(
        source__startswith=source_prefix, received_at__lt=horizon
    ).delete()
    return deleted
