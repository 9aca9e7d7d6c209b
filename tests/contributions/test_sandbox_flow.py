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
            cancelled = client.post(path, {"plan": plan.pk, "action": "cancel", "confirm": "yes"})
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


def test_cancel_asks_first_and_only_a_confirmed_post_cancels(client, site, on_commit):
    """Issue 13: cancelling is two steps without JavaScript: the first post shows the plan's
    terms and a "Yes, cancel" form (confirm=yes) beside a way to keep it; nothing changes
    until that second post, and a GET never cancels."""
    from masthead.contributions import giving
    from masthead.contributions.providers import get_provider

    from .standins import deliver

    contribution, _ = giving.start_contribution(
        frequency="monthly", amount=500, currency="USD", provider_key="sandbox"
    )
    with on_commit():
        deliver(get_provider("sandbox").complete(contribution, "c@example.org", "C"))
    plan = RecurringPlan.objects.get(pk=contribution.plan_id)
    path = manage_link_from(mail.outbox[0].body).replace("http://testserver", "")
    asked = client.post(path, {"plan": plan.pk, "action": "cancel"})
    assert asked.status_code == 200
    html = asked.content.decode()
    assert "Cancel your monthly support of $5?" in html
    assert 'name="confirm" value="yes"' in html and "Yes, cancel my monthly support" in html
    assert f'href="{path}"' in html  # "No, keep it"
    plan.refresh_from_db()
    assert plan.status == PlanStatus.ACTIVE
    confirm = {"plan": plan.pk, "action": "cancel", "confirm": "yes"}
    assert client.get(path, confirm).status_code == 200
    plan.refresh_from_db()
    assert plan.status == PlanStatus.ACTIVE
    with on_commit():
        done = client.post(path, {"plan": plan.pk, "action": "cancel", "confirm": "yes"})
    assert "Your recurring support is cancelled" in done.content.decode()
    plan.refresh_from_db()
    assert plan.status == PlanStatus.CANCELLED


@pytest.mark.parametrize("language", ["en", "ru"])
def test_changing_the_amount_confirms_the_new_terms_by_email_once(
    client, site, on_commit, language
):
    """Issue 13: a change of amount or frequency on the manage page sends the donor one email
    with the new amount and frequency, on commit; the same change again (or the provider's
    echo of it) sends nothing more; another change sends its own."""
    from masthead.contributions import giving
    from masthead.contributions.providers import get_provider

    from .standins import deliver

    contribution, _ = giving.start_contribution(
        frequency="monthly", amount=500, currency="USD", provider_key="sandbox"
    )
    Contribution.objects.filter(pk=contribution.pk).update(language=language)
    with on_commit():
        deliver(get_provider("sandbox").complete(contribution, "c@example.org", "C"))
    plan = RecurringPlan.objects.get(pk=contribution.plan_id)
    path = manage_link_from(mail.outbox[0].body).replace("http://testserver", "")
    mail.outbox.clear()
    change = {"plan": plan.pk, "action": "change", "amount": "7.50", "frequency": "annual"}
    with on_commit() as callbacks:
        assert client.post(path, change).status_code == 200
        assert mail.outbox == []  # not before the commit
    assert callbacks
    [sent] = mail.outbox
    if language == "en":
        assert sent.subject.startswith("Your recurring support is updated")
        assert "Your recurring support is now $7.50, annual." in sent.body
    else:
        assert "теперь составляет $7.50" in sent.body
    assert "$7.50" in sent.alternatives[0][0] and "/support/manage/" in sent.body
    with on_commit():
        client.post(path, change)
    assert len(mail.outbox) == 1
    with on_commit():
        client.post(path, change | {"amount": "9"})
    assert len(mail.outbox) == 2 and "$9" in mail.outbox[-1].body


def test_a_cancelled_plan_can_be_started_again_as_a_new_plan(client, site, on_commit, settings):
    """Issue 13: a cancelled plan offers "Start again", which opens a new checkout with the
    same amount, frequency, currency and provider — a new plan through the give path; the
    old row stays cancelled. A live plan cannot be "started again"; a provider no longer
    offered is a clear 400."""
    from masthead.contributions import giving
    from masthead.contributions.providers import get_provider

    from .standins import deliver

    contribution, _ = giving.start_contribution(
        frequency="annual", amount=1200, currency="EUR", provider_key="sandbox"
    )
    with on_commit():
        deliver(get_provider("sandbox").complete(contribution, "c@example.org", "C"))
    old = RecurringPlan.objects.get(pk=contribution.plan_id)
    path = manage_link_from(mail.outbox[0].body).replace("http://testserver", "")
    live = client.post(path, {"plan": old.pk, "action": "restart"})
    assert live.status_code == 400 and RecurringPlan.objects.count() == 1
    with on_commit():
        client.post(path, {"plan": old.pk, "action": "cancel", "confirm": "yes"})
    page = client.get(path).content.decode()
    assert "Start again: €12, annual" in page
    again = client.post(path, {"plan": old.pk, "action": "restart"})
    assert again.status_code == 303
    assert again["Location"].startswith("http://testserver/support/sandbox/")
    old.refresh_from_db()
    assert old.status == PlanStatus.CANCELLED
    new = RecurringPlan.objects.exclude(pk=old.pk).get()
    assert (new.amount, new.currency, new.frequency, new.provider) == (
        1200, "EUR", "annual", "sandbox"
    )
    assert new.status == PlanStatus.PENDING
    # A double click is the same checkout, not a second plan.
    assert client.post(path, {"plan": old.pk, "action": "restart"})["Location"] == again[
        "Location"
    ]
    assert RecurringPlan.objects.count() == 2
    # Completing the new checkout makes it the donor's live plan.
    with on_commit():
        deliver(get_provider("sandbox").complete(new.payments.get(), "c@example.org", "C"))
    new.refresh_from_db()
    assert new.status == PlanStatus.ACTIVE and new.donor_id == old.donor_id
    settings.MASTHEAD_PAYMENT_PROVIDERS = {}
    gone = client.post(path, {"plan": old.pk, "action": "restart"})
    assert gone.status_code == 400 and "no longer offered" in gone.content.decode()


def test_receipt_thanks_page_and_admin_show_one_unguessable_reference(client, site, on_commit):
    """Issue 13: the receipt's "Reference" is the contribution's random reference (7KQP-3MXD),
    not its database id, and the thank-you page and the admin show the same one."""
    import re

    from django.contrib.auth.models import User

    from masthead.contributions import giving
    from masthead.contributions.providers import get_provider
    from masthead.contributions.providers.banktransfer import ALPHABET
    from masthead.contributions.tokens import checkout_token

    from .standins import deliver
    from .test_admin_and_2fa import verified_login

    contribution, _ = giving.start_contribution(
        frequency="once", amount=500, currency="USD", provider_key="sandbox"
    )
    other, _ = giving.start_contribution(
        frequency="once", amount=500, currency="USD", provider_key="sandbox"
    )
    with on_commit():
        deliver(get_provider("sandbox").complete(contribution, "c@example.org", "C"))
    contribution.refresh_from_db()
    reference = contribution.reference
    assert re.fullmatch(rf"[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}", reference)
    assert reference != other.reference
    [receipt] = mail.outbox
    assert f"Reference: {reference}" in receipt.body
    assert f"Reference: {contribution.pk}\n" not in receipt.body
    assert f"<td>{reference}</td>" in receipt.alternatives[0][0]
    thanks = client.get(reverse("contributions:thanks", args=[checkout_token(contribution)]))
    assert reference in thanks.content.decode()
    contribution.refresh_from_db()
    assert contribution.reference == reference  # stable
    admin = User.objects.create_superuser("boss", "boss@example.org", "pw-123456789")
    verified_login(client, admin)
    url = "/admin/contributions_contribution/"
    assert reference in client.get(url).content.decode()
    assert reference in client.get(f"{url}inspect/{contribution.pk}/").content.decode()
