"""The command line: ``masthead send-edition`` (progress bar, resume, bad input) and
``masthead outbox`` (read the local outbox, follow a confirmation link)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from masthead.newsletters.models import Delivery, Edition

from .conftest import add_subscribers

pytestmark = pytest.mark.django_db


def test_send_edition_shows_progress_and_resumes(smtp_server, newsletter, edition_factory):
    server = smtp_server()
    addresses = add_subscribers(newsletter, 25)
    edition = edition_factory(newsletter)
    out, err = io.StringIO(), io.StringIO()
    call_command("send_edition", str(edition.pk), stdout=out, stderr=err)
    assert "25 sent, 0 failed, 0 skipped, 0 remaining — finished." in out.getvalue()
    assert re.search(r"25/25 \[", err.getvalue())  # tqdm's bar
    assert server.counts() == {a: 1 for a in addresses}
    assert Edition.objects.get(pk=edition.pk).status == "sent"
    with pytest.raises(CommandError, match="was sent already"):
        call_command("send_edition", str(edition.pk), stdout=out, stderr=err)


def test_send_edition_rejects_bad_input(newsletter, edition_factory):
    with pytest.raises(CommandError, match="There is no edition 999"):
        call_command("send_edition", "999")
    edition = edition_factory(newsletter)
    with pytest.raises(CommandError, match="one @ between a name and a domain"):
        call_command("send_edition", str(edition.pk), "--test-to", "nobody@@")
    empty = Edition.objects.create(newsletter=newsletter, subject="Empty")
    with pytest.raises(CommandError, match="The edition is empty"):
        call_command("send_edition", str(empty.pk))
    assert not Delivery.objects.exists()


def test_outbox_lists_and_prints_a_confirmation_link(client, newsletter, settings, site, tmp_path):
    settings.EMAIL_BACKEND = "masthead.core.mail.OutboxBackend"
    settings.MASTHEAD_OUTBOX_DIR = tmp_path / "outbox"
    out = io.StringIO()
    call_command("outbox", stdout=out)
    assert "is empty" in out.getvalue()
    client.post("/newsletter/subscribe/", {"email": "new.reader@example.org"})
    out = io.StringIO()
    call_command("outbox", stdout=out)
    assert "new.reader@example.org" in out.getvalue()
    assert "Confirm your subscription to The Friday Lantern" in out.getvalue()
    out = io.StringIO()
    call_command("outbox", "1", stdout=out)
    text = out.getvalue()
    assert "To:      new.reader@example.org" in text
    link = re.search(r"http://127.0.0.1:8000(/newsletter/confirm/\S+/)", text).group(1)
    assert client.post(link).status_code == 200
    with pytest.raises(CommandError, match="choose 1 to 1"):
        call_command("outbox", "5", stdout=io.StringIO())


def test_a_readers_data_request_export_then_erase(client, newsletter, site):
    import json

    from masthead.newsletters.models import ConsentRecord, Subscriber

    client.post("/newsletter/subscribe/", {"email": "Mia@Example.org", "name": "Mia"})
    out = io.StringIO()
    call_command("newsletter_subscriber", "export", "mia@example.org", stdout=out)
    data = json.loads(out.getvalue())
    assert data["email"] == "mia@example.org" and data["name"] == "Mia"
    assert data["subscriptions"][0]["newsletter"] == "The Friday Lantern"
    assert data["subscriptions"][0]["consent"][0]["action"] == "requested"
    assert data["subscriptions"][0]["consent"][0]["policy_version"]
    out = io.StringIO()
    call_command("newsletter_subscriber", "erase", "MIA@example.org", "--yes", stdout=out)
    assert "Erased mia@example.org." in out.getvalue()
    assert not Subscriber.objects.exists() and not ConsentRecord.objects.exists()
    with pytest.raises(CommandError, match="No subscriber has the address"):
        call_command("newsletter_subscriber", "export", "mia@example.org")
    with pytest.raises(CommandError, match="one @ between"):
        call_command("newsletter_subscriber", "erase", "not-an-address", "--yes")
