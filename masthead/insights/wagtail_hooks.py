"""Insights in the Wagtail admin: its URLs, the menu item and a dashboard panel for those
who may see it, and its permission in Wagtail's group editor."""

from __future__ import annotations

from django.contrib.auth.models import Permission
from django.urls import include, path, reverse
from wagtail import hooks
from wagtail.admin.menu import MenuItem
from wagtail.admin.ui.components import Component

from .views import PERMISSION


@hooks.register("register_admin_urls")
def register_admin_urls():
    return [path("insights/", include("masthead.insights.urls"))]


class InsightsMenuItem(MenuItem):
    def is_shown(self, request):
        return request.user.has_perm(PERMISSION)


@hooks.register("register_admin_menu_item")
def register_menu_item():
    return InsightsMenuItem("Insights", reverse("insights:index"), name="insights",
                            icon_name="table", order=240)


@hooks.register("register_permissions")
def register_permissions():
    return Permission.objects.filter(content_type__app_label="insights",
                                     codename="view_insights")


class InsightsPanel(Component):
    """A pointer on the dashboard: the charts live on the Insights page."""

    name = "insights"
    template_name = "insights/dashboard_panel.html"
    order = 80

    def get_context_data(self, parent_context=None):
        return {"url": reverse("insights:index")}


@hooks.register("construct_homepage_panels")
def add_insights_panel(request, panels):
    if request.user.has_perm(PERMISSION):
        panels.append(InsightsPanel())
