"""Insights' figures on the known dataset (conftest.py), exact, on SQLite and PostgreSQL —
months in New York time, so the events either side of midnight UTC land in the right month."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from masthead.insights import aggregates as agg

from .conftest import ZONE

pytestmark = pytest.mark.django_db

JAN, FEB, MAR, APR = (dt.date(2026, m, 1) for m in (1, 2, 3, 4))


@pytest.fixture
def period(known):
    return agg.Period(JAN, APR, zoneinfo.ZoneInfo(ZONE))


def test_period_of_whole_months_in_the_newsroom_zone(period):
    assert period.months == [JAN, FEB, MAR, APR]
    assert period.start == dt.datetime(2026, 1, 1, 5, 0, tzinfo=dt.UTC)
    assert period.end == dt.datetime(2026, 5, 1, 4, 0, tzinfo=dt.UTC)  # summer time by then
    last = agg.Period.last_months(12, now=dt.datetime(2026, 3, 1, 3, tzinfo=dt.UTC),
                                  tz=zoneinfo.ZoneInfo(ZONE))
    assert (last.first, last.last) == (dt.date(2025, 3, 1), FEB)


def test_revenue_per_month_currency_and_frequency_net_of_refunds_and_disputes(period):
    rows = {(r.month, r.currency, r.frequency): (r.payments, r.gross, r.net)
            for r in agg.revenue_by_month(period)}
    assert rows == {
        (JAN, "USD", "once"): (3, 1200, 1200),  # 1000 + 100 + an anonymous 100
        (JAN, "USD", "monthly"): (1, 300, 300),
        (FEB, "USD", "once"): (1, 500, 500),  # the unpaid 5000 is not revenue
        (FEB, "USD", "monthly"): (2, 600, 600),  # 03:00 UTC on 1 March is February in NY
        (FEB, "EUR", "once"): (1, 2000, 1500),  # 500 refunded
        (MAR, "EUR", "annual"): (1, 12000, 12000),  # 06:00 UTC on 1 March is March in NY
        (MAR, "GBP", "once"): (2, 1700, 700),  # a lost dispute counts nothing
        (APR, "USD", "once"): (2, 1700, 900),  # 800 refunded in full; 23:59 on 30 April
    }


def test_recurring_revenue_at_each_month_end(period):
    rows = {(r.month, r.currency): (r.plans, r.monthly)
            for r in agg.recurring_by_month(period)}
    assert rows == {
        (JAN, "USD"): (2, 800),  # the past-due 500 and the 300 started on 15 January
        (FEB, "USD"): (2, 800),  # the GBP plan started and ended within February
        (MAR, "USD"): (1, 500),  # the 300 was cancelled on 20 March
        (MAR, "EUR"): (1, 1000),  # 12000 a year
        (APR, "USD"): (1, 500),
        (APR, "EUR"): (1, 1000),
    }


def test_plans_started_cancelled_and_churn(period):
    months = {m.month: m for m in agg.plans_by_month(period)}
    assert {m: (r.active_at_start, r.started, r.cancelled) for m, r in months.items()} == {
        JAN: (2, {"monthly": 1}, {"monthly": 1}),
        FEB: (2, {"monthly": 1}, {"monthly": 1}),  # 00:30 on 1 February in NY: not at start
        MAR: (2, {"annual": 1}, {"monthly": 1}),
        APR: (2, {}, {}),
    }
    assert [months[m].churn for m in (JAN, FEB, MAR, APR)] == [0.5, 0.5, 0.5, 0.0]


def test_new_supporters_are_donors_first_paid_in_the_month(period):
    # January: Ada and Alan (the December donor and the anonymous payment are not new);
    # February: Katherine; March: the GBP donor; April: nobody new.
    assert agg.new_supporters_by_month(period) == {JAN: 2, FEB: 1, MAR: 1, APR: 0}


def test_confirmed_subscribers_per_newsletter_at_month_ends(known, period):
    newsletters, counts = agg.subscribers_by_month(period)
    assert [n.name for n in newsletters] == ["The Friday Lantern", "Morning Brief"]
    lantern, brief = known.lantern.pk, known.brief.pk
    assert counts == {
        JAN: {lantern: 2, brief: 1},
        FEB: {lantern: 3, brief: 2},  # confirmed at 23:30 on 28 February in NY
        MAR: {lantern: 2, brief: 1},  # one unsubscribed, one hard bounce
        APR: {lantern: 2, brief: 0},  # a complaint
    }


def test_signups_and_confirmations_per_month(period):
    assert agg.signups_by_month(period) == {
        JAN: {"requested": 3, "confirmed": 2},
        FEB: {"requested": 2, "confirmed": 2},
        MAR: {"requested": 0, "confirmed": 0},
        APR: {"requested": 0, "confirmed": 0},
    }


def test_unsubscribes_and_bounces_per_edition(known, period):
    rows = {r.edition_id: (r.sent, r.failed, r.unsubscribes, r.bounces, r.complaints)
            for r in agg.editions_in(period)}
    assert rows == {
        known.e1.pk: (2, 0, 0, 1, 0),  # a soft bounce the day after
        known.e2.pk: (2, 1, 1, 0, 0),  # the unsubscribe came after this one, not e1
        known.e3.pk: (2, 0, 0, 1, 1),
    }


def test_campaign_funnel_per_variant(known, period):
    rows = {r.variant: (r.impressions, r.clicks, r.conversions, r.contributions_in_period)
            for r in agg.campaign_funnel(period)}
    assert rows == {"A": (1010, 50, 5, 2), "B": (800, 20, 2, 1)}


def test_a_period_with_nothing_in_it(known):
    empty = agg.Period(dt.date(2024, 1, 1), dt.date(2024, 3, 1), zoneinfo.ZoneInfo(ZONE))
    assert agg.revenue_by_month(empty) == []
    assert agg.recurring_by_month(empty) == []
    assert agg.editions_in(empty) == []
    assert agg.new_supporters_by_month(empty) == dict.fromkeys(empty.months, 0)
