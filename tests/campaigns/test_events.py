"""The aggregate counter endpoint: batches counted in the cache and flushed to the database;
bad input and floods get clear 4xx answers and change nothing; conversions from sources."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from masthead.campaigns.counters import (
    flush_counters,
    on_contribution_succeeded,
    pending_counts,
    record_conversion,
)
from masthead.campaigns.models import VariantCounter

from .factories import make_campaign

pytestmark = pytest.mark.django_db
URL = "/campaigns/events/"


@pytest.fixture
def campaigns(site):
    return make_campaign(name="one", variants=2), make_campaign(name="two", placement="banner")


def post(client: Client, payload, **extra):
    body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    return client.post(URL, body, content_type="text/plain;charset=UTF-8", **extra)


def totals(variant) -> tuple[int, int, int, int]:
    counter = VariantCounter.objects.filter(variant=variant).first()
    if counter is None:
        return (0, 0, 0, 0)
    return (counter.impressions, counter.clicks, counter.dismissals, counter.conversions)


def test_batch_is_counted_in_cache_then_flushed_once(client, campaigns):
    one, two = campaigns
    a, b = one.variants.order_by("sort_order")
    banner = two.variants.get()
    events = [
        {"campaign": one.pk, "variant": a.pk, "event": "impression"},
        {"campaign": one.pk, "variant": a.pk, "event": "impression"},
        {"campaign": one.pk, "variant": a.pk, "event": "click"},
        {"campaign": str(one.pk), "variant": str(b.pk), "event": "dismiss"},
        {"campaign": two.pk, "variant": banner.pk, "event": "impression"},
    ]
    response = post(client, {"events": events})
    assert response.status_code == 204
    assert not response.cookies
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    # Nothing written per event: the numbers wait in the cache.
    assert not VariantCounter.objects.exists()
    assert pending_counts([a.pk])[a.pk] == {"impression": 2, "click": 1}
    assert flush_counters() == 5
    assert totals(a) == (2, 1, 0, 0)
    assert totals(b) == (0, 0, 1, 0)
    assert totals(banner) == (1, 0, 0, 0)
    # A second flush with nothing new adds nothing.
    assert flush_counters() == 0
    assert totals(a) == (2, 1, 0, 0)
    post(client, {"events": events[:1]})
    flush_counters()
    assert totals(a) == (3, 1, 0, 0)


@pytest.mark.parametrize(
    "payload, status, message",
    [
        (b"not json at all", 400, "not JSON"),
        (b"\xff\xfe\x00garbage", 400, "not JSON"),
        ([1, 2, 3], 400, "Expected"),
        ({"events": []}, 400, "Expected"),
        ({"events": "impression"}, 400, "Expected"),
        ({"events": [42]}, 400, "not an object"),
        ({"events": [{"campaign": "x", "variant": 1, "event": "impression"}]}, 400, "numeric"),
        ({"events": [{"campaign": True, "variant": 1, "event": "impression"}]}, 400, "numeric"),
        ({"events": [{"campaign": -1, "variant": 1, "event": "impression"}]}, 400, "numeric"),
        ({"events": [{"campaign": 1, "variant": 1, "event": "purchase"}]}, 400, "event must be"),
        ({"events": [{"campaign": 1, "variant": 1}] * 51}, 400, "At most 50"),
    ],
)
def test_bad_input_gets_a_clear_400_and_changes_nothing(
    client, campaigns, payload, status, message
):
    response = post(client, payload)
    assert response.status_code == status
    assert message in response.json()["error"]
    flush_counters()
    assert not VariantCounter.objects.exists()


def test_unknown_campaign_or_foreign_variant_refuses_the_whole_batch(client, campaigns):
    one, two = campaigns
    a = one.variants.first()
    good = {"campaign": one.pk, "variant": a.pk, "event": "impression"}
    for bad in (
        {"campaign": 999999, "variant": a.pk, "event": "impression"},
        {"campaign": one.pk, "variant": 999999, "event": "impression"},
        # A real variant, but of another campaign: can't pad campaign two with one's variant.
        {"campaign": two.pk, "variant": a.pk, "event": "click"},
    ):
        response = post(client, {"events": [good, bad]})
        assert response.status_code == 404
        assert "Unknown campaign" in response.json()["error"]
    flush_counters()
    assert totals(a) == (0, 0, 0, 0)


def test_huge_body_is_refused(client, campaigns):
    one = campaigns[0]
    a = one.variants.first()
    events = [{"campaign": one.pk, "variant": a.pk, "event": "impression", "pad": "x" * 200}] * 45
    response = post(client, {"events": events})
    assert response.status_code == 413
    response = post(client, b"{" + b" " * 3_000_000 + b"}")
    assert response.status_code in (400, 413)
    flush_counters()
    assert totals(a) == (0, 0, 0, 0)


def test_only_post_and_only_from_this_site(client, campaigns):
    assert client.get(URL).status_code == 405
    one = campaigns[0]
    a = one.variants.first()
    payload = {"events": [{"campaign": one.pk, "variant": a.pk, "event": "click"}]}
    assert post(client, payload, headers={"Origin": "https://evil.example"}).status_code == 403
    assert post(client, payload, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert post(client, payload, headers={"Origin": "http://testserver"}).status_code == 204
    flush_counters()
    assert totals(a) == (0, 1, 0, 0)


def test_flood_from_one_address_is_capped(client, campaigns, settings):
    settings.MASTHEAD_CAMPAIGNS_EVENTS_PER_HOUR = 120
    one = campaigns[0]
    a = one.variants.first()
    batch = {"events": [{"campaign": one.pk, "variant": a.pk, "event": "click"}] * 50}
    statuses = [post(client, batch).status_code for _ in range(10)]
    assert statuses[:2] == [204, 204]
    assert set(statuses[2:]) == {429}
    refused = post(client, batch)
    assert refused["Retry-After"] == "3600"
    assert "Too many" in refused.json()["error"]
    # Another address still gets through; the flooder moved the count by at most its budget.
    assert post(client, batch, REMOTE_ADDR="10.9.8.7").status_code == 204
    flush_counters()
    assert totals(a)[1] == 150


def test_rate_limit_keeps_no_address_in_cache_keys(client, campaigns):
    from django.core.cache.backends.redis import RedisCacheClient

    from masthead.core.state import state_store

    one = campaigns[0]
    a = one.variants.first()
    post(client, {"events": [{"campaign": one.pk, "variant": a.pk, "event": "click"}]},
         REMOTE_ADDR="203.0.113.77")
    store = state_store()._cache
    if isinstance(store, RedisCacheClient):  # Redis (CACHE_URL=redis://…)
        keys = " ".join(k.decode() for k in store.get_client().keys("*"))
    else:  # diskcache, the embedded default
        keys = " ".join(str(k) for k in store)
    assert "203.0.113.77" not in keys
    assert "campaigns:rate:" in keys


def test_conversions_are_counted_from_the_source(campaigns):
    one, two = campaigns
    a = one.variants.first()
    assert record_conversion(f"appeal:{one.pk}:{a.pk}")
    on_contribution_succeeded(sender=None, contribution=None, source=f"appeal:{one.pk}:{a.pk}")
    for source in ["", "give-page", f"appeal:{two.pk}:{a.pk}", f"appeal:{one.pk}:999999",
                   f"appeal:{one.pk}:{a.pk}:extra", "appeal:1:1; DROP TABLE"]:
        assert not record_conversion(source)
        on_contribution_succeeded(sender=None, contribution=None, source=source)
    assert totals(a) == (0, 0, 0, 2)


def test_contribution_succeeded_signal_counts_a_conversion(campaigns):
    signals = pytest.importorskip("masthead.contributions.signals")
    one = campaigns[0]
    a = one.variants.first()
    signals.contribution_succeeded.send(
        sender=None, contribution=None, source=f"appeal:{one.pk}:{a.pk}"
    )
    assert totals(a)[3] == 1


def test_scheduler_runs_the_flush(client, campaigns):
    from masthead.core.scheduler import JOBS

    job = JOBS["campaigns.flush_counters"]
    assert job.seconds == 60
    one = campaigns[0]
    a = one.variants.first()
    post(client, {"events": [{"campaign": one.pk, "variant": a.pk, "event": "impression"}]})
    assert job.func() == 1
    assert totals(a) == (1, 0, 0, 0)
