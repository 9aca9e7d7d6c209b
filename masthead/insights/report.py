"""The Insights report: each figure as a table (the chart's text alternative and its CSV),
its chart, and the headline figures above them — built once per request from
:mod:`aggregates`, so the page and the CSV download cannot disagree.

Table cells carry two forms: what the page shows (``$1,234.50``, ``4.2%``) and what the CSV
holds (``1234.50`` with a currency column, ``0.042``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.safestring import SafeString

from masthead.contributions.money import AmountError, exponent, format_money

from . import aggregates as agg
from . import charts

FREQUENCY_LABELS = {"once": "One-time", "monthly": "Monthly", "annual": "Annual"}


def money(amount: int, currency: str) -> str:
    try:
        return format_money(amount, currency)
    except AmountError:  # a currency since removed from the settings
        return f"{Decimal(amount).scaleb(-2):,.2f} {currency}"


def major(amount: int, currency: str) -> str:
    """Minor units as a plain decimal in major units, for spreadsheets: 123450 → 1234.50."""
    try:
        places = exponent(currency)
    except AmountError:
        places = 2
    return f"{Decimal(amount).scaleb(-places):.{places}f}"


def pct(rate: float | None, places: int = 1) -> str:
    return "—" if rate is None else f"{rate * 100:.{places}f}%"


def ratio(rate: float | None) -> str:
    return "" if rate is None else f"{rate:.4f}"


@dataclass
class Cell:
    text: str
    csv: str | int | None = None
    numeric: bool = False

    @property
    def csv_value(self):
        return self.text if self.csv is None else self.csv


def num(n: int) -> Cell:
    return Cell(f"{n:,}", n, numeric=True)


def amount_cell(amount: int, currency: str) -> Cell:
    return Cell(money(amount, currency), major(amount, currency), numeric=True)


def rate_cell(rate: float | None) -> Cell:
    return Cell(pct(rate), ratio(rate), numeric=True)


@dataclass
class Table:
    slug: str
    title: str
    definition: str
    headers: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    charts: list[tuple[str, SafeString]] = field(default_factory=list)  # (caption, svg)
    empty: str = "Nothing in this period."

    def csv_rows(self) -> list[list]:
        return [self.headers, *[[c.csv_value for c in row] for row in self.rows]]


@dataclass
class Headline:
    label: str
    values: list[str]
    note: str = ""


@dataclass
class Report:
    period: agg.Period
    headlines: list[Headline]
    sections: list[tuple[str, list[Table]]]

    def table(self, slug: str) -> Table | None:
        for _title, tables in self.sections:
            for table in tables:
                if table.slug == slug:
                    return table
        return None


def _chart(draw, title: str, *args, **kwargs) -> tuple[str, SafeString]:
    return title, draw(title, *args, **kwargs)


def _label(period: agg.Period, month: dt.date) -> str:
    return month.strftime("%b %Y")


# --- Money ------------------------------------------------------------------------------------


def revenue_table(period: agg.Period, rows: list[agg.RevenueRow]) -> Table:
    table = Table(
        "revenue", "Revenue per month",
        "Payments received in the month, by currency and frequency; net is after refunds "
        "and open or lost disputes (set against the month of the payment).",
        ["Month", "Currency", "Frequency", "Payments", "Gross", "Refunded or disputed", "Net"],
    )
    for r in rows:
        table.rows.append([
            Cell(_label(period, r.month), period.label(r.month)), Cell(r.currency),
            Cell(FREQUENCY_LABELS.get(r.frequency, r.frequency), r.frequency),
            num(r.payments), amount_cell(r.gross, r.currency),
            amount_cell(r.deducted, r.currency), amount_cell(r.net, r.currency),
        ])
    for currency in sorted({r.currency for r in rows}):
        series = {
            FREQUENCY_LABELS[f]: [
                _major_float(sum(r.net for r in rows if r.month == m and r.currency == currency
                                 and r.frequency == f), currency)
                for m in period.months
            ]
            for f in agg.FREQUENCIES
        }
        table.charts.append(_chart(charts.stacked_bars,
            f"Net revenue in {currency}", [_label(period, m) for m in period.months], series,
            formatter=_axis_money(currency),
        ))
    return table


def _major_float(amount: int, currency: str) -> float:
    return float(major(amount, currency))


def _axis_money(currency: str):
    def fmt(value):
        if value is None:
            return ""
        return money(round(Decimal(str(value)).scaleb(_places(currency))), currency)
    return fmt


def _places(currency: str) -> int:
    try:
        return exponent(currency)
    except AmountError:
        return 2


def recurring_table(period: agg.Period, rows: list[agg.RecurringRow]) -> Table:
    table = Table(
        "recurring", "Recurring revenue",
        "At each month's end (today for the current month): the monthly equivalent of the "
        "plans live then, per currency (annual plans count one twelfth); past-due plans "
        "count until cancelled. Amounts are those in force today.",
        ["Month", "Currency", "Live plans", "Monthly recurring revenue"],
    )
    for r in rows:
        table.rows.append([
            Cell(_label(period, r.month), period.label(r.month)), Cell(r.currency),
            num(r.plans), amount_cell(r.monthly, r.currency),
        ])
    labels = [_label(period, m) for m in period.months]
    for currency in sorted({r.currency for r in rows}):
        by_month = {r.month: r.monthly for r in rows if r.currency == currency}
        values = [
            _major_float(by_month[m], currency) if m in by_month else None for m in period.months
        ]
        table.charts.append(_chart(charts.line,
            f"Monthly recurring revenue in {currency}", labels, {currency: values},
            formatter=_axis_money(currency),
        ))
    return table


def plans_table(period: agg.Period, months: list[agg.PlanMonth]) -> Table:
    table = Table(
        "plans", "Plans started and cancelled, and churn",
        "Plans start at activation (else their first payment). Churn is the plans "
        "cancelled in the month divided by the plans live at its start.",
        ["Month", "Live at start", "Started (monthly)", "Started (annual)",
         "Cancelled (monthly)", "Cancelled (annual)", "Churn"],
    )
    for m in months:
        table.rows.append([
            Cell(_label(period, m.month), period.label(m.month)), num(m.active_at_start),
            num(m.started.get("monthly", 0)), num(m.started.get("annual", 0)),
            num(m.cancelled.get("monthly", 0)), num(m.cancelled.get("annual", 0)),
            rate_cell(m.churn),
        ])
    table.charts.append(_chart(charts.bars,
        "Plans started and cancelled (all currencies)", [_label(period, m.month) for m in months],
        {"Started": [m.started_total for m in months],
         "Cancelled": [m.cancelled_total for m in months]},
    ))
    return table


def supporters_table(period: agg.Period, counts: dict[dt.date, int]) -> Table:
    table = Table(
        "supporters", "New supporters",
        "Donors whose first paid contribution ever was made in the month.",
        ["Month", "New supporters"],
    )
    for month, n in counts.items():
        table.rows.append([Cell(_label(period, month), period.label(month)), num(n)])
    table.charts.append(_chart(charts.bars,
        "New supporters", [_label(period, m) for m in counts], {"New supporters":
                                                               list(counts.values())},
    ))
    return table


# --- Newsletters ------------------------------------------------------------------------------


def subscribers_table(period: agg.Period, newsletters, counts) -> Table:
    table = Table(
        "subscribers", "Subscribers per newsletter",
        "Confirmed subscribers at each month's end (today for the current month): "
        "subscriptions whose latest consent by then was a confirmation; unsubscribed, "
        "suppressed (bounce or complaint) and unconfirmed addresses are not counted.",
        ["Month", *[n.name for n in newsletters]],
    )
    for month, per in counts.items():
        table.rows.append([Cell(_label(period, month), period.label(month)),
                           *[num(per.get(n.pk, 0)) for n in newsletters]])
    labels = [_label(period, m) for m in period.months]
    table.charts.append(_chart(charts.line,
        "Confirmed subscribers", labels,
        {n.name: [counts[m].get(n.pk, 0) if m in counts else None for m in period.months]
         for n in newsletters},
    ))
    return table


def signups_table(period: agg.Period, counts) -> Table:
    table = Table(
        "signups", "Sign-ups and confirmations",
        "Sign-up requests and double opt-in confirmations recorded in the month, all "
        "newsletters together (a confirmation may answer an earlier month's request).",
        ["Month", "Sign-ups", "Confirmations", "Confirmations per sign-up"],
    )
    for month, c in counts.items():
        rate = c["confirmed"] / c["requested"] if c["requested"] else None
        table.rows.append([Cell(_label(period, month), period.label(month)),
                           num(c["requested"]), num(c["confirmed"]), rate_cell(rate)])
    table.charts.append(_chart(charts.bars,
        "Sign-ups and confirmations", [_label(period, m) for m in counts],
        {"Sign-ups": [c["requested"] for c in counts.values()],
         "Confirmations": [c["confirmed"] for c in counts.values()]},
    ))
    return table


def editions_table(period: agg.Period, rows: list[agg.EditionRow]) -> Table:
    table = Table(
        "editions", "Unsubscribes and bounces per edition",
        "Editions sent in the period. Sent and refused come from the delivery ledger; "
        "an unsubscribe, bounce or complaint counts against the last edition that reader "
        "was sent before it.",
        ["Edition", "Newsletter", "Sent on", "Sent", "Refused at sending", "Unsubscribes",
         "Unsubscribe rate", "Bounces", "Complaints"],
        empty="No edition was sent in this period.",
    )
    for r in rows:
        sent_on = r.sent_at.astimezone(period.tz).date() if r.sent_at else None
        table.rows.append([
            Cell(r.subject, _safe_csv(r.subject)), Cell(r.newsletter, _safe_csv(r.newsletter)),
            Cell(sent_on.strftime("%-d %b %Y") if sent_on else "—",
                 sent_on.isoformat() if sent_on else ""),
            num(r.sent), num(r.failed), num(r.unsubscribes), rate_cell(r.rate(r.unsubscribes)),
            num(r.bounces), num(r.complaints),
        ])
    if rows:
        table.charts.append(_chart(charts.bars,
            "Unsubscribes, bounces and complaints",
            [_short(r.subject) for r in rows],
            {"Unsubscribes": [r.unsubscribes for r in rows],
             "Bounces": [r.bounces for r in rows],
             "Complaints": [r.complaints for r in rows]},
        ))
    return table


def _short(text: str, n: int = 24) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _safe_csv(text: str) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- Campaigns --------------------------------------------------------------------------------


def funnel_table(period: agg.Period, rows: list[agg.FunnelRow]) -> Table:
    table = Table(
        "funnel", "Campaign funnel per variant",
        "Impressions, clicks and contributions counted since each variant began (the "
        "counters carry no dates), with their rates per impression; the last column counts "
        "paid contributions in the period attributed to the variant.",
        ["Campaign", "Variant", "Impressions", "Clicks", "Click rate", "Contributions",
         "Contributions per impression", "Contributions in the period"],
        empty="No campaign variants yet.",
    )
    for r in rows:
        table.rows.append([
            Cell(r.campaign, _safe_csv(r.campaign)), Cell(r.variant, _safe_csv(r.variant)),
            num(r.impressions), num(r.clicks), rate_cell(r.click_rate), num(r.conversions),
            Cell(pct(r.conversion_rate, 2), ratio(r.conversion_rate), numeric=True),
            num(r.contributions_in_period),
        ])
    if rows:
        table.charts.append(_chart(charts.horizontal_bars,
            "Clicks and contributions per 100 impressions",
            [_short(f"{r.campaign} · {r.variant}", 40) for r in rows],
            {"Clicks": [_per100(r.click_rate) for r in rows],
             "Contributions": [_per100(r.conversion_rate) for r in rows]},
        ))
    return table


def _per100(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 3)


# --- The whole report -------------------------------------------------------------------------


def build(period: agg.Period) -> Report:
    revenue = agg.revenue_by_month(period)
    recurring = agg.recurring_by_month(period)
    plans = agg.plans_by_month(period)
    supporters = agg.new_supporters_by_month(period)
    newsletters, subscribers = agg.subscribers_by_month(period)
    signups = agg.signups_by_month(period)
    editions = agg.editions_in(period)
    funnel = agg.campaign_funnel(period)
    return Report(
        period,
        headlines(period, revenue, recurring, plans, supporters, subscribers, editions),
        [
            ("Money", [revenue_table(period, revenue), recurring_table(period, recurring),
                       plans_table(period, plans), supporters_table(period, supporters)]),
            ("Audience", [subscribers_table(period, newsletters, subscribers),
                          signups_table(period, signups), editions_table(period, editions)]),
            ("Campaigns", [funnel_table(period, funnel)]),
        ],
    )


def headlines(period, revenue, recurring, plans, supporters, subscribers, editions):
    net: dict[str, int] = {}
    for r in revenue:
        net[r.currency] = net.get(r.currency, 0) + r.net
    last_recurring = max((r.month for r in recurring), default=None)
    mrr = sorted((r.currency, r.monthly, r.plans) for r in recurring if r.month == last_recurring)
    cancelled = sum(m.cancelled_total for m in plans)
    exposure = sum(m.active_at_start for m in plans)
    months_with_subscribers = sorted(subscribers)
    end_total = sum(subscribers[months_with_subscribers[-1]].values()) if subscribers else 0
    start_total = sum(subscribers[months_with_subscribers[0]].values()) if subscribers else 0
    sent = sum(e.sent for e in editions)
    unsubscribed = sum(e.unsubscribes for e in editions)
    return [
        Headline("Net revenue", [money(v, c) for c, v in sorted(net.items())] or ["—"],
                 "after refunds and disputes"),
        Headline("Recurring revenue", [f"{money(v, c)} / month" for c, v, _n in mrr] or ["—"],
                 f"{sum(n for _c, _v, n in mrr):,} live plans"),
        Headline("New supporters", [f"{sum(supporters.values()):,}"],
                 f"{sum(m.started_total for m in plans):,} plans started"),
        Headline("Plan churn", [pct(cancelled / exposure if exposure else None)],
                 f"a month on average; {cancelled:,} cancelled"),
        Headline("Newsletter subscribers", [f"{end_total:,}"],
                 f"{end_total - start_total:+,} since {_label(period, period.first)}"),
        Headline("Unsubscribe rate", [pct(unsubscribed / sent if sent else None, 2)],
                 f"of {sent:,} emails in {len(editions):,} editions"),
    ]
