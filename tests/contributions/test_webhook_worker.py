"""Webhooks: the request verifies, stores once and answers; the worker applies, in batches.

With the database task backend (as ``masthead run``), a delivery leaves the event *received*
and one ``apply_events`` task queued for any number of deliveries; the task applies them in
the order they arrived, each in its own savepoint; a delivery that failed to apply is put
back when the provider retries it; contribution writes queue no Wagtail reference-index
tasks. The lean WSGI path (``masthead.core.lean``) serves the same view without the reader
middleware. Real concurrency: senders and two appliers at once apply every event once.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time

import pytest
from django.core import mail
from django.db import connection
from django_tasks_db.models import DBTaskResult

from masthead.contributions import giving, ledger, tasks
from masthead.contributions.models import Contribution, ProviderEvent, RecurringPlan, StatusChange
from masthead.core.state import state_store

from .conftest import WHSEC
from .standins import stripe_signature

DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.fixture(autouse=True)
def fresh_applier_state():
    state_store().delete_many([ledger.WAKE_KEY, ledger.LOCK_KEY])
    yield
    state_store().delete_many([ledger.WAKE_KEY, ledger.LOCK_KEY])


def post(client, event: dict, signed_at: int | None = None):
    body = json.dumps(event).encode()
    return client.post(
        "/support/webhooks/stripe/",
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_signature(body, WHSEC, signed_at),
    )


def queued(task_name: str) -> int:
    return DBTaskResult.objects.filter(task_path__endswith=task_name).count()


def paid_plan(stripe_api, email="worker@example.org"):
    contribution, _url = giving.start_contribution(
        frequency="monthly", amount=500, currency="USD", provider_key="stripe"
    )
    return contribution, stripe_api.pay(contribution.checkout_ref, email, "W")


@pytest.mark.django_db
def test_request_stores_and_answers_the_worker_applies(
    client, site, stripe_api, settings, on_commit
):
    settings.TASKS = DB_TASKS
    contribution, events = paid_plan(stripe_api)
    sub = stripe_api.sessions[contribution.checkout_ref]["subscription"]
    events += [stripe_api.renewal(sub, 2), stripe_api.renewal(sub, 3)]

    for event in events:
        response = post(client, event)
        assert response.status_code == 200, response.content
        assert response.json() == {"status": "received", "id": event["id"]}
    # Stored, not applied: nothing changed yet, and one task wakes the worker for all of them.
    assert ProviderEvent.objects.filter(status="received").count() == len(events)
    contribution.refresh_from_db()
    assert contribution.status == "pending" and contribution.paid_at is None
    assert queued("apply_events") == 1

    # The provider retries one (a new transmission): answered from the stored event.
    again = post(client, events[0], signed_at=int(time.time()) - 30)
    assert again.status_code == 200 and again.json()["status"] == "received"
    assert ProviderEvent.objects.count() == len(events)
    assert queued("apply_events") == 1

    # The worker's task: everything applied, in order, in one run.
    with on_commit():
        assert ledger.apply_received_events(batch=2) == len(events)
    assert set(ProviderEvent.objects.values_list("status", flat=True)) <= {"processed", "ignored"}
    contribution.refresh_from_db()
    assert contribution.status == "succeeded"
    plan = RecurringPlan.objects.get()
    assert plan.status == "active" and plan.payments.count() == 3
    # One receipt task per paid contribution, queued when its batch committed.
    assert queued("send_receipt") == 3
    # Contribution writes queue no Wagtail reference-index tasks.
    assert queued("update_reference_index_task") == 0
    assert not DBTaskResult.objects.filter(task_path__startswith="wagtail").exists()

    # A retry of an applied event is answered with what became of it, and changes nothing.
    late = post(client, events[-1], signed_at=int(time.time()) - 60)
    assert late.json() == {"status": "processed", "id": events[-1]["id"]}
    assert plan.payments.count() == 3


@pytest.mark.django_db
def test_an_exact_replay_is_refused_and_stores_nothing(client, site, stripe_api, settings):
    settings.TASKS = DB_TASKS
    _contribution, events = paid_plan(stripe_api)
    now = int(time.time())
    assert post(client, events[0], signed_at=now).status_code == 200
    replay = post(client, events[0], signed_at=now)
    assert replay.status_code == 409
    assert ProviderEvent.objects.count() == 1


@pytest.mark.django_db
def test_one_bad_event_fails_alone_and_a_retry_puts_it_back(
    client, site, stripe_api, settings, monkeypatch
):
    settings.TASKS = DB_TASKS
    first, first_events = paid_plan(stripe_api, "one@example.org")
    second, second_events = paid_plan(stripe_api, "two@example.org")
    first_sub = stripe_api.sessions[first.checkout_ref]["subscription"]
    for event in first_events + second_events:
        post(client, event)

    real = ledger.apply_event

    def apply_event(provider, event):
        result = real(provider, event)  # its writes are made, then the savepoint is lost
        ours = (
            event.subscription_ref == first_sub
            or event.checkout_ref == first.checkout_ref
            or event.contribution_id == first.pk
            or (first.plan_id and event.plan_id == first.plan_id)
        )
        if ours:
            raise RuntimeError("the database went away for a moment")
        return result

    monkeypatch.setattr(ledger, "apply_event", apply_event)
    ledger.apply_received_events()
    statuses = dict(ProviderEvent.objects.values_list("event_id", "status"))
    first_statuses = {statuses[e["id"]] for e in first_events}
    assert "failed" in first_statuses and "processed" not in first_statuses
    assert {statuses[e["id"]] for e in second_events} <= {"processed", "ignored"}
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.status == "succeeded"
    # Nothing of the failed events' savepoints survived: no payment, no history naming them.
    assert first.status == "pending" and first.paid_at is None
    failed = ProviderEvent.objects.filter(event_id__in=[e["id"] for e in first_events])
    assert not StatusChange.objects.filter(event__in=failed).exists()

    # Stripe retries the failed events: they are queued again, and applied this time.
    monkeypatch.setattr(ledger, "apply_event", real)
    for event in first_events:
        retry = post(client, event, signed_at=int(time.time()) - 90)
        assert retry.json()["status"] == (
            "ignored" if statuses[event["id"]] == "ignored" else "received"
        )
    ledger.apply_received_events()
    first.refresh_from_db()
    assert first.status == "succeeded"


@pytest.mark.django_db
def test_a_run_leaves_what_it_cannot_finish_to_the_next(client, site, stripe_api, settings):
    settings.TASKS = DB_TASKS
    contribution, events = paid_plan(stripe_api)
    sub = stripe_api.sessions[contribution.checkout_ref]["subscription"]
    events += [stripe_api.renewal(sub, n) for n in range(2, 8)]
    for event in events:
        post(client, event)
    DBTaskResult.objects.all().delete()
    state_store().delete(ledger.WAKE_KEY)
    # A run that may apply one batch and no more wakes the next run for the rest.
    settings.MASTHEAD_WEBHOOK_APPLY_SECONDS = 0.000001
    applied = ledger.apply_received_events(batch=3)
    assert 0 < applied < len(events)
    assert queued("apply_events") == 1
    settings.MASTHEAD_WEBHOOK_APPLY_SECONDS = 30
    assert ledger.apply_received_events() == len(events) - applied
    assert RecurringPlan.objects.get().payments.count() == 7


@pytest.mark.django_db
def test_the_sweep_applies_what_a_lost_wake_up_left(client, site, stripe_api, settings):
    settings.TASKS = DB_TASKS
    _contribution, events = paid_plan(stripe_api)
    post(client, events[0])
    DBTaskResult.objects.all().delete()  # the task was lost (a worker died with it)
    tasks.schedule_apply()
    assert queued("apply_events") == 0  # too recent: its own wake-up may still come
    ProviderEvent.objects.update(received_at=ProviderEvent.objects.get().received_at.replace(
        year=2020))  # fmt: skip
    tasks.schedule_apply()
    assert queued("apply_events") == 1


@pytest.mark.django_db
def test_immediate_backend_applies_before_the_answer(client, site, stripe_api, on_commit):
    contribution, events = paid_plan(stripe_api, "now@example.org")
    with on_commit():
        responses = [post(client, event) for event in events]
    answers = [r.json()["status"] for r in responses]
    assert "processed" in answers and set(answers) <= {"processed", "ignored"}
    contribution.refresh_from_db()
    assert contribution.status == "succeeded"
    assert [m.to for m in mail.outbox] == [["now@example.org"]]


def wsgi_post(path: str, body: bytes, headers: dict[str, str]) -> tuple[str, bytes]:
    """One request through ``masthead.wsgi.application`` (what gunicorn calls)."""
    from masthead.wsgi import application

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()},
    }
    status: list[str] = []
    result = application(environ, lambda s, h, exc_info=None: status.append(s))
    content = b"".join(result)
    result.close()
    return status[0], content


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_lean_wsgi_path_serves_webhooks_and_links_still_resolve(site, stripe_api, settings):
    from masthead.core import lean

    handled = []
    real = lean.LeanHandler.get_response

    def spy(self, request):
        handled.append(request.path)
        return real(self, request)

    lean.LeanHandler.get_response = spy
    try:
        contribution, events = paid_plan(stripe_api, "lean@example.org")
        for event in events:
            body = json.dumps(event).encode()
            status, content = wsgi_post(
                "/support/webhooks/stripe/",
                body,
                {"Stripe-Signature": stripe_signature(body, WHSEC)},
            )
            assert status.startswith("200"), content
        # Applied at once (immediate backend), receipt sent: its manage link was reversed
        # against the whole URLconf while the lean one routed the request.
        contribution.refresh_from_db()
        assert contribution.status == "succeeded"
        [receipt] = mail.outbox
        assert "/support/manage/" in receipt.body
        # Refusals take the lean path too: a bad signature, an unknown provider, too big.
        bad, _ = wsgi_post("/support/webhooks/stripe/", b"{}", {"Stripe-Signature": "t=1,v1=0"})
        assert bad.startswith("400")
        unknown, _ = wsgi_post("/support/webhooks/nobody/", b"{}", {})
        assert unknown.startswith("404")
        huge, _ = wsgi_post("/support/webhooks/stripe/", b"x" * (2 * 1024 * 1024), {})
        assert huge.startswith("413")
        assert handled == ["/support/webhooks/stripe/"] * (len(events) + 1) + [
            "/support/webhooks/nobody/",
            "/support/webhooks/stripe/",
        ]
    finally:
        lean.LeanHandler.get_response = real
        state_store().delete_many([ledger.WAKE_KEY, ledger.LOCK_KEY])


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_senders_and_two_workers_at_once_apply_every_event_once(site, stripe_api, settings):
    """Eight senders post renewals and retries while two appliers run: one applies at a
    time, every event is applied exactly once, every renewal recorded once."""
    settings.TASKS = DB_TASKS
    plans = []
    for n in range(4):
        contribution, events = paid_plan(stripe_api, f"r{n}@example.org")
        for event in events:
            ledger.receive_webhook(
                "stripe",
                json.dumps(event).encode(),
                {"Stripe-Signature": stripe_signature(json.dumps(event).encode(), WHSEC)},
            )
        plans.append(stripe_api.sessions[contribution.checkout_ref]["subscription"])
    ledger.apply_received_events()
    renewals = [stripe_api.renewal(sub, period) for sub in plans for period in range(2, 12)]
    now = int(time.time())
    # Each renewal sent twice (Stripe's retries: new transmissions of the same event).
    deliveries = [(e, now - copy) for e in renewals for copy in range(2)]
    chunks = [deliveries[i::8] for i in range(8)]
    errors: list[BaseException] = []
    done = threading.Event()
    runs: list[int] = []

    def sender(chunk):
        try:
            for event, signed_at in chunk:
                body = json.dumps(event).encode()
                ledger.receive_webhook(
                    "stripe", body, {"Stripe-Signature": stripe_signature(body, WHSEC, signed_at)}
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    def applier():
        try:
            while not done.is_set():
                runs.append(ledger.apply_received_events(batch=5))
            runs.append(ledger.apply_received_events(batch=5))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    appliers = [threading.Thread(target=applier) for _ in range(2)]
    senders = [threading.Thread(target=sender, args=(c,)) for c in chunks]
    for thread in appliers + senders:
        thread.start()
    for thread in senders:
        thread.join(timeout=300)
    done.set()
    for thread in appliers:
        thread.join(timeout=300)
    runs.append(ledger.apply_received_events())  # stored after the appliers' last look
    assert errors == []
    assert ProviderEvent.objects.filter(event_id__in=[e["id"] for e in renewals]).count() == len(
        renewals
    )
    assert not ProviderEvent.objects.exclude(status__in=["processed", "ignored"]).exists()
    assert Contribution.objects.filter(is_renewal=True).count() == len(renewals)
    for plan in RecurringPlan.objects.all():
        assert plan.payments.count() == 11
        # One history row per renewal (— → succeeded), none written twice.
        renewal_history = StatusChange.objects.filter(
            contribution__plan=plan, contribution__is_renewal=True
        )
        assert renewal_history.count() == 10
    assert sum(runs) == len(renewals)


@pytest.mark.django_db
def test_the_lean_path_keeps_the_onion_hosts_exemption_from_the_https_redirect(settings):
    """The lean handler has the reader host middleware too: with HTTPS redirects on, a webhook
    POST to the main domain over HTTP is redirected as on the full path, and one to the onion
    address (plain HTTP, encrypted by Tor) is not."""
    from django.core.handlers.wsgi import WSGIHandler

    from masthead.core.lean import LeanDispatcher

    onion = "a" * 56 + ".onion"
    settings.SECURE_SSL_REDIRECT = True
    settings.MASTHEAD_ONION_HOST = onion
    settings.ALLOWED_HOSTS = ["news.example.org", onion]
    application = LeanDispatcher(WSGIHandler())

    def status_on(host: str) -> str:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/support/webhooks/nobody/",
            "SERVER_NAME": host,
            "SERVER_PORT": "80",
            "HTTP_HOST": host,
            "CONTENT_LENGTH": "2",
            "wsgi.input": io.BytesIO(b"{}"),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        status: list[str] = []
        result = application(environ, lambda s, h, exc_info=None: status.append(s))
        b"".join(result)
        result.close()
        return status[0]

    assert status_on("news.example.org").startswith("301")
    assert status_on(onion).startswith("404")  # reached the view: an unknown provider


def test_only_the_lean_urlconfs_routes_take_the_lean_path(settings):
    """The lean URLconf is the one list of lean routes: a POST it resolves (either webhook)
    goes lean, anything else — another POST, a GET of a webhook path, a path that only
    starts like one — the ordinary way; an empty MASTHEAD_LEAN_URLCONF turns it off."""
    from masthead.core.lean import LeanDispatcher

    dispatcher = LeanDispatcher(lambda environ, start_response: None)
    for path in ("/support/webhooks/stripe/", "/anymail/postmark/tracking/"):
        assert dispatcher._lean(path), path
    for path in ("/support/", "/support/webhooks/", "/support/webhooks/stripe/x/",
                 "/ru/support/webhooks/stripe/", "/anymail/postmark/"):
        assert not dispatcher._lean(path), path
    settings.MASTHEAD_LEAN_URLCONF = ""
    assert not LeanDispatcher(lambda environ, start_response: None)._lean(
        "/support/webhooks/stripe/")
