"""core.replay: the one table both webhook families use to refuse a played-back request."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from masthead.core.replay import SignedDelivery, first_delivery, forget_deliveries

pytestmark = pytest.mark.django_db


def test_a_transmission_is_first_once_per_source():
    assert first_delivery("payment:stripe", "abc") is True
    assert first_delivery("payment:stripe", "abc") is False
    assert first_delivery("email:mailgun", "abc") is True  # another source, another id space


def test_each_source_forgets_only_its_own_after_its_window():
    first_delivery("payment:stripe", "old")
    first_delivery("email:mailgun", "old")
    later = timezone.now() + timedelta(seconds=601)
    assert forget_deliveries("payment:", 600, later) == 1
    assert list(SignedDelivery.objects.values_list("source", flat=True)) == ["email:mailgun"]
    assert forget_deliveries("email:", 600) == 0  # not old yet


@pytest.mark.parametrize("returning", [True, False], ids=["RETURNING", "older SQLite"])
def test_insert_once_returning_pk_sets_the_key_once(returning, monkeypatch):
    """The ledger inserts a new renewal with it: the new row's key in one statement where the
    database returns columns from an INSERT, else a lookup by the unique fields (SQLite
    before 3.35, which Django 5.2 still supports); a duplicate inserts nothing, sets no key."""
    from django.db import connection

    from masthead.core.replay import insert_once_returning_pk

    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", returning)
    first = SignedDelivery(source="test:once", delivery_id="abc")
    assert insert_once_returning_pk(first, ("source", "delivery_id")) is True
    assert first.pk == SignedDelivery.objects.get(source="test:once", delivery_id="abc").pk
    assert first._state.adding is False
    again = SignedDelivery(source="test:once", delivery_id="abc")
    assert insert_once_returning_pk(again, ("source", "delivery_id")) is False
    assert again.pk is None
    assert SignedDelivery.objects.filter(source="test:once").count() == 1
