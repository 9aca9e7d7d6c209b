"""Campaign models: a campaign (placement, schedule, targeting and the rules the reader's
browser applies), its A/B variants (the words and the ask), and each variant's aggregate
counters.

A campaign is translatable the Wagtail way (one row per locale sharing a ``translation_key``):
the English banner and its Russian translation are two campaigns, each with its own variants
and results. Counters live in their own table so that an editor saving a campaign never
overwrites numbers counted while the form was open.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from modelcluster.fields import ParentalKey, ParentalManyToManyField
from modelcluster.models import ClusterableModel
from wagtail.admin.panels import (
    FieldPanel,
    FieldRowPanel,
    InlinePanel,
    MultiFieldPanel,
)
from wagtail.fields import RichTextField
from wagtail.models import Orderable, PreviewableMixin, TranslatableMixin
from wagtail.search import index

# One frequency enum for the whole site: a variant's default frequency is a contribution's.
from masthead.contributions.models import Frequency


class Placement(models.TextChoices):
    BANNER = "banner", _("Banner (top of every page)")
    APPEAL = "appeal", _("Appeal (end of articles)")
    OVERLAY = "overlay", _("Overlay (over the page)")


class Audience(models.TextChoices):
    NON_SUPPORTERS = "non_supporters", _("Readers who have not contributed recently")
    NON_SUBSCRIBERS = "non_subscribers", _("Readers not subscribed to the newsletter")
    EVERYONE = "everyone", _("Everyone")


class CampaignQuerySet(models.QuerySet):
    def running(self, now=None) -> CampaignQuerySet:
        """Enabled campaigns whose dates include ``now``."""
        now = now or timezone.now()
        return (
            self.filter(enabled=True)
            .filter(models.Q(starts_at__isnull=True) | models.Q(starts_at__lte=now))
            .filter(models.Q(ends_at__isnull=True) | models.Q(ends_at__gt=now))
        )


class Campaign(PreviewableMixin, TranslatableMixin, index.Indexed, ClusterableModel):
    """One prompt in one placement, with the rules that decide when a reader sees it."""

    name = models.CharField(
        max_length=120, help_text=_("For editors only, e.g. “Spring appeal 2026”.")
    )
    placement = models.CharField(max_length=16, choices=Placement.choices)
    enabled = models.BooleanField(
        default=True, help_text=_("Untick to stop showing it without deleting its results.")
    )
    priority = models.IntegerField(
        default=0,
        help_text=_(
            "When several campaigns could show in the same placement, the highest priority "
            "that this reader is eligible for wins."
        ),
    )
    starts_at = models.DateTimeField(null=True, blank=True, help_text=_("Blank: right away."))
    ends_at = models.DateTimeField(null=True, blank=True, help_text=_("Blank: no end."))
    sections = ParentalManyToManyField(
        "publishing.SectionPage",
        blank=True,
        related_name="+",
        help_text=_("Show only on these sections' pages. None selected: everywhere."),
    )
    audience = models.CharField(
        max_length=20, choices=Audience.choices, default=Audience.NON_SUPPORTERS
    )
    snooze_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=_("“Remind me later” hides the appeal for this many days."),
    )
    close_days = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=_("Closing the banner or overlay hides it for this many days."),
    )
    max_views_per_day = models.PositiveSmallIntegerField(
        default=0, help_text=_("Show at most this many times in 24 hours (0: no limit).")
    )
    max_views_per_week = models.PositiveSmallIntegerField(
        default=0, help_text=_("Show at most this many times in 7 days (0: no limit).")
    )
    skip_first_articles = models.PositiveSmallIntegerField(
        default=0,
        help_text=_("Do not show to a reader until they have opened more than this many articles."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CampaignQuerySet.as_manager()

    panels = [
        MultiFieldPanel(
            [
                FieldPanel("name"),
                FieldRowPanel([FieldPanel("placement"), FieldPanel("priority")]),
                FieldPanel("enabled"),
                FieldRowPanel([FieldPanel("starts_at"), FieldPanel("ends_at")]),
            ],
            heading=_("Campaign"),
        ),
        MultiFieldPanel(
            [
                FieldPanel("audience"),
                FieldPanel("sections", widget=forms.CheckboxSelectMultiple),
            ],
            heading=_("Who and where"),
        ),
        MultiFieldPanel(
            [
                FieldRowPanel([FieldPanel("snooze_days"), FieldPanel("close_days")]),
                FieldRowPanel(
                    [FieldPanel("max_views_per_day"), FieldPanel("max_views_per_week")]
                ),
                FieldPanel("skip_first_articles"),
            ],
            heading=_("Rules applied in the reader's browser"),
        ),
        InlinePanel("variants", heading=_("Variants"), label=_("Variant"), min_num=1),
    ]
    search_fields = [index.SearchField("name"), index.AutocompleteField("name")]

    class Meta(TranslatableMixin.Meta):
        ordering = ["-priority", "-id"]
        verbose_name = _("campaign")

    def __str__(self) -> str:
        return self.name

    # --- preview in the admin: every variant as readers would see it ---

    def get_preview_template(self, request, mode_name):
        return "campaigns/preview.html"

    def get_preview_context(self, request, mode_name):
        from .templatetags.campaigns_tags import _checkout, prepare_variants

        context = super().get_preview_context(request, mode_name)
        variants = list(self.variants.all())
        prepare_variants(self, variants)
        context.update(
            campaign=self, variants=variants, placement=self.placement,
            action=_checkout()[0], method=_checkout()[1],
        )
        return context

    def clean(self) -> None:
        super().clean()
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": _("The end must come after the start.")})


class Variant(Orderable):
    """One version of a campaign's words and ask; each browser is assigned one at random."""

    campaign = ParentalKey(Campaign, related_name="variants", on_delete=models.CASCADE)
    label = models.CharField(
        max_length=40, help_text=_("For editors, e.g. “A: letter from the editor”.")
    )
    weight = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("Share of readers relative to the other variants (1 = equal)."),
    )
    heading = models.CharField(max_length=200, help_text=_("Banner line or appeal heading."))
    body = RichTextField(
        blank=True,
        features=["bold", "italic", "link", "ol", "ul"],
        help_text=_("The appeal's letter or the overlay's text (not used by the banner)."),
    )
    suggested_ask = models.CharField(
        max_length=120, blank=True, help_text=_("e.g. “monthly, from just $2”.")
    )
    default_frequency = models.CharField(
        max_length=10, choices=Frequency.choices, default=Frequency.MONTHLY
    )
    amounts = models.CharField(
        max_length=120,
        blank=True,
        help_text=_(
            "Preset amounts for the default frequency, in whole currency units separated by "
            "commas (e.g. “2, 5, 10”). Blank: the contribution settings' presets."
        ),
    )
    button_label = models.CharField(
        max_length=60, blank=True, help_text=_("Blank: “Continue” (appeal) or “Support us”.")
    )
    link_url = models.CharField(
        max_length=300,
        blank=True,
        help_text=_(
            "Where the banner or overlay button goes, a path on this site such as "
            "/newsletter/. Blank: the contribution page."
        ),
    )

    panels = [
        FieldRowPanel([FieldPanel("label"), FieldPanel("weight")]),
        FieldPanel("heading"),
        FieldPanel("body"),
        FieldRowPanel([FieldPanel("suggested_ask"), FieldPanel("default_frequency")]),
        FieldRowPanel([FieldPanel("amounts"), FieldPanel("button_label")]),
        FieldPanel("link_url"),
    ]

    class Meta(Orderable.Meta):
        verbose_name = _("variant")

    def __str__(self) -> str:
        return self.label

    def clean(self) -> None:
        super().clean()
        try:
            amounts = self.preset_amounts_minor()
        except ValueError as error:
            raise ValidationError({"amounts": str(error)})
        self._check_amounts_accepted(amounts)
        if self.link_url and not (
            self.link_url.startswith("/") and not self.link_url.startswith("//")
        ):
            raise ValidationError({"link_url": _("Use a path on this site, starting with /.")})

    def _check_amounts_accepted(self, amounts: list[int]) -> None:
        """The appeal must not offer an amount the checkout refuses."""
        from masthead.contributions.options import money_config

        currency = money_config().currency()
        refused = [a for a in amounts if not currency.accepts(a)]
        if refused:
            raise ValidationError({
                "amounts": _("%(amounts)s: contributions in %(currency)s go from %(min)s to "
                             "%(max)s.")
                % {
                    "amounts": ", ".join(currency.format(a) for a in refused),
                    "currency": currency.code,
                    "min": currency.format(currency.minimum),
                    "max": currency.format(currency.maximum),
                }
            })

    def preset_amounts_minor(self) -> list[int]:
        """The editor's preset amounts in minor units of the default currency (cents, yen,
        fils: its ISO exponent), or [] for the contribution settings' presets."""
        from decimal import Decimal, InvalidOperation

        from masthead.contributions.options import money_config

        currency = money_config().currency()
        amounts = []
        for raw in self.amounts.replace(";", ",").split(","):
            raw = raw.strip().lstrip("$€£¥").strip()
            if not raw:
                continue
            try:
                value = Decimal(raw)
            except InvalidOperation:
                raise ValueError(_("“%s” is not an amount.") % raw[:20])
            if not value.is_finite() or value <= 0 or value > 100_000:
                raise ValueError(_("“%s” is not an amount between 0.01 and 100000.") % raw[:20])
            minor = value.scaleb(currency.exponent)
            if minor != minor.to_integral_value():
                raise ValueError(
                    _("“%(amount)s” has more decimals than %(currency)s allows.")
                    % {"amount": raw[:20], "currency": currency.code}
                )
            amounts.append(int(minor))
        if len(amounts) > 6:
            raise ValueError(_("At most six preset amounts."))
        return amounts


class VariantCounter(models.Model):
    """Aggregate numbers for one variant: no reader id, no cookie, no IP — just totals."""

    variant = models.OneToOneField(Variant, on_delete=models.CASCADE, related_name="counter")
    impressions = models.PositiveBigIntegerField(default=0)
    clicks = models.PositiveBigIntegerField(default=0)
    dismissals = models.PositiveBigIntegerField(default=0)
    conversions = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.variant}: {self.impressions} impressions"
