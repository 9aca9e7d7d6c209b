"""The Newsletters menu in the Wagtail admin: newsletters, editions (with live preview and
the send page, reached by visible buttons on the edition and a column in the list),
subscribers (counts and states; addresses stay encrypted at rest, every page or CSV export that
shows them decrypted writes an entry in core's access log, and the staff who can open them
must use two-factor authentication: see apps.py)."""

from django.core.exceptions import PermissionDenied
from django.urls import include, path, reverse
from django.utils.functional import cached_property
from wagtail import hooks
from wagtail.admin.ui.tables import Column
from wagtail.admin.widgets import HeaderButton
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

from masthead.core import csvexport
from masthead.core.audit import AuditEntry, record_admin_view

from . import admin_views
from .models import Edition, Newsletter, Subscription

admin_urlpatterns = [
    path("edition/<int:pk>/send/", admin_views.send_page, name="send"),
    path("edition/<int:pk>/send-now/", admin_views.send_now, name="send_now"),
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


def edition_actions(edition: Edition) -> list[tuple[str, str, str]]:
    """(label, url, icon) of what an editor can do with the edition now, in order."""
    send = reverse("newsletters_admin:send", args=[edition.pk])
    if edition.status in (Edition.Status.SENDING, Edition.Status.SENT):
        return [("Delivery and clicks", send, "mail")]
    return [
        ("Send now…", reverse("newsletters_admin:send_now", args=[edition.pk]), "mail"),
        ("Reschedule" if edition.status == Edition.Status.SCHEDULED else "Schedule",
         f"{send}#schedule", "date"),
        ("Send a test", f"{send}#test", "success"),
    ]


class EditionEditView(EditView):
    """The edition's edit page shows its send, schedule and test actions as header buttons,
    not inside the "⋯" menu."""

    @cached_property
    def header_buttons(self):
        buttons = list(super().header_buttons)
        if self.request.user.has_perm("newsletters.change_edition"):
            buttons += [
                HeaderButton(label, url=url, icon_name=icon, priority=10 + n)
                for n, (label, url, icon) in enumerate(edition_actions(self.object))
            ]
        return buttons


class EditionActionsColumn(Column):
    """The list's "Send" column: links to the same actions, one click away."""

    cell_template_name = "newsletters/admin/edition_actions_cell.html"

    def get_cell_context_data(self, instance, parent_context):
        context = super().get_cell_context_data(instance, parent_context)
        request = parent_context.get("request")
        allowed = request is not None and request.user.has_perm("newsletters.change_edition")
        context["actions"] = edition_actions(instance) if allowed else []
        return context


class EditionViewSet(SnippetViewSet):
    model = Edition
    icon = "doc-full"
    menu_label = "Editions"
    edit_view_class = EditionEditView
    list_display = [
        "subject",
        "newsletter",
        "status",
        "scheduled_at",
        "sent_at",
        EditionActionsColumn("send", label="Send"),
    ]
    list_filter = ["newsletter", "status"]
    search_fields = ["subject"]


class NoAddPermissionPolicy(ModelPermissionPolicy):
    """Subscriptions start only from the reader's own double opt-in, never from the admin."""

    def user_has_permission(self, user, action):
        return action != "add" and super().user_has_permission(user, action)

    def user_has_any_permission(self, user, actions):
        return any(self.user_has_permission(user, action) for action in actions)


SUBSCRIPTION_EXPORT = [
    "id",
    "subscriber.email",
    "newsletter.slug",
    "status",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
]


class SubscriptionIndexView(IndexView):
    """Each row shows an address: one log entry per page view, with the count; a CSV or
    XLSX export is logged as an export of that many addresses."""

    custom_field_preprocess = {
        "subscriber.email": {"csv": csvexport.spreadsheet_safe},
    }

    def get_context_data(self, *args, **kwargs):
        context = super().get_context_data(*args, **kwargs)
        if self.is_export:
            record_admin_view(
                self.request, "subscriber", count=context["object_list"].count(),
                action=AuditEntry.Action.EXPORT,
            )
        elif shown := len(context["object_list"]):
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
    list_export = SUBSCRIPTION_EXPORT
    export_headings = csvexport.export_headings(
        SUBSCRIPTION_EXPORT,
        **{"subscriber.email": "Email", "newsletter.slug": "Newsletter"},
    )
    export_filename = "subscribers"
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
