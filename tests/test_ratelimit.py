"""The shared rate limiter the public forms and the campaign counter use."""

from __future__ import annotations

from django.test import RequestFactory

from masthead.core.ratelimit import client_address, spend


def test_forwarded_address_is_trusted_only_behind_our_proxy(settings):
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1"
    )
    settings.MASTHEAD_BEHIND_PROXY = False
    assert client_address(request) == "10.0.0.1"
    settings.MASTHEAD_BEHIND_PROXY = True
    assert client_address(request) == "203.0.113.9"


def test_spend_counts_up_to_the_limit_then_refuses():
    assert [spend("t:a", 3) for _ in range(5)] == [True, True, True, False, False]
    assert spend("t:none", 0) is True  # 0 = no limit


def test_refused_spends_can_be_refunded():
    assert spend("t:b", 10, amount=8, refund_refused=True)
    assert not spend("t:b", 10, amount=5, refund_refused=True)  # would be 13: refused, refunded
    assert spend("t:b", 10, amount=2, refund_refused=True)  # 10: still within the budget
