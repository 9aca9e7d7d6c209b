"""The Insights page and its CSV downloads: who may see them, what they show (charts as inline
SVG without script, each with its table), the period selector, and no per-reader data."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from masthead.insights.aggregates import Period

from .conftest import SECRETS

pytestmark = pytest.mark.django_db

PERIOD = {"start": "2026-01", "end": "2026-04"}
TABLES = ["revenue", "recurring", "plans", "supporters", "subscribers", "signups", "editions",
          "funnel"]


@pytest.fixture
def lead(django_user_model):
    """A member of the "Audience & revenue" group the migration creates: admin access and
    Insights, no donor or subscriber records (so no two-factor step)."""
    user = django_user_model.objects.create_user("lead", password="x")
    user.groups.add(Group.objects.get(name="Audience & revenue"))
    return user


@pytest.fixture
def lead_client(client, lead):
    client.force_login(lead)
    return client


def insights_html(response) -> str:
    html = response.content.decode()
    start = html.index('class="nice-padding insights"')
    return html[start:html.index("</main>", start)]


def read_csv(response) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_the_group_member_sees_headlines_charts_and_tables(known, lead_client):
    response = lead_client.get(reverse("insights:index"), PERIOD)
    assert response.status_code == 200
    html = insights_html(response)
    # Headline figures: net revenue per currency, never summed across currencies.
    headline = html[html.index("insights-headlines"):html.index("insights-section")]
    for figure in ("$35", "€135", "£7", "€10 / month", "$5 / month", "2 live plans", "37.5%"):
        assert figure in headline, figure
    # One chart per currency for money, one each for the other figures.
    assert html.count("<svg") == 3 + 2 + 1 + 1 + 1 + 1 + 1 + 1
    assert 'role="img"' in html and "<title" in html
    assert "<script" not in html
    assert "pygal.config" not in html
    for slug in TABLES:
        assert f'id="{slug}"' in html
        assert reverse("insights:csv", args=[slug]) + "?start=2026-01&amp;end=2026-04" in html
    assert html.count("<table") == len(TABLES)
    assert "<th scope=\"row\">Feb 2026</th>" in html


def test_default_period_is_the_last_twelve_months(known, lead_client):
    response = lead_client.get(reverse("insights:index"))
    assert response.status_code == 200
    assert response.context["period"].months.__len__() == 12


def test_no_per_reader_data_in_the_page_or_any_csv(known, lead_client):
    outputs = [insights_html(lead_client.get(reverse("insights:index"), PERIOD))]
    for slug in TABLES:
        response = lead_client.get(reverse("insights:csv", args=[slug]), PERIOD)
        assert response.status_code == 200
        outputs.append(response.content.decode())
    for output in outputs:
        for secret in SECRETS:
            assert secret.lower() not in output.lower(), secret
    for output in outputs[1:]:
        assert "@" not in output


def test_revenue_csv(known, lead_client):
    response = lead_client.get(reverse("insights:csv", args=["revenue"]), PERIOD)
    assert 'filename="insights-revenue-2026-01-to-2026-04.csv"' in response["Content-Disposition"]
    assert read_csv(response) == [
        ["Month", "Currency", "Frequency", "Payments", "Gross", "Refunded or disputed", "Net"],
        ["2026-01", "USD", "monthly", "1", "3.00", "0.00", "3.00"],
        ["2026-01", "USD", "once", "3", "12.00", "0.00", "12.00"],
        ["2026-02", "EUR", "once", "1", "20.00", "5.00", "15.00"],
        ["2026-02", "USD", "monthly", "2", "6.00", "0.00", "6.00"],
        ["2026-02", "USD", "once", "1", "5.00", "0.00", "5.00"],
        ["2026-03", "EUR", "annual", "1", "120.00", "0.00", "120.00"],
        ["2026-03", "GBP", "once", "2", "17.00", "10.00", "7.00"],
        ["2026-04", "USD", "once", "2", "17.00", "8.00", "9.00"],
    ]


def test_other_csvs(known, lead_client):
    def get(slug):
        return read_csv(lead_client.get(reverse("insights:csv", args=[slug]), PERIOD))

    assert get("plans")[1:] == [
        ["2026-01", "2", "1", "0", "1", "0", "0.5000"],
        ["2026-02", "2", "1", "0", "1", "0", "0.5000"],
        ["2026-03", "2", "0", "1", "1", "0", "0.5000"],
        ["2026-04", "2", "0", "0", "0", "0", "0.0000"],
    ]
    assert get("recurring")[-2:] == [["2026-04", "EUR", "1", "10.00"],
                                     ["2026-04", "USD", "1", "5.00"]]
    assert get("subscribers") == [
        ["Month", "The Friday Lantern", "Morning Brief"],
        ["2026-01", "2", "1"], ["2026-02", "3", "2"], ["2026-03", "2", "1"],
        ["2026-04", "2", "0"],
    ]
    editions = get("editions")
    assert editions[0] == ["Edition", "Newsletter", "Sent on", "Sent", "Refused at sending",
                           "Unsubscribes", "Unsubscribe rate", "Bounces", "Complaints"]
    # A subject starting with "=" would be a formula in a spreadsheet.
    assert editions[2] == ["'=March letter", "The Friday Lantern", "2026-03-04", "2", "1", "1",
                           "0.5000", "0", "0"]
    assert get("funnel")[1:] == [
        ["Spring appeal", "A", "1010", "50", "0.0495", "5", "0.0050", "2"],
        ["Spring appeal", "B", "800", "20", "0.0250", "2", "0.0025", "1"],
    ]


def test_staff_without_the_permission_get_403(known, client, django_user_model):
    editor = django_user_model.objects.create_user("editor", password="x")
    editor.user_permissions.add(Permission.objects.get(codename="access_admin"))
    client.force_login(editor)
    assert client.get(reverse("wagtailadmin_home")).status_code == 200
    assert client.get(reverse("insights:index")).status_code == 403
    assert client.get(reverse("insights:csv", args=["revenue"])).status_code == 403
    dashboard = client.get(reverse("wagtailadmin_home")).content.decode()
    assert reverse("insights:index") not in dashboard


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(reverse("insights:index"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_menu_item_and_dashboard_panel_for_the_group(known, lead_client):
    html = lead_client.get(reverse("wagtailadmin_home")).content.decode()
    assert reverse("insights:index") in html
    assert "Open Insights" in html


def test_superusers_see_it_too(known, admin_client):
    assert admin_client.get(reverse("insights:index"), PERIOD).status_code == 200


def test_the_permission_is_in_wagtails_group_editor(site, admin_client):
    group = Group.objects.get(name="Audience & revenue")
    html = admin_client.get(reverse("wagtailusers_groups:edit", args=[group.pk])).content
    assert b"Can view insights" in html


@pytest.mark.parametrize("query, message", [
    ({"start": "2026-13"}, "Enter a month as YYYY-MM"),
    ({"start": "March"}, "Enter a month as YYYY-MM"),
    ({"start": "2026-05", "end": "2026-01"}, "must not be after"),
    ({"start": "2020-01", "end": "2026-01"}, "at most 60 months"),
])
def test_a_bad_period_is_a_clear_400(site, lead_client, query, message):
    response = lead_client.get(reverse("insights:index"), query)
    assert response.status_code == 400
    assert message in response.content.decode()
    response = lead_client.get(reverse("insights:csv", args=["revenue"]), query)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_an_unknown_table_is_404(site, lead_client):
    assert lead_client.get("/admin/insights/nothing.csv").status_code == 404


def test_one_side_of_the_period(known, lead_client):
    response = lead_client.get(reverse("insights:index"), {"end": "2026-04"})
    assert response.context["period"].first.isoformat() == "2025-05-01"
    response = lead_client.get(reverse("insights:index"), {"start": "2026-01"})
    period = response.context["period"]
    assert period.first.isoformat() == "2026-01-01"
    current = Period.last_months(1).last
    assert period.last == max(period.first, min(dt.date(2026, 12, 1), current))
