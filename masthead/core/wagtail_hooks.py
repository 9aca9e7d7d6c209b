"""Settings → Access log in the Wagtail admin: the audit log of staff access to readers'
personal data (``audit.py``), for superusers only, read-only (index and inspect views only;
no add, edit or delete view exists, and the permission policy grants nothing but "view")."""

from __future__ import annotations

import django_filters
from wagtail import hooks
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.permission_policies.base import BasePermissionPolicy
from wagtail.permissions import register_permission_policy

from .audit import AuditEntry

ACCESS_LOG_VIEWS = {"index", "index_results", "inspect"}


class SuperuserReadOnlyPolicy(BasePermissionPolicy):
    """Superusers may view; nobody may add, change or delete, whatever their permissions."""

    def user_has_permission(self, user, action):
        return action == "view" and bool(user.is_active and user.is_superuser)

    def user_has_any_permission(self, user, actions):
        return any(self.user_has_permission(user, action) for action in actions)

    def users_with_any_permission(self, actions):
        from django.contrib.auth import get_user_model

        users = get_user_model().objects.filter(is_active=True, is_superuser=True)
        return users if "view" in actions else users.none()

    def users_with_permission(self, action):
        return self.users_with_any_permission([action])


register_permission_policy(AuditEntry, SuperuserReadOnlyPolicy(AuditEntry), exact_class=True)


class AccessLogFilterSet(WagtailFilterSet):
    action = django_filters.ChoiceFilter(choices=AuditEntry.Action.choices)
    actor_name = django_filters.CharFilter(label="Actor", lookup_expr="iexact")
    subject_type = django_filters.CharFilter(label="Record type", lookup_expr="iexact")
    via = django_filters.ChoiceFilter(choices=AuditEntry.Via.choices)
    at = django_filters.DateFromToRangeFilter(label="When", widget=DateRangePickerWidget)

    class Meta:
        model = AuditEntry
        fields = ["action", "actor_name", "subject_type", "via", "at"]


class AccessLogViewSet(ModelViewSet):
    model = AuditEntry
    icon = "history"
    menu_label = "Access log"
    menu_name = "access-log"
    add_to_settings_menu = True
    url_prefix = "access-log"
    copy_view_enabled = False
    inspect_view_enabled = True
    exclude_form_fields = []  # no add/edit views are routed; the form is never built
    filterset_class = AccessLogFilterSet
    list_display = ["when", "actor_name", "action", "subject", "via", "where", "detail"]
    inspect_view_fields = [
        "at", "actor_name", "actor", "action", "subject_type", "subject_id", "count", "via",
        "where", "detail",
    ]

    def get_urlpatterns(self):
        return [p for p in super().get_urlpatterns() if p.name in ACCESS_LOG_VIEWS]

    def get_index_view_kwargs(self, **kwargs):
        return super().get_index_view_kwargs(add_url_name=None, edit_url_name=None, **kwargs)

    def get_inspect_view_kwargs(self, **kwargs):
        return super().get_inspect_view_kwargs(edit_url_name=None, delete_url_name=None, **kwargs)


@hooks.register("register_admin_viewset")
def register_access_log():
    return AccessLogViewSet("access_log")
