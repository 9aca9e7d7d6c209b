"""The campaigns' Wagtail admin: a “Campaigns” menu item listing campaigns by placement, the
editing form (text, ask, amounts, dates, sections, rules, variants) and a results page per
campaign (the snippet's inspect view) with each variant's counts, rates and a two-proportion
z-test against the control.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from wagtail.admin.ui.tables import BooleanColumn, Column, LocaleColumn, TitleColumn
from wagtail.snippets.models import register_snippet
from wagtail.snippets.views.snippets import InspectView, SnippetViewSet

from .models import Campaign
from .stats import MIN_CONVERSIONS, campaign_results


class CampaignResultsView(InspectView):
    """The inspect view, turned into the campaign's results page."""

    template_name = "campaigns/admin/results.html"

    def get_page_subtitle(self):
        return _("Results")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["results"] = campaign_results(self.object)
        context["min_conversions"] = MIN_CONVERSIONS
        return context


class CampaignViewSet(SnippetViewSet):
    model = Campaign
    icon = "pick"
    menu_label = _("Campaigns")
    menu_order = 250
    add_to_admin_menu = True
    inspect_view_enabled = True
    inspect_view_class = CampaignResultsView
    list_filter = ["placement", "enabled"]
    search_fields = ["name"]
    ordering = ["placement", "-priority", "-id"]

    @property
    def list_display(self):
        return [
            TitleColumn(
                "name",
                label=_("Name"),
                get_url=lambda obj: reverse(self.get_url_name("edit"), args=[obj.pk]),
            ),
            LocaleColumn(label=_("Locale")),
            Column("get_placement_display", label=_("Placement")),
            BooleanColumn("enabled", label=_("Enabled")),
            Column("priority", label=_("Priority")),
            Column("starts_at", label=_("Starts")),
            Column("ends_at", label=_("Ends")),
            TitleColumn(
                "results",
                label=_("Results"),
                accessor=lambda obj: _("Results"),
                get_url=lambda obj: reverse(self.get_url_name("inspect"), args=[obj.pk]),
            ),
        ]


register_snippet(CampaignViewSet)
