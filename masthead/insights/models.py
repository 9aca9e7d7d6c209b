"""Insights has no tables: this unmanaged model only carries the "can view insights"
permission, so that Wagtail's group editor can grant it (see ``wagtail_hooks.py``)."""

from django.db import models


class Insights(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_insights", "Can view insights (aggregate money and audience)")]
        verbose_name = "insights"
        verbose_name_plural = "insights"

    def __str__(self) -> str:
        return "Insights"
