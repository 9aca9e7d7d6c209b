"""The Newsletters menu in the Wagtail admin: newsletters, editions (with live preview and
the send page), subscribers (counts and states; addresses stay encrypted at rest, and every
page that shows them decrypted writes an entry in core's access log)."""

from django.core.exceptions import PermissionDenied
from django.urls import include, path, reverse
from wagtail import hooks
from wagtail.admin.widgets import Button
from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.snippets.views import chooser
from wagtail.snippets.views.snippets import (
    DeleteView,
    EditView,
    HistoryView,
    IndexView,
    InspectView,
    SnippetViewSet,
    SnippetViewSetGroup,
    UsageView,
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
        record_admin_view(
            request, "subscriber", self.object.subscriber_id,
            detail=f"subscription #{self.object.pk}",
        )
        return response


class SubscriptionInspectView(AuditedSubscriptionMixin, InspectView):
    pass


class SubscriptionEditView(AuditedSubscriptionMixin, EditView):
    pass


class SubscriptionDeleteView(AuditedSubscriptionMixin, DeleteView):
    pass


class SubscriptionHistoryView(AuditedSubscriptionMixin, HistoryView):
    pass


class SubscriptionUsageView(AuditedSubscriptionMixin, UsageView):
    pass


class SubscriptionChooserMixin:
    """Wagtail gives every snippet a chooser that any admin user may open; a subscription's
    lists every address, so it asks for the right to view subscriptions, and is logged."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.has_perm("newsletters.view_subscription"):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class SubscriptionChooserListMixin(SubscriptionChooserMixin):
    def get(self, request):
        response = super().get(request)
        if shown := len(self.results.object_list):
            record_admin_view(request, "subscriber", count=shown)
        return response


class SubscriptionChooseView(SubscriptionChooserListMixin, chooser.ChooseView):
    pass


class SubscriptionChooseResultsView(SubscriptionChooserListMixin, chooser.ChooseResultsView):
    pass


class SubscriptionChosenView(SubscriptionChooserMixin, chooser.SnippetChosenView):
    def get_object(self, pk):
        subscription = super().get_object(pk)
        record_admin_view(self.request, "subscriber", subscription.subscriber_id)
        return subscription


class SubscriptionChosenMultipleView(SubscriptionChooserMixin, chooser.SnippetChosenMultipleView):
    def get_objects(self, pks):
        subscriptions = list(super().get_objects(pks))
        if subscriptions:
            record_admin_view(self.request, "subscriber", count=len(subscriptions))
        return subscriptions


class SubscriptionChooserViewSet(chooser.SnippetChooserViewSet):
    choose_view_class = SubscriptionChooseView
    choose_results_view_class = SubscriptionChooseResultsView
    chosen_view_class = SubscriptionChosenView
    chosen_multiple_view_class = SubscriptionChosenMultipleView


class SubscriptionViewSet(SnippetViewSet):
    model = Subscription
    icon = "group"
    menu_label = "Subscribers"
    index_view_class = SubscriptionIndexView
    inspect_view_class = SubscriptionInspectView
    edit_view_class = SubscriptionEditView
    delete_view_class = SubscriptionDeleteView
    history_view_class = SubscriptionHistoryView
    usage_view_class = SubscriptionUsageView
    chooser_viewset_class = SubscriptionChooserViewSet
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
