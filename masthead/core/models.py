"""Newsroom-wide settings editors change in the admin (Settings → Newsroom)."""

from django.db import models
from wagtail.admin.panels import FieldPanel
from wagtail.contrib.settings.models import BaseGenericSetting, register_setting


@register_setting(icon="site")
class NewsroomSettings(BaseGenericSetting):
    privacy_page = models.ForeignKey(
        "wagtailcore.Page",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The Privacy Policy that sign-up and giving forms link to.",
    )
    publisher_logo = models.ForeignKey(
        "publishing.NewsImage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Logo named as publisher in structured data.",
    )

    panels = [FieldPanel("privacy_page"), FieldPanel("publisher_logo")]

    class Meta:
        verbose_name = "Newsroom"


from .audit import AuditEntry  # noqa: E402, F401  (the access log's model, registered here)
from .replay import SignedDelivery  # noqa: E402, F401  (webhook replays, registered here)
