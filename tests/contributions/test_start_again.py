"""The manage page's "Start again" (a cancelled plan's new checkout) checks the plan's terms
again, as the give form checks a new gift's: since the plan ended the newsroom may have
stopped accepting its currency, raised the minimum or lowered the maximum. A restart must
not open a checkout the give form would refuse."""

from __future__ import annotations

import pytest
from django.core import mail

from masthead.contributions import giving
from masthead.contributions.models import CheckoutSubmission, Contribution, RecurringPlan
from masthead.contributions.providers import get_provider

from .conftest import manage_link_from
from .standins import deliver

pytestmark = pytest.mark.django_db


@pytest.fixture
def cancelled(client, site, on_commit, settings):
    """A donor's cancelled monthly plan of €12 and the path of their manage page."""
    settings.MASTHEAD_CURRENCIES = ["USD", "EUR", "GBP"]
    settings.MASTHEAD_MINIMUM_AMOUNTS = {"USD": 200, "EUR": 200, "GBP": 200}
    settings.MASTHEAD_MAXIMUM_AMOUNT = 1_000_000
    contribution, _url = giving.start_contribution(
        frequency="monthly", amount=1200, currency="EUR", provider_key="sandbox"
    )
    with on_commit():
        deliver(get_provider("sandbox").complete(contribution, "s@example.org", "S"))
    plan = RecurringPlan.objects.get(pk=contribution.plan_id)
    path = manage_link_from(mail.outbox[0].body).replace("http://testserver", "")
    with on_commit():
        giving.cancel_plan(plan)
    plan.refresh_from_db()
    return plan, path


def _nothing_new(plan) -> None:
    assert RecurringPlan.objects.count() == 1
    assert Contribution.objects.exclude(plan=plan).count() == 0
    assert plan.payments.count() == 1
    assert not CheckoutSubmission.objects.exists()


def _no_longer_eur(settings) -> None:
    settings.MASTHEAD_CURRENCIES = ["USD", "GBP"]
    settings.MASTHEAD_DEFAULT_CURRENCY = "USD"
    settings.MASTHEAD_MINIMUM_AMOUNTS = {"USD": 200, "GBP": 200}


CHANGES = {
    "currency no longer accepted": (_no_longer_eur, "Choose one of these currencies: USD, GBP."),
    "minimum raised above the plan": (
        lambda s: setattr(s, "MASTHEAD_MINIMUM_AMOUNTS", {"USD": 200, "EUR": 1500, "GBP": 200}),
        "The smallest contribution we can accept is €15.",
    ),
    "maximum lowered below the plan": (
        lambda s: setattr(s, "MASTHEAD_MAXIMUM_AMOUNT", 1000),
        "For a gift above €10, please write to us.",
    ),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_start_again_refuses_terms_no_longer_accepted(cancelled, settings, change):
    plan, _path = cancelled
    apply, reason = CHANGES[change]
    apply(settings)
    with pytest.raises(giving.CannotStartAgain) as refused:
        giving.start_again(plan, base_url="http://testserver")
    assert reason in str(refused.value)
    _nothing_new(plan)


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_the_manage_page_opens_no_checkout_for_terms_no_longer_accepted(
    client, cancelled, settings, change
):
    plan, path = cancelled
    CHANGES[change][0](settings)
    response = client.post(path, {"plan": plan.pk, "action": "restart"})
    # (Its status and words: the next test, which waits for a change in views.manage.)
    assert response.status_code != 303, response.get("Location")
    _nothing_new(plan)


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_the_manage_page_says_why_it_cannot_start_again(client, cancelled, settings, change):
    plan, path = cancelled
    apply, reason = CHANGES[change]
    apply(settings)
    response = client.post(path, {"plan": plan.pk, "action": "restart"})
    assert response.status_code == 400
    assert reason in response.content.decode()


def test_terms_still_accepted_start_again(client, cancelled):
    plan, path = cancelled
    response = client.post(path, {"plan": plan.pk, "action": "restart"})
    assert response.status_code == 303
    new = RecurringPlan.objects.exclude(pk=plan.pk).get()
    assert (new.amount, new.currency, new.frequency) == (1200, "EUR", "monthly")


def test_the_russian_manage_page_says_why_in_russian(client, cancelled, settings):
    plan, path = cancelled
    _no_longer_eur(settings)
    response = client.post("/ru" + path, {"plan": plan.pk, "action": "restart"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Эту подписку нельзя возобновить в прежнем виде" in page
    assert "cannot be started again" not in page
