"""Transactional mail when the site is blocked (issue 11, item 4): receipts, manage links,
dunning and cancellation notices carry the current mirror list and link to the email link
host (MASTHEAD_EMAIL_LINK_BASE_URL), never to the blocked main site."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from masthead.contributions import emails, giving
from masthead.contributions.providers import get_provider
from masthead.reach.models import Mirror

from .standins import deliver

pytestmark = pytest.mark.django_db

MIRROR = "https://lantern.cdn-mirror.example"


@pytest.fixture
def blocked(settings, db):
    settings.MASTHEAD_EMAIL_LINK_BASE_URL = MIRROR
    Mirror.objects.create(url=f"{MIRROR}/", kind="cdn", status="ok")
    Mirror.objects.create(url="http://lantern2examplexxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion/",
                          kind="onion")
    return settings


def give(frequency="monthly"):
    contribution, _url = giving.start_contribution(
        frequency=frequency, amount=500, currency="USD", provider_key="sandbox"
    )
    deliver(get_provider("sandbox").complete(contribution, "giver@example.org", "Gia Ver"))
    contribution.refresh_from_db()
    return contribution


def check(message):
    html = message.alternatives[0][0]
    for part in (message.body, html):
        assert "Site blocked where you are? Read us at:" in part
        assert f"{MIRROR}/" in part and "lantern2example" in part
        main = [u for u in re.findall(r"https?://[^\s\"<>)]+", part)
                if u.startswith("http://testserver")]
        assert main == [], main
    return html


def test_receipt_and_manage_link_on_the_link_host_with_mirrors(site, on_commit, blocked):
    with on_commit():
        contribution = give()
    [receipt] = mail.outbox
    html = check(receipt)
    assert f"{MIRROR}/support/manage/" in receipt.body and f"{MIRROR}/support/manage/" in html
    emails.send_manage_link(contribution.donor)
    manage = mail.outbox[-1]
    check(manage)
    assert f"{MIRROR}/support/manage/" in manage.body


def test_dunning_and_cancellation_on_the_link_host_with_mirrors(site, on_commit, blocked):
    with on_commit():
        plan = give().plan
    plan.refresh_from_db()
    emails.send_dunning(plan)
    check(mail.outbox[-1])
    assert f"{MIRROR}/support/manage/" in mail.outbox[-1].body
    emails.send_cancellation(plan, after_failures=True)
    check(mail.outbox[-1])
    assert f"{MIRROR}/support/" in mail.outbox[-1].body  # "welcome back" link


def test_no_mirrors_no_block(site, on_commit):
    with on_commit():
        give(frequency="once")
    [receipt] = mail.outbox
    assert "Site blocked" not in receipt.body
    assert "Site blocked" not in receipt.alternatives[0][0]
    assert "http://testserver/support/manage/" in receipt.body
