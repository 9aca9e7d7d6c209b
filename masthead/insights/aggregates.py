"""Every figure Insights shows, as aggregate queries over contributions, newsletters and
campaigns: counts and sums per month, per currency, per newsletter, per edition, per
variant — never a reader's id, address or name.

Months are calendar months in the newsroom's time zone (``TIME_ZONE``): ``TruncMonth`` is
given that zone explicitly, so a payment at 02:00 UTC on 1 March counts in February in New
York on SQLite and PostgreSQL alike, whatever zone a staff member's profile activates.
Money stays in integer minor units with its currency; nothing here adds two currencies.
The definitions are in ``docs/insights.md``.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    DateTimeField,
    Exists,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from masthead.campaigns.counters import pending_counts
from masthead.campaigns.models import Variant, VariantCounter
from masthead.contributions.models import Contribution, Frequency, RecurringPlan
from masthead.newsletters.models import (
    ConsentRecord,
    DeliveryRecipient,
    Edition,
    Newsletter,
    ProviderEvent,
    Subscription,
)

FREQUENCIES = [Frequency.ONCE, Frequency.MONTHLY, Frequency.ANNUAL]
MAX_MONTHS = 60


def newsroom_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """Whole calendar months ``first`` … ``last`` (first days) in the zone ``tz``."""

    first: dt.date
    last: dt.date
    tz: zoneinfo.ZoneInfo

    @classmethod
    def last_months(cls, n: int = 12, *, now: dt.datetime | None = None,
                    tz: zoneinfo.ZoneInfo | None = None) -> Period:
        tz = tz or newsroom_zone()
        today = (now or timezone.now()).astimezone(tz).date()
        last = today.replace(day=1)
        return cls(_add_months(last, -(n - 1)), last, tz)

    @property
    def months(self) -> list[dt.date]:
        months, month = [], self.first
        while month <= self.last:
            months.append(month)
            month = _add_months(month, 1)
        return months

    def at(self, month: dt.date) -> dt.datetime:
        """The first instant of ``month`` in the newsroom's zone."""
        return dt.datetime(month.year, month.month, 1, tzinfo=self.tz)

    @property
    def start(self) -> dt.datetime:
        return self.at(self.first)

    @property
    def end(self) -> dt.datetime:
        return self.at(_add_months(self.last, 1))

    def label(self, month: dt.date) -> str:
        return month.strftime("%Y-%m")


def _month(value: dt.datetime | dt.date | None, tz: zoneinfo.ZoneInfo) -> dt.date | None:
    """A ``TruncMonth`` result as the first day of its month."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = value.astimezone(tz)
        return value.date().replace(day=1)
    return value.replace(day=1)


def _trunc(expression, period: Period) -> TruncMonth:
    return TruncMonth(expression, tzinfo=period.tz, output_field=DateTimeField())


# --- Money ------------------------------------------------------------------------------------

DISPUTED = ["open", "lost"]

# What a payment leaves the newsroom: nothing if disputed (open or lost) or refunded in full,
# else the amount less what was refunded.
NET = Case(
    When(dispute_status__in=DISPUTED, then=Value(0)),
    When(refunded_amount__gte=F("amount"), then=Value(0)),
    default=F("amount") - F("refunded_amount"),
    output_field=BigIntegerField(),
)


@dataclass
class RevenueRow:
    month: dt.date
    currency: str
    frequency: str
    payments: int
    gross: int
    net: int

    @property
    def deducted(self) -> int:
        return self.gross - self.net


def revenue_by_month(period: Period) -> list[RevenueRow]:
    """Payments received per month, currency and frequency: gross, and net of refunds and
    disputes (counted against the month of the payment: a contribution records how much
    was refunded, not when)."""
    rows = (
        Contribution.objects.filter(paid_at__gte=period.start, paid_at__lt=period.end)
        .annotate(month=_trunc("paid_at", period))
        .values("month", "currency", "frequency")
        .annotate(payments=Count("id"), gross=Sum("amount"), net=Sum(NET))
        .order_by("month", "currency", "frequency")
    )
    return [
        RevenueRow(_month(r["month"], period.tz), r["currency"], r["frequency"],
                   r["payments"], r["gross"] or 0, r["net"] or 0)
        for r in rows
    ]


def _plans_started():
    """Plans with the moment they started: activation, else their first payment."""
    first_paid = (
        Contribution.objects.filter(plan=OuterRef("pk"), paid_at__isnull=False)
        .order_by("paid_at")
        .values("paid_at")[:1]
    )
    return RecurringPlan.objects.annotate(
        started_at=Coalesce(
            "activated_at", Subquery(first_paid, output_field=DateTimeField())
        )
    )


ANNUALISED = Case(
    When(frequency=Frequency.MONTHLY, then=F("amount") * 12),
    When(frequency=Frequency.ANNUAL, then=F("amount")),
    default=Value(0),
    output_field=BigIntegerField(),
)


def live_plans_at(moment: dt.datetime) -> dict[str, dict[str, int]]:
    """Per currency, the plans live at ``moment`` (started before it, not cancelled by then;
    past-due plans still count) and their annualised amount (monthly × 12 + annual)."""
    rows = (
        _plans_started()
        .filter(started_at__lt=moment)
        .filter(Q(cancelled_at__isnull=True) | Q(cancelled_at__gte=moment))
        .values("currency")
        .annotate(plans=Count("id"), annualised=Sum(ANNUALISED))
        .order_by("currency")
    )
    return {r["currency"]: {"plans": r["plans"], "annualised": r["annualised"] or 0}
            for r in rows}


@dataclass
class RecurringRow:
    month: dt.date
    currency: str
    plans: int
    monthly: int  # monthly-equivalent in minor units (annual plans count 1/12), rounded


def recurring_by_month(period: Period, *, now: dt.datetime | None = None) -> list[RecurringRow]:
    """Recurring revenue at each month's end (or now, for the current month), per currency:
    the monthly equivalent of the plans live then (the plan's amount in force today — the
    records keep no earlier amounts)."""
    now = now or timezone.now()
    result = []
    for month in period.months:
        moment = min(period.at(_add_months(month, 1)), now)
        if moment <= period.at(month):
            continue  # a month still to come
        for currency, row in live_plans_at(moment).items():
            result.append(RecurringRow(month, currency, row["plans"],
                                       round(row["annualised"] / 12)))
    return result


@dataclass
class PlanMonth:
    month: dt.date
    active_at_start: int = 0
    started: dict[str, int] = field(default_factory=dict)  # per frequency
    cancelled: dict[str, int] = field(default_factory=dict)

    @property
    def started_total(self) -> int:
        return sum(self.started.values())

    @property
    def cancelled_total(self) -> int:
        return sum(self.cancelled.values())

    @property
    def churn(self) -> float | None:
        """Plans cancelled in the month ÷ plans live at its start (None when none were)."""
        if not self.active_at_start:
            return None
        return self.cancelled_total / self.active_at_start


def plans_by_month(period: Period) -> list[PlanMonth]:
    """Plans started and cancelled per month (by frequency), the plans live at each month's
    start, and churn. Counts, not money: they add up across currencies."""
    months = {m: PlanMonth(m) for m in period.months}
    plans = _plans_started().filter(started_at__isnull=False)
    started = (
        plans.filter(started_at__gte=period.start, started_at__lt=period.end)
        .annotate(month=_trunc("started_at", period))
        .values("month", "frequency").annotate(n=Count("id")).order_by()
    )
    for r in started:
        months[_month(r["month"], period.tz)].started[r["frequency"]] = r["n"]
    cancelled = (
        plans.filter(cancelled_at__gte=period.start, cancelled_at__lt=period.end)
        .annotate(month=_trunc("cancelled_at", period))
        .values("month", "frequency").annotate(n=Count("id")).order_by()
    )
    for r in cancelled:
        months[_month(r["month"], period.tz)].cancelled[r["frequency"]] = r["n"]
    for month, row in months.items():
        row.active_at_start = sum(
            v["plans"] for v in live_plans_at(period.at(month)).values()
        )
    return list(months.values())


def new_supporters_by_month(period: Period) -> dict[dt.date, int]:
    """Donors whose first paid contribution (ever) falls in each month."""
    earlier = Contribution.objects.filter(
        donor=OuterRef("donor"), paid_at__isnull=False, paid_at__lt=OuterRef("paid_at")
    )
    rows = (
        Contribution.objects.filter(
            donor__isnull=False, paid_at__gte=period.start, paid_at__lt=period.end
        )
        .exclude(Exists(earlier))
        .annotate(month=_trunc("paid_at", period))
        .values("month")
        .annotate(n=Count("donor", distinct=True))
        .order_by()
    )
    counts = dict.fromkeys(period.months, 0)
    for r in rows:
        counts[_month(r["month"], period.tz)] = r["n"]
    return counts


# --- Newsletters ------------------------------------------------------------------------------


def subscribers_by_month(period: Period, *, now: dt.datetime | None = None) -> tuple[
    list[Newsletter], dict[dt.date, dict[int, int]]
]:
    """Confirmed subscribers of each newsletter at each month's end (or now): subscriptions
    whose latest consent record by then is a confirmation (a later unsubscribe, suppression
    or new unconfirmed request ends it)."""
    now = now or timezone.now()
    newsletters = list(Newsletter.objects.order_by("sort_order", "name"))
    result: dict[dt.date, dict[int, int]] = {}
    for month in period.months:
        moment = min(period.at(_add_months(month, 1)), now)
        if moment <= period.at(month):
            continue
        latest = (
            ConsentRecord.objects.filter(subscription=OuterRef("pk"), at__lt=moment)
            .order_by("-at", "-pk")
            .values("action")[:1]
        )
        rows = (
            Subscription.objects.annotate(last_action=Subquery(latest))
            .filter(last_action=ConsentRecord.Action.CONFIRMED)
            .values("newsletter").annotate(n=Count("id")).order_by()
        )
        counts = {n.pk: 0 for n in newsletters}
        counts.update({r["newsletter"]: r["n"] for r in rows})
        result[month] = counts
    return newsletters, result


def signups_by_month(period: Period) -> dict[dt.date, dict[str, int]]:
    """Sign-up requests and confirmations recorded in each month (all newsletters)."""
    rows = (
        ConsentRecord.objects.filter(
            at__gte=period.start, at__lt=period.end,
            action__in=[ConsentRecord.Action.REQUESTED, ConsentRecord.Action.CONFIRMED],
        )
        .annotate(month=_trunc("at", period))
        .values("month", "action").annotate(n=Count("id")).order_by()
    )
    result = {m: {"requested": 0, "confirmed": 0} for m in period.months}
    for r in rows:
        result[_month(r["month"], period.tz)][r["action"]] = r["n"]
    return result


@dataclass
class EditionRow:
    edition_id: int
    subject: str
    newsletter: str
    sent_at: dt.datetime | None
    sent: int = 0
    failed: int = 0
    unsubscribes: int = 0
    bounces: int = 0
    complaints: int = 0

    def rate(self, n: int) -> float | None:
        return n / self.sent if self.sent else None


BOUNCE_OUTCOMES = ["hard", "soft", "soft → suppressed"]


def editions_in(period: Period) -> list[EditionRow]:
    """Editions sent in the period with what followed each: messages sent and refused at
    sending (the ledger), then unsubscribes, bounces and complaints, each counted against
    the last edition that reader was sent before it happened (the events name no edition)."""
    editions = list(
        Edition.objects.filter(sent_at__gte=period.start, sent_at__lt=period.end)
        .select_related("newsletter").order_by("sent_at", "pk")
    )
    rows = {e.pk: EditionRow(e.pk, e.subject, e.newsletter.name, e.sent_at) for e in editions}
    if not rows:
        return []
    ledger = (
        DeliveryRecipient.objects.filter(delivery__edition_id__in=rows)
        .values("delivery__edition_id", "state").annotate(n=Count("id")).order_by()
    )
    for r in ledger:
        row = rows[r["delivery__edition_id"]]
        if r["state"] == DeliveryRecipient.State.SENT:
            row.sent += r["n"]
        elif r["state"] == DeliveryRecipient.State.FAILED:
            row.failed += r["n"]

    def last_edition(**match):
        return Subquery(
            DeliveryRecipient.objects.filter(state=DeliveryRecipient.State.SENT, **match)
            .order_by("-sent_at", "-pk").values("delivery__edition_id")[:1]
        )

    unsubscribes = (
        ConsentRecord.objects.filter(action=ConsentRecord.Action.UNSUBSCRIBED,
                                     at__gte=period.start)
        .annotate(edition=last_edition(subscription=OuterRef("subscription"),
                                       sent_at__lte=OuterRef("at")))
        .filter(edition__in=rows)
        .values("edition").annotate(n=Count("id")).order_by()
    )
    for r in unsubscribes:
        rows[r["edition"]].unsubscribes = r["n"]
    events = (
        ProviderEvent.objects.filter(subscriber__isnull=False, received_at__gte=period.start)
        .filter(Q(outcome__in=BOUNCE_OUTCOMES) | Q(outcome="complaint"))
        .annotate(edition=last_edition(subscription__subscriber=OuterRef("subscriber"),
                                       sent_at__lte=OuterRef("received_at")))
        .filter(edition__in=rows)
        .values("edition", "outcome").annotate(n=Count("id")).order_by()
    )
    for r in events:
        if r["outcome"] == "complaint":
            rows[r["edition"]].complaints += r["n"]
        else:
            rows[r["edition"]].bounces += r["n"]
    return list(rows.values())


# --- Campaigns --------------------------------------------------------------------------------

SOURCE_RE = re.compile(r"^(?:banner|appeal|overlay):\d{1,18}:(\d{1,18})$")


@dataclass
class FunnelRow:
    variant_id: int
    campaign: str
    variant: str
    impressions: int
    clicks: int
    conversions: int
    contributions_in_period: int

    @property
    def click_rate(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def conversion_rate(self) -> float | None:
        return self.conversions / self.impressions if self.impressions else None


def campaign_funnel(period: Period) -> list[FunnelRow]:
    """Per variant: impressions → clicks → contributions as counted since the variant began
    (the counters carry no dates; counts not yet flushed from the state store included), and
    the paid contributions in the period attributed to it by their source."""
    variants = list(
        Variant.objects.select_related("campaign").order_by("campaign_id", "sort_order", "pk")
    )
    counters = {c.variant_id: c for c in VariantCounter.objects.all()}
    pending = pending_counts([v.pk for v in variants])
    attributed: dict[int, int] = defaultdict(int)
    sources = (
        Contribution.objects.filter(paid_at__gte=period.start, paid_at__lt=period.end)
        .filter(Q(source__startswith="banner:") | Q(source__startswith="appeal:")
                | Q(source__startswith="overlay:"))
        .values("source").annotate(n=Count("id")).order_by()
    )
    for r in sources:
        match = SOURCE_RE.match(r["source"])
        if match:
            attributed[int(match[1])] += r["n"]
    rows = []
    for variant in variants:
        counter = counters.get(variant.pk)
        extra = pending.get(variant.pk, {})
        rows.append(FunnelRow(
            variant.pk,
            variant.campaign.name,
            variant.label,
            (counter.impressions if counter else 0) + extra.get("impression", 0),
            (counter.clicks if counter else 0) + extra.get("click", 0),
            counter.conversions if counter else 0,
            attributed.get(variant.pk, 0),
        ))
    return rows
