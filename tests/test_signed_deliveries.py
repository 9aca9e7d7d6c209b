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
