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
    sql, values, connection = _insert_sql(instance, unique_fields)
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.rowcount == 1


def insert_once_returning_pk(instance: models.Model, unique_fields: tuple[str, ...]) -> bool:
    """:func:`insert_once`, and the new row's primary key set on ``instance`` (one statement,
    ``… RETURNING``, on SQLite ≥ 3.35 and PostgreSQL): True if it was inserted."""
    sql, values, connection = _insert_sql(instance, unique_fields)
    meta = instance._meta
    if not connection.features.can_return_columns_from_insert:  # an older SQLite
        if not insert_once(instance, unique_fields):
            return False
        lookup = {name: getattr(instance, meta.get_field(name).attname) for name in unique_fields}
        instance.pk = type(instance)._base_manager.using(connection.alias).get(**lookup).pk
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"{sql} RETURNING {connection.ops.quote_name(meta.pk.column)}", values)
            row = cursor.fetchone()
        if row is None:
            return False
        instance.pk = row[0]
    instance._state.adding = False
    instance._state.db = connection.alias
    return True


def _insert_sql(instance: models.Model, unique_fields: tuple[str, ...]):
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
    return sql, values, connection


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
