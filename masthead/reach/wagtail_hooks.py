"""The Reach menu in the Wagtail admin: the mirrors the newsroom manages, with the health the
server's periodic check last saw (status, last OK, last checked, response time, error)."""

from wagtail import hooks
from wagtail.admin.ui.tables import Column, StatusTagColumn
from wagtail.snippets.views.snippets import SnippetViewSet, SnippetViewSetGroup

from .models import Mirror


class MirrorViewSet(SnippetViewSet):
    model = Mirror
    icon = "site"
    menu_label = "Mirrors"
    list_display = [
        "url",
        "kind",
        "active",
        StatusTagColumn(
            "status",
            label="Status",
            primary=lambda mirror: mirror.status == Mirror.Status.OK,
            accessor="get_status_display",
        ),
        "last_seen",
        "last_checked",
        Column("response_ms", label="Response (ms)"),
        "last_error",
    ]
    list_filter = ["kind", "active", "status"]
    search_fields = ["url", "notes"]
    copy_view_enabled = False


class ReachGroup(SnippetViewSetGroup):
    menu_label = "Reach"
    menu_icon = "site"
    menu_order = 270
    items = (MirrorViewSet,)


@hooks.register("register_admin_viewset")
def register_viewsets():
    return ReachGroup()
