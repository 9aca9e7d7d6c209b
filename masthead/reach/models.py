"""Mirrors the newsroom manages: other addresses that serve the site (a second domain, a CDN,
an onion service, a static copy, an IPFS gateway), each with the health the server last saw.

Which mirrors readers are told about (``Mirror.objects.published()``): the active ones that
are not failing — OK, or "unknown" (not checked yet, or an onion mirror the server cannot
reach without a Tor proxy): the newsroom vouched for those by marking them active. A mirror
whose last check failed is left out until a check passes again.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel, FieldRowPanel

http_url = URLValidator(schemes=["http", "https"])


class MirrorQuerySet(models.QuerySet):
    def published(self):
        """The mirrors readers see: active and not failing."""
        return self.filter(active=True).exclude(status=Mirror.Status.FAILING)


class Mirror(models.Model):
    class Kind(models.TextChoices):
        DOMAIN = "domain", _("Second domain")
        CDN = "cdn", _("CDN")
        ONION = "onion", _("Onion service")
        STATIC = "static", _("Static copy")
        IPFS = "ipfs", _("IPFS")

    class Status(models.TextChoices):
        OK = "ok", "OK"
        FAILING = "failing", "Failing"
        UNKNOWN = "unknown", "Unknown"

    url = models.CharField(
        "URL",
        max_length=500,
        unique=True,
        validators=[http_url],
        help_text="Where the mirror serves the site's home page, e.g. "
        "https://d1234.cloudfront.net/ or http://….onion/",
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.DOMAIN)
    active = models.BooleanField(
        default=True,
        help_text="Checked, and listed for readers while not failing (the /mirrors/ page, "
        "/mirrors.json, every email).",
    )
    notes = models.TextField(blank=True, help_text="For the newsroom only; never published.")
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.UNKNOWN, editable=False
    )
    last_seen = models.DateTimeField(
        "last OK", null=True, blank=True, editable=False, help_text="Last check that passed."
    )
    last_checked = models.DateTimeField(null=True, blank=True, editable=False)
    response_ms = models.PositiveIntegerField("response time (ms)", null=True, editable=False)
    last_error = models.CharField(max_length=300, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MirrorQuerySet.as_manager()

    panels = [
        FieldPanel("url"),
        FieldRowPanel([FieldPanel("kind"), FieldPanel("active")]),
        FieldPanel("notes"),
    ]

    class Meta:
        ordering = ["kind", "url"]

    def __str__(self) -> str:
        return self.url

    def clean(self) -> None:
        super().clean()
        self.url = (self.url or "").strip()
        host = (urlsplit(self.url).hostname or "").lower()
        if host.endswith(".onion"):
            self.kind = self.Kind.ONION

    @property
    def base_url(self) -> str:
        """The URL without a trailing slash, to put paths after."""
        return self.url.rstrip("/")

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()

    @property
    def is_onion(self) -> bool:
        return self.kind == self.Kind.ONION or self.host.endswith(".onion")
