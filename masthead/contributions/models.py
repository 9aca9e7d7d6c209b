"""Contributions' records: donors, one-off and recurring contributions, provider events, presets.

Money is always an integer amount in minor units (cents, pence) plus an ISO 4217 currency.
State is recorded as *facts* merged commutatively (a payment time is kept once, a refunded
amount only grows, a cancellation is final, a newer amount change wins by provider time), and
each status is *derived* from those facts by :meth:`Contribution.derive_status` and
:meth:`RecurringPlan.derive_status`. That is what makes replayed and out-of-order provider
events converge on the same records as one in-order delivery.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel

from masthead.core.crypto import EncryptedTextField, decrypt, email_index, encrypt

from .providers.banktransfer import new_reference


class EncryptedJSONField(EncryptedTextField):
    """JSON stored encrypted: provider payloads carry payers' emails and names."""

    description = "JSON encrypted at rest"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return json.loads(decrypt(value))

    def to_python(self, value):
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def get_prep_value(self, value):
        if value is None:
            return value
        return encrypt(json.dumps(value, separators=(",", ":"), ensure_ascii=False))

    def value_to_string(self, obj):
        return json.dumps(self.value_from_object(obj))


class Frequency(models.TextChoices):
    ONCE = "once", _("Once")
    MONTHLY = "monthly", _("Monthly")
    ANNUAL = "annual", _("Annual")


RECURRING = (Frequency.MONTHLY, Frequency.ANNUAL)


class Donor(models.Model):
    """A person who gave: found by the blind index of their email, never by the email itself."""

    # Reader records, written on every sign-up and payment: nothing in them links to pages or
    # images, and indexing them queued a Wagtail reference-index task per save (a backlog on
    # RQ, where each task forks; bench/soak.py).
    wagtail_reference_index_ignore = True

    email = EncryptedTextField()
    email_index = models.CharField(max_length=64, unique=True, editable=False)
    name = EncryptedTextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        if self.erased_at:
            return f"Erased donor #{self.pk}"
        return f"{self.name or 'Donor'} <{self.email}>"

    def set_email(self, email: str) -> None:
        self.email = email.strip()
        self.email_index = email_index(email)


class PlanStatus(models.TextChoices):
    PENDING = "pending", _("Pending (checkout not completed)")
    ACTIVE = "active", _("Active")
    PAST_DUE = "past_due", _("Past due (renewal failed)")
    CANCELLED = "cancelled", _("Cancelled")
    ABANDONED = "abandoned", _("Abandoned at checkout")


class RecurringPlan(models.Model):
    """A monthly or annual contribution; each renewal is a :class:`Contribution`."""

    wagtail_reference_index_ignore = True  # reader records: see the first model above

    donor = models.ForeignKey(
        Donor, null=True, blank=True, on_delete=models.PROTECT, related_name="plans"
    )
    provider = models.CharField(max_length=20)
    provider_ref = models.CharField(
        max_length=100, null=True, blank=True, help_text="The subscription at the provider."
    )
    provider_customer = models.CharField(max_length=100, blank=True, default="")
    frequency = models.CharField(max_length=10, choices=Frequency.choices)
    amount = models.PositiveBigIntegerField(help_text="In minor units (cents, pence).")
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=12, choices=PlanStatus.choices, default=PlanStatus.PENDING, db_index=True
    )
    source = models.CharField(max_length=100, blank=True, default="")
    # Facts (merged commutatively; status is derived from them).
    activated_at = models.DateTimeField(null=True, blank=True)
    last_paid_at = models.DateTimeField(null=True, blank=True)
    last_failed_at = models.DateTimeField(null=True, blank=True)
    failed_attempts = models.PositiveIntegerField(default=0)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    abandoned_at = models.DateTimeField(null=True, blank=True)
    terms_changed_at = models.DateTimeField(
        null=True, blank=True, help_text="Provider time of the amount/frequency in force."
    )
    dunning_notified_at = models.DateTimeField(null=True, blank=True)
    dunning_notified_attempts = models.PositiveIntegerField(default=0)
    cancellation_notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the donor was told the plan ended (once)."
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_checked_at = models.DateTimeField(
        null=True, blank=True, help_text="When reconciliation last asked the provider."
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_ref"], name="unique_plan_provider_ref"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_frequency_display()} {format_money(self.amount, self.currency)}"

    def derive_status(self) -> str:
        if self.cancelled_at:
            return PlanStatus.CANCELLED
        if self.last_failed_at and (
            not self.last_paid_at or self.last_failed_at > self.last_paid_at
        ):
            return PlanStatus.PAST_DUE
        if self.activated_at or self.last_paid_at:
            return PlanStatus.ACTIVE
        if self.abandoned_at:
            return PlanStatus.ABANDONED
        return PlanStatus.PENDING

    @property
    def is_live(self) -> bool:
        return self.status in (PlanStatus.ACTIVE, PlanStatus.PAST_DUE)


class ContributionStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    ABANDONED = "abandoned", _("Abandoned at checkout")
    REFUNDED = "refunded", _("Refunded")
    DISPUTED = "disputed", _("Disputed")


class DisputeStatus(models.TextChoices):
    NONE = "", _("None")
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


# Merge order of dispute facts: a closed dispute never reopens through a late "open" event.
DISPUTE_RANK = {"": 0, "open": 1, "won": 2, "lost": 3}


class Contribution(models.Model):
    """One payment (or attempt): a one-off gift, the first payment of a plan, or a renewal."""

    wagtail_reference_index_ignore = True  # reader records: see the first model above

    donor = models.ForeignKey(
        Donor, null=True, blank=True, on_delete=models.PROTECT, related_name="contributions"
    )
    plan = models.ForeignKey(
        RecurringPlan,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
    )
    frequency = models.CharField(max_length=10, choices=Frequency.choices)
    amount = models.PositiveBigIntegerField(help_text="In minor units (cents, pence).")
    currency = models.CharField(max_length=3)
    provider = models.CharField(max_length=20)
    checkout_ref = models.CharField(
        max_length=100, blank=True, default="", help_text="Checkout session or order id."
    )
    # What receipts, the thank-you page and the admin call this contribution: random, in the
    # bank-transfer reference format (7KQP-3MXD), never the guessable database id.
    reference = models.CharField(
        max_length=9, default=new_reference, editable=False, db_index=True
    )
    payment_ref = models.CharField(
        max_length=100,
        null=True,
        blank=True,
        help_text="The payment at the provider (payment intent, capture, invoice, sale).",
    )
    charge_ref = models.CharField(
        max_length=100,
        blank=True,
        default="",
        db_index=True,
        help_text="What refunds and disputes name when it is not the payment_ref "
        "(the payment intent that paid a Stripe invoice).",
    )
    status = models.CharField(
        max_length=12,
        choices=ContributionStatus.choices,
        default=ContributionStatus.PENDING,
        db_index=True,
    )
    is_renewal = models.BooleanField(default=False)
    source = models.CharField(max_length=100, blank=True, default="")
    language = models.CharField(
        max_length=8, blank=True, default="", help_text="The reader's language: emails use it."
    )
    public_name = EncryptedTextField(blank=True, default="")
    is_public = models.BooleanField(default=False)
    message = EncryptedTextField(blank=True, default="")
    # Facts (merged commutatively; status is derived from them).
    paid_at = models.DateTimeField(null=True, blank=True, db_index=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0, help_text="Failed attempts so far.")
    abandoned_at = models.DateTimeField(null=True, blank=True)
    refunded_amount = models.PositiveBigIntegerField(default=0)
    dispute_status = models.CharField(
        max_length=5, choices=DisputeStatus.choices, blank=True, default=""
    )
    receipt_sent_at = models.DateTimeField(null=True, blank=True)
    announced_at = models.DateTimeField(
        null=True, blank=True, help_text="When contribution_succeeded was sent for it."
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "payment_ref"], name="unique_contribution_payment_ref"
            )
        ]
        indexes = [models.Index(fields=["provider", "checkout_ref"])]

    def __str__(self) -> str:
        return (
            f"{format_money(self.amount, self.currency)} {self.get_frequency_display()} #{self.pk}"
        )

    def derive_status(self) -> str:
        if self.paid_at:
            if self.refunded_amount >= self.amount:
                return ContributionStatus.REFUNDED
            if self.dispute_status in (DisputeStatus.OPEN, DisputeStatus.LOST):
                return ContributionStatus.DISPUTED
            return ContributionStatus.SUCCEEDED
        if self.failed_at:
            return ContributionStatus.FAILED
        if self.abandoned_at:
            return ContributionStatus.ABANDONED
        return ContributionStatus.PENDING

    @property
    def display_amount(self) -> str:
        return format_money(self.amount, self.currency)

    @property
    def export_source(self) -> str:
        # A leading "-" could start a formula in a spreadsheet (CSV injection).
        return f"'{self.source}" if self.source.startswith("-") else self.source


class EventStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSED = "processed", _("Processed")
    IGNORED = "ignored", _("Ignored (not relevant)")
    WAITING = "waiting", _("Waiting (for an earlier event to arrive)")
    FAILED = "failed", _("Failed (will be retried)")


class ProviderEvent(models.Model):
    """Every webhook (or reconciliation finding) from a provider, stored exactly once."""

    provider = models.CharField(max_length=20)
    event_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=100)
    payload = EncryptedJSONField(help_text="The event as the provider sent it (encrypted).")
    status = models.CharField(
        max_length=10, choices=EventStatus.choices, default=EventStatus.RECEIVED, db_index=True
    )
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="unique_provider_event")
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} {self.event_id}"


class ChangeCause(models.TextChoices):
    """Why a status changed: a provider's event, or who acted here."""

    PROVIDER = "provider", _("Provider event")
    RETURN = "return", _("Reader came back from the provider")
    RECONCILE = "reconcile", _("Reconciliation (asked the provider)")
    CHECKOUT = "checkout", _("Checkout refused by the provider")
    READER = "reader", _("Reader left the checkout")
    DONOR = "donor", _("Donor (manage page)")
    DUNNING = "dunning", _("Last failed try (dunning)")
    STAFF = "staff", _("Staff")
    ERASURE = "erasure", _("Erasure of the donor")


class StatusChangeQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Status history is append-only: entries are never changed.")

    def delete(self):
        raise PermissionError("Status history is append-only: entries are never deleted.")


class StatusChange(models.Model):
    """One status change of a contribution or a plan: from, to, when and why.

    Written only by :mod:`masthead.contributions.ledger`, in the same transaction as the
    change; append-only (``save()`` refuses an update, ``delete()`` and queryset updates
    refuse), as Liberapay's ``payin_events``. ``event`` is the stored provider event (or the
    local finding, e.g. ``local:cancel:7``) that caused it; ``actor`` the staff member or
    ``cause`` the kind of actor when it was not a provider.
    """

    wagtail_reference_index_ignore = True

    contribution = models.ForeignKey(
        Contribution, null=True, blank=True, on_delete=models.CASCADE, related_name="history"
    )
    plan = models.ForeignKey(
        RecurringPlan, null=True, blank=True, on_delete=models.CASCADE, related_name="history"
    )
    from_status = models.CharField(max_length=12, blank=True, default="")
    to_status = models.CharField(max_length=12)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    cause = models.CharField(max_length=10, choices=ChangeCause.choices)
    event = models.ForeignKey(
        "ProviderEvent", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,  # the entry outlives the account; actor_name keeps who
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True, default="")
    note = models.CharField(max_length=200, blank=True, default="")

    objects = StatusChangeQuerySet.as_manager()

    class Meta:
        ordering = ["at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(contribution__isnull=False, plan__isnull=True)
                    | models.Q(contribution__isnull=True, plan__isnull=False)
                ),
                name="status_change_of_one_record",
            )
        ]

    def __str__(self) -> str:
        return f"{self.from_status or '—'} → {self.to_status} ({self.get_cause_display()})"

    def save(self, *args, **kwargs):
        if self.pk is not None or kwargs.get("force_update"):
            raise PermissionError("Status history is append-only: entries are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Status history is append-only: entries are never deleted.")


class CheckoutSubmission(models.Model):
    """One submission of the give form, so that a double click (or two identical posts at
    once) opens one checkout at the provider, not two.

    ``key`` is a digest of the form's one-time submission key (set by the page's script on
    submit), or, without JavaScript, of the reader's address and the form's content. The
    first request claims it and starts the checkout; the others wait for its URL.
    """

    key = models.CharField(max_length=64, unique=True)
    contribution = models.ForeignKey(
        Contribution, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    checkout_url = models.URLField(max_length=2000, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"submission {self.key[:12]}"


class AmountPreset(models.Model):
    """A preset amount offered for one frequency and currency (editable by the revenue lead)."""

    frequency = models.CharField(max_length=10, choices=Frequency.choices)
    currency = models.CharField(max_length=3, help_text="ISO code, e.g. USD, EUR, GBP.")
    amount = models.PositiveBigIntegerField(
        help_text="In minor units: 500 is $5.00 / €5.00 / £5.00."
    )
    suggested = models.BooleanField(
        default=False, help_text="Pre-selected, and named in the appeal's suggested ask."
    )
    sort_order = models.PositiveIntegerField(default=0)

    panels = [
        FieldPanel("frequency"),
        FieldPanel("currency"),
        FieldPanel("amount"),
        FieldPanel("suggested"),
        FieldPanel("sort_order"),
    ]

    class Meta:
        ordering = ["frequency", "currency", "sort_order", "amount"]
        constraints = [
            models.UniqueConstraint(
                fields=["frequency", "currency", "amount"], name="unique_amount_preset"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_frequency_display()} {format_money(self.amount, self.currency)}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from .money import AmountError, validate_amount, validate_currency

        try:
            self.currency = validate_currency(self.currency or "")
        except AmountError as exc:
            raise ValidationError({"currency": str(exc)}) from exc
        try:
            validate_amount(self.amount, self.currency)
        except AmountError as exc:
            raise ValidationError({"amount": str(exc)}) from exc


class ProviderObject(models.Model):
    """Objects we create once at a provider and reuse (PayPal's catalog product and plans)."""

    provider = models.CharField(max_length=20)
    key = models.CharField(max_length=100)
    remote_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "key"], name="unique_provider_object")
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.key} = {self.remote_id}"


def format_money(amount: int, currency: str) -> str:
    from .money import format_money as _format

    return _format(amount, currency)


from .bankaccount import BankAccountSettings  # noqa: E402, F401  (bank transfers; registered here)
