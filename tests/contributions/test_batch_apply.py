"""The worker's batches apply a stream exactly as one event at a time does.

``ledger.apply_received_events`` applies stored events in batches: a chunk of events has its
plans and payments loaded in one query each and kept in an identity map, history rows and
event statuses are written in bulk at the end of the batch. These tests store the replay
test's shuffled, duplicated stream first (the database task backend: nothing applied), then
apply it in batches of random sizes with a time limit that never cuts them short, and
compare contributions, plans, totals and the history with one in-order delivery; then the
same with an event that fails in the middle of a batch (its savepoint rolls back: the map
must not keep what was rolled back). Real concurrency is in test_webhook_worker.py.
"""

from __future__ import annotations

import json
import random
import time

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from masthead.contributions import ledger
from masthead.contributions.models import ProviderEvent, RecurringPlan
from masthead.contributions.providers.base import EventKind
from masthead.core.state import state_store

from .conftest import WHSEC
from .standins import stripe_signature
from .test_replay import build_stream, deliver_all, run_in_savepoint

pytestmark = pytest.mark.django_db

DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.fixture(autouse=True)
def batches(settings):
    settings.MASTHEAD_WEBHOOK_APPLY_TRANSACTION_MS = 600_000  # never cut short here
    state_store().delete_many([ledger.WAKE_KEY, ledger.LOCK_KEY])
    yield
    state_store().delete_many([ledger.WAKE_KEY, ledger.LOCK_KEY])


def store_then_apply(stream: list[dict], settings, batch: int) -> None:
    with settings_override(settings, TASKS=DB_TASKS):
        deliver_all(stream)
    assert ProviderEvent.objects.exclude(status="received").count() == 0
    state_store().delete_many([ledger.WAKE_KEY, ledger.LOCK_KEY])
    ledger.apply_received_events(batch=batch)


class settings_override:
    def __init__(self, settings, **values):
        self.settings, self.values, self.saved = settings, values, {}

    def __enter__(self):
        for name, value in self.values.items():
            self.saved[name] = getattr(self.settings, name)
            setattr(self.settings, name, value)

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            setattr(self.settings, name, value)


@hsettings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rng=st.randoms(use_true_random=False), batch=st.integers(min_value=2, max_value=60))
def test_batches_of_a_shuffled_duplicated_stream_equal_one_at_a_time(
    stripe_api, site, settings, rng: random.Random, batch: int
):
    with transaction.atomic():
        events = build_stream(stripe_api)
        expected = run_in_savepoint(lambda: deliver_all(events))
        stream = [e for e in events for _ in range(rng.randint(1, 3))]
        rng.shuffle(stream)

        def in_batches():
            store_then_apply(stream, settings, batch)
            assert ProviderEvent.objects.count() == len(events)
            assert not ProviderEvent.objects.filter(status__in=["received", "failed"]).exists()

        assert run_in_savepoint(in_batches) == expected
        transaction.set_rollback(True)


def test_a_failure_mid_batch_rolls_back_that_event_alone(stripe_api, site, settings, monkeypatch):
    """The newer of two amount changes fails after its handler changed the plan the batch
    holds: its savepoint rolls back, and the rest of the batch (a renewal, the cancellation,
    which save that plan again) must work on what the database has — the older amount —
    not on the rolled-back one. The provider's retry of the failed event then gives the
    in-order result."""
    with transaction.atomic():
        events = build_stream(stripe_api)
        expected = run_in_savepoint(lambda: deliver_all(events))
        changes = [e for e in events if e["type"] == "customer.subscription.updated"]
        fresh = changes[-1]
        real = ledger._HANDLERS[EventKind.PLAN_TERMS_CHANGED]

        def change_then_fail(provider, event):
            done = real(provider, event)
            if event.amount == 2000:  # the newer change
                raise RuntimeError("the disk is full")
            return done

        def with_a_failure():
            monkeypatch.setitem(ledger._HANDLERS, EventKind.PLAN_TERMS_CHANGED, change_then_fail)
            store_then_apply(events, settings, batch=len(events))
            failed = ProviderEvent.objects.get(event_id=fresh["id"])
            assert failed.status == "failed" and "disk is full" in failed.error
            plan = RecurringPlan.objects.get(provider_ref=fresh["data"]["object"]["id"])
            assert plan.status == "cancelled"  # the events after it were applied
            assert plan.amount == 1500  # the older change; the failed one left no trace
            monkeypatch.setitem(ledger._HANDLERS, EventKind.PLAN_TERMS_CHANGED, real)
            body = json.dumps(fresh).encode()  # the provider retries, signed afresh
            retry = stripe_signature(body, WHSEC, int(time.time()) + 100)
            ledger.receive_webhook("stripe", body, {"Stripe-Signature": retry})
            assert ProviderEvent.objects.get(event_id=fresh["id"]).status == "processed"

        assert run_in_savepoint(with_a_failure) == expected
        transaction.set_rollback(True)
