"""The whole giving path through the sandbox with Django's test client: give, checkout,
sandbox page, webhook path, receipt, manage link, change and cancel."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from masthead.contributions.models import (
    Contribution,
    ContributionStatus,
    Donor,
    PlanStatus,
    ProviderEvent,
    RecurringPlan,
)
from masthead.contributions.signals import contribution_succeeded

from .conftest import manage_link_from

pytestmark = pytest.mark.django_db


def _start(client, **fields):
    data = {"frequency": "monthly", "amount": "500", "currency": "USD", "provider": "sandbox"}
    data.update(fields)
    return client.post(reverse("contributions:checkout"), data)


def test_give_page_is_public_and_cookie_free(client, site):
    response = client.get("/support/?frequency=annual&currency=EUR")
    assert response.status_code == 200
    assert "public" in response["Cache-Control"]
    assert not response.cookies
    html = response.content.decode()
    assert 'id="freq-annual" checked' in html.replace('" checked', '" checked')
    assert "€50" in html and "Sandbox" in html
    assert 'action="/support/checkout/"' in html


def test_monthly_through_sandbox_end_to_end(client, site, on_commit):
    received = []

    def listener(sender, contribution, source, **kwargs):
        received.append((contribution.pk, source))

    contribution_succeeded.connect(listener)
    try:
        response = _start(client, source="appeal:1:2", name="Ada", public="1", message="Go!")
        assert response.status_code == 303
        sandbox_url = response["Location"]
        assert "/support/sandbox/" in sandbox_url
        page = client.get(sandbox_url)
        assert page.status_code == 200
        assert "Sandbox — no real money" in page.content.decode()
        assert "no-store" in page["Cache-Control"]
        contribution = Contribution.objects.get()
        assert contribution.status == ContributionStatus.PENDING
        with on_commit():
            done = client.post(
                sandbox_url, {"action": "complete", "email": "Ada@Example.org", "name": "Ada L"}
            )
        assert done.status_code == 302
        thanks = client.get(done["Location"])
        html = thanks.content.decode()
        assert '<div id="masthead-contributed" hidden data-frequency="monthly"></div>' in html
        contribution.refresh_from_db()
        plan = RecurringPlan.objects.get()
        assert contribution.status == ContributionStatus.SUCCEEDED
        assert plan.status == PlanStatus.ACTIVE and plan.donor.email == "Ada@Example.org"
        assert received == [(contribution.pk, "appeal:1:2")]
        assert ProviderEvent.objects.filter(provider="sandbox", status="processed").count() == 1
        assert len(mail.outbox) == 1
        receipt = mail.outbox[0]
        assert "$5" in receipt.body and "Receipt" in receipt.subject
        link = manage_link_from(receipt.body)
        manage = client.get(link.replace("http://testserver", ""))
        assert manage.status_code == 200
        assert "no-store" in manage["Cache-Control"]
        assert "Cancel my monthly support" in manage.content.decode()
        # change the amount, then cancel in one step
        path = link.replace("http://testserver", "")
        changed = client.post(
            path, {"plan": plan.pk, "action": "change", "amount": "7.50", "frequency": "annual"}
        )
        assert changed.status_code == 200, changed.content.decode()
        plan.refresh_from_db()
        assert (plan.amount, plan.frequency) == (750, "annual")
        with on_commit():
            cancelled = client.post(path, {"plan": plan.pk, "action": "cancel"})
        assert cancelled.status_code == 200
        plan.refresh_from_db()
        assert plan.status == PlanStatus.CANCELLED
        assert "cancelled" in mail.outbox[-1].subject.lower()
        assert Donor.objects.count() == 1
    finally:
        contribution_succeeded.disconnect(listener)


def test_give_page_prefills_from_the_query_string(client, site):
    html = client.get("/support/?frequency=once&amount=750&currency=GBP").content.decode()
    assert 'id="custom_amount" name="custom_amount" value="7.50"' in html
    assert 'id="freq-once" checked' in html and "£25" in html
    html = client.get("/support/?frequency=monthly&amount=1000").content.decode()
    assert '<input type="radio" name="amount" value="1000" checked>' in html
    # Nonsense in the query string is ignored, not an error.
    response = client.get("/support/?frequency=<x>&amount=-1&currency=ZZZ")
    assert response.status_code == 200
    assert 'id="freq-monthly" checked' in response.content.decode()


def test_russian_readers_get_russian_pages_and_emails(client, site, on_commit):
    page = client.get("/ru/support/").content.decode()
    assert (
        "Как часто?" in page and "Ежемесячно" in page and 'action="/ru/support/checkout/"' in page
    )
    bad = client.post(
        "/ru/support/checkout/",
        {"frequency": "monthly", "amount": "100", "currency": "EUR", "provider": "sandbox"},
    )
    assert bad.status_code == 400
    assert "Наименьшая сумма, которую мы можем принять, — €2." in bad.content.decode()
    response = client.post(
        "/ru/support/checkout/",
        {"frequency": "monthly", "amount": "500", "currency": "EUR", "provider": "sandbox"},
    )
    assert response.status_code == 303 and "/ru/support/sandbox/" in response["Location"]
    assert "Песочница — без настоящих денег" in client.get(response["Location"]).content.decode()
    with on_commit():
        done = client.post(response["Location"], {"action": "complete", "email": "ru@example.org"})
    assert "Спасибо!" in client.get(done["Location"]).content.decode()
    [receipt] = mail.outbox
    assert receipt.subject.startswith("Квитанция о вашем пожертвовании")
    assert "/ru/support/manage/" in receipt.body and "€5" in receipt.body
    with on_commit():
        client.post("/ru/support/manage/", {"email": "ru@example.org"})
    assert mail.outbox[-1].subject.startswith("Ваша ссылка для управления поддержкой")
