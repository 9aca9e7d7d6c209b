"""Newsletter data: newsletters, subscribers and their consent, editions, and the delivery
ledger.

* A :class:`Subscriber` is one email address, stored encrypted with a blind index for
  lookups; suppression (hard bounce, complaint) is per address.
* A :class:`Subscription` ties a subscriber to one :class:`Newsletter` with a status;
  every change of consent is a :class:`ConsentRecord` (time, action, policy version).
* An :class:`Edition` is what an editor hand-picks (ordered :class:`EditionArticle` rows).
* A :class:`Delivery` is one send of an edition: its content rendered once, and a ledger of
  :class:`DeliveryRecipient` rows, each with its own state, so a killed send resumes where it
  stopped (see ``delivery.py``).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone
from django.utils.text import slugify
from modelcluster.fields import ParentalKey
from modelcluster.models import ClusterableModel
from wagtail.admin.panels import (
    FieldPanel,
    FieldRowPanel,
    InlinePanel,
    MultiFieldPanel,
    PageChooserPanel,
)
from wagtail.fields import RichTextField
from wagtail.models import Orderable, PreviewableMixin

from masthead.core.crypto import EncryptedTextField
from masthead.reach.widgets import MirrorURLInput


def slug_within(text: str, max_length: int, *, allow_unicode: bool = False) -> str:
    """Django's slugify, shortened to at most ``max_length`` at the last whole word (a cut
    mid-word read "…-and-a-letterpr"); a single word longer than that is cut where it must
    be. (python-slugify's word_boundary does the same but is no runtime dependency here.)"""
    slug = slugify(text, allow_unicode=allow_unicode)
    if len(slug) > max_length:
        head = slug[: max_length + 1]
        boundary = head.rfind("-")
        slug = head[:boundary] if boundary > 0 else slug[:max_length]
    return slug.strip("-_")


WEEKDAYS = [
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
]


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"“{value}” is not a time zone name (e.g. Europe/Berlin).")


class NewsletterQuerySet(models.QuerySet):
    def active(self):
        return self.filter(active=True)

    def default_for(self, language: str | None) -> Newsletter | None:
        """The newsletter a sign-up block offers in ``language`` (else the site default)."""
        active = self.active().order_by("-is_default", "sort_order", "pk")
        return active.filter(language=language).first() or active.first()


class Newsletter(models.Model):
    name = models.CharField(max_length=120, help_text="e.g. “The Friday Lantern”.")
    slug = models.SlugField(max_length=80, unique=True)
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")
    description = models.TextField(
        blank=True,
        help_text="One or two sentences shown in the sign-up block and on the newsletter page.",
    )
    is_default = models.BooleanField(
        default=False, help_text="Offered by the sign-up block on pages in its language."
    )
    active = models.BooleanField(default=True, help_text="Inactive newsletters take no sign-ups.")
    sort_order = models.PositiveIntegerField(default=0)
    send_weekday = models.PositiveSmallIntegerField(choices=WEEKDAYS, default=4)
    send_time = models.TimeField(default=dt.time(9, 0))
    timezone = models.CharField(
        max_length=64,
        default="Europe/London",
        validators=[validate_timezone],
        help_text="The time zone of the default send time.",
    )
    from_name = models.CharField(max_length=120, blank=True, help_text="Defaults to the name.")
    from_email = models.EmailField(blank=True, help_text="Defaults to DEFAULT_FROM_EMAIL.")
    reply_to = models.EmailField(blank=True)
    greeting = models.CharField(
        max_length=120,
        blank=True,
        default="Hello {name},",
        help_text="Personal greeting; {name} is the subscriber's name. Blank: no greeting.",
    )
    greeting_without_name = models.CharField(max_length=120, blank=True, default="Hello,")
    # For readers who cannot open the main domain (docs/reach.md).
    link_base_url = models.CharField(
        "link host",
        max_length=300,
        blank=True,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="The address links in this newsletter's emails use (confirm, unsubscribe, "
        "articles, web version) — a mirror readers can open. Blank: "
        "MASTHEAD_EMAIL_LINK_BASE_URL, else the main site.",
    )
    full_text = models.BooleanField(
        "whole articles",
        default=False,
        help_text="Every edition carries each article in full, so readers who never reach "
        "the site read everything.",
    )
    email_images = models.BooleanField(
        "images in email",
        default=True,
        help_text="Include article images (loaded from the link host). Off: text only.",
    )

    objects = NewsletterQuerySet.as_manager()

    panels = [
        FieldPanel("name"),
        FieldPanel("slug"),
        FieldPanel("language"),
        FieldPanel("description"),
        FieldRowPanel([FieldPanel("is_default"), FieldPanel("active")]),
        MultiFieldPanel(
            [FieldPanel("send_weekday"), FieldPanel("send_time"), FieldPanel("timezone")],
            heading="Default send time",
        ),
        MultiFieldPanel(
            [FieldPanel("from_name"), FieldPanel("from_email"), FieldPanel("reply_to")],
            heading="Sender",
        ),
        MultiFieldPanel(
            [FieldPanel("greeting"), FieldPanel("greeting_without_name")], heading="Greeting"
        ),
        MultiFieldPanel(
            [
                FieldPanel("link_base_url", widget=MirrorURLInput),
                FieldRowPanel([FieldPanel("full_text"), FieldPanel("email_images")]),
            ],
            heading="For readers who cannot reach the site",
        ),
    ]

    class Meta:
        ordering = ["sort_order", "name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slug_within(self.name, 80) or "newsletter"
        super().save(*args, **kwargs)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def next_send_time(self, after: dt.datetime | None = None) -> dt.datetime:
        """The next default send time (e.g. Friday 09:00 local) strictly after ``after``."""
        after = (after or timezone.now()).astimezone(self.zone)
        days = (self.send_weekday - after.weekday()) % 7
        candidate = dt.datetime.combine(
            after.date() + dt.timedelta(days=days), self.send_time, tzinfo=self.zone
        )
        if candidate <= after:
            candidate += dt.timedelta(days=7)
        return candidate

    @property
    def sender(self) -> str:
        from email.utils import formataddr, parseaddr

        default_name, default_address = parseaddr(settings.DEFAULT_FROM_EMAIL)
        return formataddr((self.from_name or self.name, self.from_email or default_address))

    @property
    def list_id(self) -> str:
        """The RFC 2919 list identifier, e.g. ``friday-lantern.example.org``."""
        from urllib.parse import urlsplit

        host = urlsplit(settings.MASTHEAD_BASE_URL).hostname or "localhost"
        return f"{self.slug}.{host}"


# --- Subscribers and consent -----------------------------------------------------------------


class Subscriber(models.Model):
    """One email address, encrypted at rest; found by its blind index."""

    # Reader records, written on every sign-up and payment: nothing in them links to pages or
    # images, and indexing them queued a Wagtail reference-index task per save (a backlog on
    # RQ, where each task forks; bench/soak.py).
    wagtail_reference_index_ignore = True

    email = EncryptedTextField()
    email_index = models.CharField(max_length=64, unique=True)
    name = EncryptedTextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    suppressed_at = models.DateTimeField(null=True, blank=True)
    suppression_reason = models.CharField(max_length=200, blank=True)
    soft_bounces = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "subscriber"

    def __str__(self) -> str:
        return self.email

    @property
    def suppressed(self) -> bool:
        return self.suppressed_at is not None


class Subscription(models.Model):
    wagtail_reference_index_ignore = True  # reader records: see the first model above

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting confirmation"
        CONFIRMED = "confirmed", "Confirmed"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="subscriptions"
    )
    newsletter = models.ForeignKey(
        Newsletter, on_delete=models.CASCADE, related_name="subscriptions"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    requested_at = models.DateTimeField(
        default=timezone.now, help_text="Last sign-up request (starts the confirmation clock)."
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "newsletter"], name="one_subscription_per_newsletter"
            )
        ]
        indexes = [models.Index(fields=["newsletter", "status"], name="subscription_status_idx")]

    def __str__(self) -> str:
        return f"{self.subscriber} → {self.newsletter} ({self.status})"


class ConsentRecord(models.Model):
    """Evidence of consent: what was agreed to, when, under which privacy policy."""

    class Action(models.TextChoices):
        REQUESTED = "requested", "Sign-up requested"
        CONFIRMED = "confirmed", "Confirmed (double opt-in)"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        SUPPRESSED = "suppressed", "Suppressed (bounce or complaint)"

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="consent_records"
    )
    newsletter = models.ForeignKey(Newsletter, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=16, choices=Action.choices)
    at = models.DateTimeField(default=timezone.now)
    policy_version = models.CharField(max_length=120, blank=True)
    source = models.CharField(max_length=100, blank=True, help_text="Where it happened.")

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} at {self.at:%Y-%m-%d %H:%M}"


# --- Editions --------------------------------------------------------------------------------


class Edition(PreviewableMixin, ClusterableModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"

    newsletter = models.ForeignKey(Newsletter, on_delete=models.PROTECT, related_name="editions")
    subject = models.CharField(max_length=200)
    preheader = models.CharField(
        max_length=200, blank=True, help_text="The preview line mail programs show after it."
    )
    intro = RichTextField(features=["bold", "italic", "link", "ol", "ul"], blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT, editable=False
    )
    scheduled_at = models.DateTimeField(null=True, blank=True, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    panels = [
        FieldPanel("newsletter"),
        FieldPanel("subject"),
        FieldPanel("preheader"),
        FieldPanel("intro"),
        InlinePanel("items", label="Articles", heading="Articles (in order)"),
    ]

    class Meta:
        ordering = ["-sent_at", "-created_at"]

    def __str__(self) -> str:
        return self.subject

    @property
    def slug(self) -> str:
        return slug_within(self.subject, 60, allow_unicode=True) or "edition"

    def get_absolute_url(self) -> str:
        from django.urls import reverse
        from django.utils import translation

        with translation.override(self.newsletter.language):
            return reverse(
                "newsletters:edition",
                kwargs={"newsletter": self.newsletter.slug, "pk": self.pk, "slug": self.slug},
            )

    @property
    def full_url(self) -> str:
        return settings.MASTHEAD_BASE_URL + self.get_absolute_url()

    def articles(self) -> list[EditionArticle]:
        return [
            item
            for item in self.items.select_related("article", "article__lead_image")
            if item.article_id and item.article.live
        ]

    # Wagtail's live preview in the admin: the email exactly as subscribers get it.
    def serve_preview(self, request, mode_name):
        from django.http import HttpResponse

        from .rendering import render_edition

        rendered = render_edition(self)
        if mode_name == "text":
            return HttpResponse(rendered.preview_text(), content_type="text/plain; charset=utf-8")
        return HttpResponse(rendered.preview_html())

    def make_preview_request(self, original_request=None, preview_mode=None,
                             extra_request_attrs=None):
        # The email is not a page of the site: render it for the editor's own admin request
        # instead of a simulated reader request (whose reader-page headers, such as CSP
        # frame-ancestors 'none', would stop the admin from framing the preview).
        return self.serve_preview(original_request, preview_mode)

    @property
    def preview_modes(self):
        return [("", "Email (HTML)"), ("text", "Plain text")]


class EditionArticle(Orderable):
    edition = ParentalKey(Edition, on_delete=models.CASCADE, related_name="items")
    article = models.ForeignKey(
        "publishing.ArticlePage", on_delete=models.CASCADE, related_name="+"
    )
    full_text = models.BooleanField(
        default=False, help_text="Include the whole article instead of a teaser."
    )

    panels = [PageChooserPanel("article", "publishing.ArticlePage"), FieldPanel("full_text")]


# --- Delivery ledger -------------------------------------------------------------------------


class Delivery(models.Model):
    """One send of an edition: the content rendered once, and the ledger of recipients."""

    class Status(models.TextChoices):
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        DONE = "done", "Done"

    edition = models.OneToOneField(Edition, on_delete=models.CASCADE, related_name="delivery")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SENDING)
    subject = models.CharField(max_length=200)
    html = models.TextField()
    text = models.TextField()
    total = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"Delivery of “{self.subject}”"


class DeliveryRecipient(models.Model):
    """One row of the ledger: a recipient of a delivery and where their message stands."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        CLAIMED = "claimed", "Being sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (unsubscribed or suppressed meanwhile)"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="recipients")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "subscription"], name="one_ledger_row_per_recipient"
            )
        ]
        indexes = [models.Index(fields=["delivery", "state", "id"], name="ledger_claim_idx")]

    def __str__(self) -> str:
        return f"{self.subscription_id}: {self.state}"


class EditionLink(models.Model):
    """Aggregate click count of one link in an edition — only when an operator turns
    ``MASTHEAD_NEWSLETTER_CLICK_COUNTS`` on; never who clicked."""

    edition = models.ForeignKey(Edition, on_delete=models.CASCADE, related_name="links")
    url = models.URLField(max_length=2000)
    clicks = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["edition", "url"], name="one_counter_per_link")
        ]

    def __str__(self) -> str:
        return f"{self.url} ({self.clicks})"


class ProviderEvent(models.Model):
    """A bounce/complaint event from an email provider, stored once (idempotent replays)."""

    esp_name = models.CharField(max_length=40)
    event_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=40)
    reject_reason = models.CharField(max_length=40, blank=True)
    subscriber = models.ForeignKey(
        Subscriber, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=40, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["esp_name", "event_id"], name="one_provider_event")
        ]

    def __str__(self) -> str:
        return f"{self.esp_name} {self.event_type} {self.event_id}"


def message_id_key(value: str) -> str:
    """A message id as stored and looked up: no angle brackets or surrounding space."""
    return ("" if value is None else str(value)).strip().strip("<>").strip()[:255]


class SentMessage(models.Model):
    """A message Masthead sent to one subscription, by the ids a provider's event may name:
    our ``Message-ID`` (without angle brackets) and the provider's own message id. A bounce,
    complaint or unsubscribe event changes a subscriber only when it names one of these (or
    an edition ``Message-ID`` the delivery ledger shows as sent) — see ``signals.py``.

    Edition messages sent over SMTP get no row: their ``Message-ID`` is derived from the
    ledger (``edition-<id>.<subscription>@host``). Rows go away with the subscription."""

    message_id = models.CharField(max_length=255, db_index=True)
    esp_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16)  # edition, confirm, already
    sent_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind} {self.message_id}"
