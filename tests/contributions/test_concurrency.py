"""The same provider events delivered at the same moment by several workers (web processes
behind a load balancer) still produce one payment, one receipt and one signal."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.core import mail
from django.db import connection

from masthead.contributions import giving, ledger
from masthead.contributions.models import Contribution, ProviderEvent, RecurringPlan
from masthead.contributions.signals import contribution_succeeded

from .conftest import WHSEC
from .standins import stripe_signature

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_simultaneous_duplicate_webhooks_apply_once(stripe_api, site):
    contribution, _url = giving.start_contribution(
        frequency="monthly", amount=500, currency="USD", provider_key="stripe"
    )
    events = stripe_api.pay(contribution.checkout_ref, "race@example.org")
    # Each copy is its own transmission, signed at its own time, as Stripe signs retries.
    now = int(time.time())
    deliveries = [(e, now - copy) for e in events for copy in range(3)]
    seen: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(deliveries))

    def listener(sender, contribution, source, **kwargs):
        seen.append(contribution.pk)

    def deliver(event, signed_at):
        try:
            body = json.dumps(event).encode()
            signature = stripe_signature(body, WHSEC, signed_at)
            barrier.wait(timeout=30)
            ledger.receive_webhook("stripe", body, {"Stripe-Signature": signature})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    contribution_succeeded.connect(listener)
    try:
        threads = [threading.Thread(target=deliver, args=d) for d in deliveries]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        contribution_succeeded.disconnect(listener)
    assert errors == []
    assert ProviderEvent.objects.count() == len(events)
    assert set(ProviderEvent.objects.values_list("status", flat=True)) <= {"processed", "ignored"}
    assert Contribution.objects.count() == 1
    contribution.refresh_from_db()
    assert contribution.status == "succeeded"
    assert RecurringPlan.objects.get().status == "active"
    assert seen == [contribution.pk]
    assert len(mail.outbox) == 1
