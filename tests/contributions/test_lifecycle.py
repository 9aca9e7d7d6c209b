"""Recurring plans over time through the sandbox (renewals, dunning, cancellation after the
configured tries), receipts (incl. the neutral sender), the success signal exactly once,
reconciliation, donor data encrypted at rest, and the export/erase commands."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from masthead.contributions import giving
from masthead.contributions.models import (
    Contribution,
    ContributionStatus,
    Donor,
    PlanStatus,
    ProviderEvent,
)
from masthead.contributions.providers import get_provider
from masthead.contributions.signals import contribution_succeeded
from masthead.contributions.tasks import reconcile

from .standins import deliver, post_webhook

pytestmark = pytest.mark.django_db


def give(frequency="monthly", amount=500, currency="USD", email="giver@example.org", **kw):
    contribution, _url = giving.start_contribution(
        frequency=frequency, amount=amount, currency=currency, provider_key="sandbox", **kw
    )
    deliver(get_provider("sandbox").complete(contribution, email, "Gia Ver"))
    contribution.refresh_from_db()
    return contribution


def test_dunning_then_cancel_after_the_configured_tries(site, on_commit, settings):
    settings.MASTHEAD_DUNNING_MAX_TRIES = 3
    with on_commit():
        first = give()
    plan = first.plan
    plan.refresh_from_db()
    sandbox = get_provider("sandbox")
    with on_commit():
        deliver(sandbox.renew(plan, period=2))
    assert mail.outbox[-1].subject.startswith("Receipt")
    with on_commit():
        deliver(sandbox.renew(plan, succeed=False, period=3, attempt=1))
    plan.refresh_from_db()
    assert plan.status == PlanStatus.PAST_DUE and plan.failed_attempts == 1
    assert "We will try 2 more times" in mail.outbox[-1].body
    with on_commit():
        deliver(sandbox.renew(plan, succeed=False, period=3, attempt=2))
    assert "We will try once more" in mail.outbox[-1].body
    with on_commit():
        deliver(sandbox.renew(plan, succeed=False, period=3, attempt=3))
    plan.refresh_from_db()
    assert plan.status == PlanStatus.CANCELLED
    assert "after several tries" in mail.outbox[-1].body
    subjects = [m.subject.split(" — ")[0] for m in mail.outbox]
    assert subjects == [
        "Receipt for your contribution",
        "Receipt for your contribution",
        "Your payment did not go through",
        "Your payment did not go through",
        "Your recurring support is cancelled",
    ]
    renewal = Contribution.objects.get(payment_ref=f"sbx_inv_{plan.pk}_3")
    assert renewal.status == ContributionStatus.FAILED and renewal.attempts == 3


def test_a_retry_that_succeeds_clears_past_due(site, on_commit):
    with on_commit():
        plan = give().plan
    sandbox = get_provider("sandbox")
    with on_commit():
        deliver(sandbox.renew(plan, succeed=False, period=2, attempt=1))
        deliver(sandbox.renew(plan, succeed=True, period=2, attempt=2))
    plan.refresh_from_db()
    assert plan.status == PlanStatus.ACTIVE and plan.failed_attempts == 0
    renewal = Contribution.objects.get(payment_ref=f"sbx_inv_{plan.pk}_2")
    assert renewal.status == ContributionStatus.SUCCEEDED


def test_signal_once_per_contribution_and_neutral_receipts(site, on_commit, settings):
    settings.MASTHEAD_RECEIPT_NEUTRAL = True
    seen = []

    def listener(sender, contribution, source, **kwargs):
        seen.append((contribution.pk, source, contribution.status))

    contribution_succeeded.connect(listener)
    try:
        with on_commit():
            first = give(frequency="once", amount=1500, source="banner:4:9")
            # The same sandbox webhook delivered again (a provider retry, signed afresh).
            event = ProviderEvent.objects.get()
            body = json.dumps(event.payload).encode()
            from masthead.contributions.providers.sandbox import SIGNATURE_HEADER, sign

            retry = sign(body, timestamp=int(time.time()) + 1)
            post_webhook("sandbox", body, {SIGNATURE_HEADER: retry})
    finally:
        contribution_succeeded.disconnect(listener)
    assert seen == [(first.pk, "banner:4:9", "succeeded")]
    [receipt] = mail.outbox
    assert receipt.subject == settings.MASTHEAD_RECEIPT_NEUTRAL_SUBJECT
    assert receipt.from_email == settings.MASTHEAD_RECEIPT_NEUTRAL_FROM
    assert "Lantern" not in receipt.subject + receipt.from_email
    assert "$15" in receipt.body and "/support/manage/" in receipt.body
    html = receipt.alternatives[0][0]
    assert "$15" in html


def test_reconcile_gives_up_on_old_sandbox_checkouts(site):
    contribution, _ = giving.start_contribution(
        frequency="once", amount=500, currency="USD", provider_key="sandbox"
    )
    Contribution.objects.filter(pk=contribution.pk).update(
        created_at=timezone.now() - dt.timedelta(days=3)
    )
    report = reconcile()
    assert report == {
        "checked": 1, "updated": 0, "abandoned": 1, "plans checked": 0, "retried": 0
    }
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.ABANDONED
    assert reconcile()["checked"] == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_donor_email_is_not_stored_in_clear(site):
    # Committed for real (no test transaction), so the rows are in the database files.
    give(email="secret.donor@example.org", frequency="once", amount=700)
    donor = Donor.objects.get()
    assert donor.email == "secret.donor@example.org" and donor.name == "Gia Ver"
    event = ProviderEvent.objects.get()
    assert event.payload["data"]["email"] == "secret.donor@example.org"  # decrypts
    with connection.cursor() as cursor:
        cursor.execute("SELECT email, name FROM contributions_donor")
        raw_email, raw_name = cursor.fetchone()
        cursor.execute("SELECT payload FROM contributions_providerevent")
        (raw_payload,) = cursor.fetchone()
    assert "secret.donor" not in raw_email + raw_payload and "Gia" not in raw_name
    if connection.vendor == "sqlite":
        path = connection.settings_dict["NAME"]
        data = b""
        for suffix in ("", "-wal"):
            # Read the file in a child process: closing a descriptor of an open SQLite file in
            # this process would drop every POSIX lock SQLite holds on it here, and the next
            # concurrent writer would corrupt the test database (sqlite.org/howtocorrupt.html).
            data += subprocess.run(["cat", f"{path}{suffix}"], capture_output=True).stdout
        assert b"sbx_pay_" in data  # the rows are in these files...
        assert b"secret.donor" not in data and b"Gia Ver" not in data  # ...not the donor
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM contributions_donor WHERE email LIKE %s OR name LIKE %s",
                ["%secret.donor%", "%Gia%"],
            )
            assert cursor.fetchone()[0] == 0
            cursor.execute(
                "SELECT count(*) FROM contributions_providerevent WHERE payload LIKE %s",
                ["%secret.donor%"],
            )
            assert cursor.fetchone()[0] == 0


def test_export_and_erase_commands(site, on_commit, capsys, tmp_path):
    with on_commit():
        give(email="cmd@example.org", message="Keep going", name="Cee", is_public=True)
    call_command("donor_export", "CMD@example.org")
    data = json.loads(capsys.readouterr().out)
    assert data["donor"]["email"] == "cmd@example.org"
    assert data["contributions"][0]["message"] == "Keep going"
    out = tmp_path / "export.json"
    call_command("donor_export", "cmd@example.org", "--output", str(out))
    assert json.loads(out.read_text())["donor"]["name"] == "Gia Ver"
    with pytest.raises(CommandError):
        call_command("donor_export", "nobody@example.org")
    call_command("donor_erase", "cmd@example.org", "--yes")
    donor = Donor.objects.get()
    assert donor.erased_at and donor.email == ""
    contribution = Contribution.objects.get()
    assert contribution.status == "succeeded" and contribution.message == ""
    assert contribution.plan.status == PlanStatus.CANCELLED
    with pytest.raises(CommandError):
        call_command("donor_erase", "cmd@example.org", "--yes")
    # The same person can give again later: a fresh donor record.
    with on_commit():
        give(email="cmd@example.org", frequency="once")
    assert Donor.objects.count() == 2


def test_sandbox_event_command_and_demo_content(site, on_commit, capsys):
    from masthead.contributions.demo import load_demo
    from masthead.contributions.models import AmountPreset
    from masthead.contributions.options import giving_options

    load_demo()
    load_demo()
    assert AmountPreset.objects.count() == 3 * 3 * 4
    assert Contribution.objects.filter(checkout_ref__startswith="demo-").count() == 4
    AmountPreset.objects.filter(frequency="monthly", currency="EUR", amount=200).delete()
    options = giving_options("EUR")
    monthly = next(f for f in options["frequencies"] if f["value"] == "monthly")
    assert monthly["amounts"] == [500, 1000, 2000] and monthly["suggested"] == 500
    with on_commit():
        plan = give().plan
        call_command("sandbox_event", "fail-renewal", str(plan.pk), "--period", "2")
    assert "payment.failed" not in capsys.readouterr().out
    plan.refresh_from_db()
    assert plan.status == PlanStatus.PAST_DUE


def test_events_waiting_for_their_payment_are_retried(site, on_commit):
    from masthead.contributions.models import EventStatus

    contribution, _ = giving.start_contribution(
        frequency="once", amount=900, currency="USD", provider_key="sandbox"
    )
    sandbox = get_provider("sandbox")
    early = deliver(
        sandbox.webhook(
            "payment.refunded",
            {"payment_id": f"sbx_pay_{contribution.pk}", "amount_refunded": 900},
        )
    )
    assert early.status == EventStatus.WAITING
    recent = deliver(
        sandbox.webhook(
            "dispute.updated", {"payment_id": f"sbx_pay_{contribution.pk}", "status": "open"}
        )
    )
    ProviderEvent.objects.filter(pk=early.pk).update(
        received_at=timezone.now() - dt.timedelta(hours=2)
    )
    with on_commit():
        deliver(sandbox.complete(contribution, "late@example.org"))
    recent.refresh_from_db()
    early.refresh_from_db()
    assert recent.status == EventStatus.PROCESSED  # retried at once
    assert early.status == EventStatus.WAITING  # too old for the quick retry
    contribution.refresh_from_db()
    assert contribution.status == ContributionStatus.DISPUTED
    reconcile()
    early.refresh_from_db()
    contribution.refresh_from_db()
    assert early.status == EventStatus.PROCESSED
    assert contribution.status == ContributionStatus.REFUNDED
