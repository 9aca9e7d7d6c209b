"""Replays for BTCPay: a realistic stream of a store's invoice webhooks, each delivered 2–3
times (BTCPay's redeliveries: a new deliveryId naming the first) in shuffled order — and
all at once from many threads — leaves contributions, plans and totals identical to one
in-order delivery.

The stream covers one-off gifts (paid, overpaid, paid late after expiry, underpaid,
abandoned, invalid) and a monthly pay-by-link plan: its first payment and two periods, the
second paid through a fresh invoice after the first one expired.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time

import pytest
from django.core import mail
from django.db import connection, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from masthead.contributions import giving, ledger, paybylink
from masthead.contributions.models import Contribution, ProviderEvent, RecurringPlan
from masthead.contributions.providers import get_provider
from masthead.contributions.reports import totals_by_currency

from .btcpay_standin import BTCPayStandIn, configured_btcpay


@pytest.fixture
def btcpay_api(settings):
    yield from configured_btcpay(settings)


def build_stream(standin: BTCPayStandIn) -> list[dict]:
    """Create the pending records through the real checkout path (and the pay-by-link
    periods through the real job's functions) and the events BTCPay would send, in order."""
    clock = iter(range(int(time.time()) - 100_000, int(time.time()), 60))
    events: list[dict] = []

    def start(frequency, amount, currency):
        contribution, _url = giving.start_contribution(
            frequency=frequency,
            amount=amount,
            currency=currency,
            provider_key="btcpay",
            base_url="http://testserver",
        )
        return contribution

    paid = start("once", 2500, "EUR")
    overpaid = start("once", 1000, "USD")
    late = start("once", 700, "USD")
    underpaid = start("once", 5000, "GBP")
    abandoned = start("once", 300, "USD")
    invalid = start("once", 400, "EUR")
    monthly = start("monthly", 500, "USD")

    events += standin.pay(paid.checkout_ref, "a@example.org", when=next(clock))
    events += standin.pay(overpaid.checkout_ref, "b@example.org", share=1.5, when=next(clock))
    events += standin.expire(late.checkout_ref, when=next(clock))
    events += standin.pay(late.checkout_ref, "c@example.org", when=next(clock))
    events += standin.pay(underpaid.checkout_ref, "d@example.org", share=0.4, when=next(clock))
    events += standin.expire(underpaid.checkout_ref, when=next(clock))
    events += standin.expire(abandoned.checkout_ref, when=next(clock))
    events += standin.mark_invalid(invalid.checkout_ref, when=next(clock))
    events += standin.pay(monthly.checkout_ref, "e@example.org", when=next(clock))

    provider = get_provider("btcpay")
    plan = RecurringPlan.objects.get(pk=monthly.plan_id)
    # The job opens periods of live plans: make this one live while they are opened.
    RecurringPlan.objects.filter(pk=plan.pk).update(status="active", activated_at=plan.created_at)
    plan.refresh_from_db()
    for months in (1, 2):
        start_at = monthly.created_at + dt.timedelta(days=31 * months)
        period = paybylink.open_period(plan, start_at)
        assert period is not None
        invoice = provider.create_invoice(period, "http://testserver/thanks/")
        if months == 2:
            events += standin.expire(invoice["id"], when=next(clock))
            invoice = provider.create_invoice(period, "http://testserver/thanks/", attempt=2)
        events += standin.pay(invoice["id"], when=next(clock))
    # Back to what the records were before any event: only the events make them move.
    RecurringPlan.objects.filter(pk=plan.pk).update(status="pending", activated_at=None)
    return events


def copies_of(events: list[dict], rng: random.Random) -> list[dict]:
    """Each event 2–3 times as BTCPay redelivers it, shuffled."""
    stream = []
    for event in events:
        stream.append(event)
        stream += [BTCPayStandIn.redelivery(event) for _ in range(rng.randint(1, 2))]
    rng.shuffle(stream)
    return stream


def deliver_all(standin: BTCPayStandIn, events: list[dict]) -> None:
    for event in events:
        body, headers = standin.signed(event)
        ledger.receive_webhook("btcpay", body, headers)


def snapshot() -> dict:
    contributions = sorted(
        (
            c.checkout_ref or "",
            c.payment_ref or "",
            c.status,
            c.failure_reason,
            c.amount,
            c.currency,
            c.frequency,
            c.is_renewal,
            bool(c.paid_at),
            c.donor.email if c.donor else None,
        )
        for c in Contribution.objects.select_related("donor")
    )
    plans = sorted(
        (p.status, p.amount, p.currency, p.donor.email if p.donor else None, p.payments.count())
        for p in RecurringPlan.objects.select_related("donor")
    )
    return {
        "contributions": contributions,
        "plans": plans,
        "totals": totals_by_currency(Contribution.objects.all()),
    }


def run_in_savepoint(func):
    sid = transaction.savepoint()
    try:
        func()
        return snapshot()
    finally:
        transaction.savepoint_rollback(sid)


def check_story(result: dict) -> None:
    by_status = sorted((c[2], c[3]) for c in result["contributions"])
    assert by_status.count(("succeeded", "")) == 6, by_status  # paid, overpaid, late, 3 monthly
    assert ("failed", "underpaid") in by_status
    assert ("failed", "invalid") in by_status
    assert ("abandoned", "") in by_status
    assert [p[0] for p in result["plans"]] == ["active"]
    assert result["plans"][0][3] == "e@example.org"
    totals = {t["currency"]: t["net"] for t in result["totals"]}
    assert totals == {"EUR": 2500, "USD": 1000 + 700 + 3 * 500}


@pytest.mark.django_db
@hsettings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rng=st.randoms(use_true_random=False))
def test_shuffled_redelivered_events_equal_in_order(btcpay_api, site, rng: random.Random):
    with transaction.atomic():
        events = build_stream(btcpay_api)
        expected = run_in_savepoint(lambda: deliver_all(btcpay_api, events))
        check_story(expected)

        def replay():
            deliver_all(btcpay_api, copies_of(events, rng))
            assert ProviderEvent.objects.filter(provider="btcpay").count() == len(events)

        assert run_in_savepoint(replay) == expected
        transaction.set_rollback(True)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_redeliveries_end_the_same(transactional_db, btcpay_api, site, settings):
    # (transactional_db first: tests/conftest.py's override hands it the serialized contents,
    # so that the flush at the end restores what the migrations made)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    events = build_stream(btcpay_api)
    stream = copies_of(events, random.Random(7))
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)
    chunks = [stream[i::8] for i in range(8)]

    def worker(chunk):
        try:
            barrier.wait(timeout=30)
            for event in chunk:
                body, headers = btcpay_api.signed(event)
                ledger.receive_webhook("btcpay", body, headers)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    # Events that lost a race wait and are applied by the retry; then nothing is pending.
    for provider_event in ProviderEvent.objects.exclude(status__in=["processed", "ignored"]):
        ledger.process_event(provider_event.pk)
    check_story(snapshot())
    assert ProviderEvent.objects.filter(provider="btcpay").count() == len(events)
    # One receipt per paid contribution, whatever the order and the copies.
    paid = Contribution.objects.filter(paid_at__isnull=False).count()
    receipts = [m for m in mail.outbox if m.subject.startswith("Receipt")]
    assert len(receipts) == paid == 6, [m.subject for m in mail.outbox]
