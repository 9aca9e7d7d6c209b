"""One submission of the give form, one checkout at the provider (issue 8): identical posts
sent at the same moment — a double click, a retried request — all lead to the same checkout,
and the provider is asked for exactly one session."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest
from django.db import connection

from masthead.contributions.models import CheckoutSubmission, Contribution

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def post_at_once(url: str, form: dict, copies: int) -> list[tuple[int, str]]:
    """POST the same form ``copies`` times, all released at one barrier."""
    opener = urllib.request.build_opener(NoRedirect)
    body = urlencode(form).encode()
    barrier = threading.Barrier(copies)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def send():
        request = urllib.request.Request(url, data=body, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        barrier.wait(timeout=30)
        try:
            response = opener.open(request, timeout=60)
            outcome = (response.status, response.headers.get("Location", ""))
        except urllib.error.HTTPError as exc:
            outcome = (exc.code, exc.headers.get("Location", ""))
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=send) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    connection.close()
    return results


GIFT = {"frequency": "monthly", "amount": "500", "currency": "USD", "provider": "stripe"}


@pytest.mark.parametrize("copies", [2, 8])
def test_identical_concurrent_posts_open_one_stripe_session(live_server, site, stripe_api, copies):
    url = f"{live_server.url}/support/checkout/"
    results = post_at_once(url, {**GIFT, "submission": "k" * 32}, copies)
    assert len(results) == copies
    assert {status for status, _ in results} == {303}, results
    locations = {location for _, location in results}
    assert len(locations) == 1, locations
    assert len(stripe_api.calls("POST", "/v1/checkout/sessions")) == 1
    assert Contribution.objects.count() == 1
    assert Contribution.objects.get().checkout_ref in locations.pop()


def test_without_javascript_the_same_reader_and_form_is_one_checkout(live_server, site, stripe_api):
    """No submission key (JavaScript off): the reader's address and the form decide."""
    url = f"{live_server.url}/support/checkout/"
    results = post_at_once(url, GIFT, 4)
    assert {status for status, _ in results} == {303}, results
    assert len({location for _, location in results}) == 1
    assert len(stripe_api.calls("POST", "/v1/checkout/sessions")) == 1

    # A different amount is a different submission: a second checkout.
    other = post_at_once(url, {**GIFT, "amount": "700"}, 1)
    assert other[0][0] == 303 and other[0][1] not in {location for _, location in results}
    assert len(stripe_api.calls("POST", "/v1/checkout/sessions")) == 2
    assert Contribution.objects.count() == 2


def test_a_refused_first_attempt_lets_the_reader_try_again(client, site, stripe_api):
    stripe_api.fail_next["/v1/checkout/sessions"] = 3  # the SDK retries twice
    form = {**GIFT, "submission": "r" * 32}
    refused = client.post("/support/checkout/", form)
    assert refused.status_code == 503
    assert "Nothing was charged" in refused.content.decode()
    assert CheckoutSubmission.objects.count() == 0
    again = client.post("/support/checkout/", form)
    assert again.status_code == 303


def test_a_malformed_submission_key_is_ignored_not_an_error(client, site):
    form = {"frequency": "once", "amount": "500", "currency": "USD", "provider": "sandbox"}
    for key in ("<script>", "x" * 500, "short", "ключ" * 10):
        response = client.post("/support/checkout/", {**form, "submission": key})
        assert response.status_code == 303, key


def test_without_a_key_the_claim_lasts_only_a_double_clicks_time(client, site, stripe_api):
    """Readers behind one shared address (NAT) giving the same amount minutes apart are
    different readers: without the page's key a claim lasts seconds; with it, minutes."""
    from datetime import timedelta

    from django.utils import timezone

    first = client.post("/support/checkout/", GIFT)
    keyed = client.post("/support/checkout/", {**GIFT, "submission": "z" * 32})
    assert first.status_code == keyed.status_code == 303
    assert len(stripe_api.calls("POST", "/v1/checkout/sessions")) == 2
    CheckoutSubmission.objects.update(created_at=timezone.now() - timedelta(seconds=30))
    assert client.post("/support/checkout/", GIFT)["Location"] != first["Location"]
    assert client.post("/support/checkout/", {**GIFT, "submission": "z" * 32})[
        "Location"
    ] == keyed["Location"]
    assert len(stripe_api.calls("POST", "/v1/checkout/sessions")) == 3
