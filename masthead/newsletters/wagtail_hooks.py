"""The Newsletters menu in the Wagtail admin: newsletters, editions (with live preview and
the send page), subscribers (counts and states; addresses stay encrypted at rest, and every
page that shows them decrypted writes an entry in core's access log)."""

from django.urls import include, path, reverse
from wagtail import hooks
from wagtail.admin.widgets import Button
from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.snippets.views.snippets import (
    DeleteView,
    EditView,
    IndexView,
    InspectView,
    SnippetViewSet,
    SnippetViewSetGroup,
)

from masthead.core.audit import record_admin_view

from . import admin_views
from .models import Edition, Newsletter, Subscription

admin_urlpatterns = [
    path("edition/<int:pk>/send/", admin_views.send_page, name="send"),
    path("edition/<int:pk>/progress/", admin_views.progress, name="progress"),
]


@hooks.register("register_admin_urls")
def register_admin_urls():
    return [path("newsletters/", include((admin_urlpatterns, "newsletters_admin")))]


class NewsletterViewSet(SnippetViewSet):
    model = Newsletter
    icon = "mail"
    menu_label = "Newsletters"
    list_display = ["name", "language", "is_default", "active"]


class EditionEditView(EditView):
    @property
    def header_more_buttons(self):
        buttons = list(super().header_more_buttons)
        buttons.append(
            Button(
                "Send, schedule or test",
                url=reverse("newsletters_admin:send", args=[self.object.pk]),
                icon_name="mail",
                priority=5,
            )
        )
        return buttons


class EditionViewSet(SnippetViewSet):
    model = Edition
    icon = "doc-full"
    menu_label = "Editions"
    edit_view_class = EditionEditView
    list_display = ["subject", "newsletter", "status", "scheduled_at", "sent_at"]
    list_filter = ["newsletter", "status"]
    search_fields = ["subject"]


class NoAddPermissionPolicy(ModelPermissionPolicy):
    """Subscriptions start only from the reader's own double opt-in, never from the admin."""

    def user_has_permission(self, user, action):
        return action != "add" and super().user_has_permission(user, action)

    def user_has_any_permission(self, user, actions):
        return any(self.user_has_permission(user, action) for action in actions)


class SubscriptionIndexView(IndexView):
    """Each row shows an address: one log entry per page view, with the count."""

    def get_context_data(self, *args, **kwargs):
        context = super().get_context_data(*args, **kwargs)
        if shown := len(context["object_list"]):
            record_admin_view(self.request, "subscriber", count=shown)
        return context


class AuditedSubscriptionMixin:
    """A page that names one subscription's address (its title): each GET is logged."""

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        record_admin_view(request, "subscriber", self.object.subscriber_id)
        return response


class SubscriptionInspectView(AuditedSubscriptionMixin, InspectView):
    pass


class SubscriptionEditView(AuditedSubscriptionMixin, EditView):
    pass


class SubscriptionDeleteView(AuditedSubscriptionMixin, DeleteView):
    pass


class SubscriptionViewSet(SnippetViewSet):
    model = Subscription
    icon = "group"
    menu_label = "Subscribers"
    index_view_class = SubscriptionIndexView
    inspect_view_class = SubscriptionInspectView
    edit_view_class = SubscriptionEditView
    delete_view_class = SubscriptionDeleteView
    list_display = ["subscriber", "newsletter", "status", "created_at", "confirmed_at"]
    list_filter = ["newsletter", "status"]
    copy_view_enabled = False
    inspect_view_enabled = True
    panels: list = []

    @property
    def permission_policy(self):
        return NoAddPermissionPolicy(self.model)


class NewslettersGroup(SnippetViewSetGroup):
    menu_label = "Newsletters"
    menu_icon = "mail"
    menu_order = 250
    items = (EditionViewSet, NewsletterViewSet, SubscriptionViewSet)


@hooks.register("register_admin_viewset")
def register_viewsets():
    return NewslettersGroup()


@hooks.register("register_snippet_listing_buttons")
def edition_send_button(snippet, user, next_url=None):
    if isinstance(snippet, Edition) and user.has_perm("newsletters.change_edition"):
        yield Button(
            "Send / schedule / test",
            url=reverse("newsletters_admin:send", args=[snippet.pk]),
            icon_name="mail",
            priority=5,
        )
