"""Bank transfers received, recorded by staff: one at a time, or a bank statement's CSV.

A statement line (reference, amount, currency, date) is matched by its reference only
(:func:`~masthead.contributions.providers.banktransfer.normalise` tolerates case, spaces,
dashes and the reference among other words). Then, and never by guessing:

- **recorded** — the reference names a pledge and the currency and amount are the pledge's:
  the payment goes through the ledger as a staff action (the receipt is sent once, by the
  ledger's usual claim);
- **already recorded** — this very line was recorded before (same reference, amount,
  currency, date and position among identical lines): importing the same statement twice,
  or recording by hand a line the statement then brings, records nothing twice;
- **mismatched** — the reference is ours but the currency or amount is not the pledge's,
  or a one-off pledge was already paid: listed for staff to look at;
- **unmatched** — no pledge has this reference;
- **unreadable** — the line itself is malformed (bad amount, currency or date), or a debit.

A recurring pledge has one standing reference: each matching line pays the oldest unpaid
period, or a new one when none is open (the standing order ran before our reminder).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from .models import ChangeCause, Contribution, ProviderEvent, RecurringPlan
from .money import currencies, exponent, format_money
from .providers.banktransfer import normalise
from .providers.base import EventKind, PaymentEvent

PROVIDER = "banktransfer"
COLUMNS = ("reference", "amount", "currency", "date")
MAX_LINES = 20_000
RECORDED, ALREADY, MISMATCHED, UNMATCHED, UNREADABLE = (
    "recorded",
    "already recorded",
    "mismatched",
    "unmatched",
    "unreadable",
)


class StatementError(ValueError):
    """The file as a whole cannot be read (not CSV, missing columns, too long)."""


@dataclass
class Line:
    number: int  # line number in the file (the header is line 1)
    raw_reference: str
    amount_text: str
    currency: str
    date_text: str
    reference: str = ""
    amount: int | None = None
    date: dt.date | None = None
    outcome: str = ""
    detail: str = ""
    contribution_id: int | None = None
    line_id: str = ""

    @property
    def amount_label(self) -> str:
        if self.amount is None:
            return f"{self.amount_text} {self.currency}".strip()
        return format_money(self.amount, self.currency)


@dataclass
class Report:
    lines: list[Line] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for line in self.lines if line.outcome == outcome)

    @property
    def counts(self) -> dict[str, int]:
        return {o: self.count(o) for o in (RECORDED, ALREADY, MISMATCHED, UNMATCHED, UNREADABLE)}

    @property
    def to_look_at(self) -> list[Line]:
        return [line for line in self.lines if line.outcome in (MISMATCHED, UNMATCHED, UNREADABLE)]


# --- reading ---------------------------------------------------------------------------------


def read_csv(data: bytes | str) -> list[Line]:
    """The lines of a statement CSV with the columns reference, amount, currency, date (any
    order, any case; other columns ignored; comma or semicolon separated)."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise StatementError(_("The file is not UTF-8 text.")) from exc
    else:
        text = data
    if "\0" in text:
        raise StatementError(_("The file is not a CSV text file."))
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise StatementError(_("The file is empty.")) from None
    except csv.Error as exc:
        raise StatementError(_("The file is not valid CSV: %s") % exc) from exc
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise StatementError(
            _("Missing columns: %(missing)s (needed: %(needed)s).")
            % {"missing": ", ".join(missing), "needed": ", ".join(COLUMNS)}
        )
    where = {c: header.index(c) for c in COLUMNS}
    lines = []
    try:
        for number, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(lines) >= MAX_LINES:
                raise StatementError(_("More than %d lines: split the statement.") % MAX_LINES)
            cell = {c: (row[i].strip() if i < len(row) else "") for c, i in where.items()}
            lines.append(
                Line(
                    number,
                    cell["reference"][:200],
                    cell["amount"][:40],
                    cell["currency"].upper()[:10],
                    cell["date"][:40],
                )
            )
    except csv.Error as exc:
        raise StatementError(_("The file is not valid CSV: %s") % exc) from exc
    return lines


def parse_amount(text: str, currency: str) -> int | None:
    """``"1,234.56"``, ``"1.234,56"``, ``"25,00"``, ``"25"`` → minor units; None if unreadable
    or not a whole number of minor units."""
    cleaned = re.sub(r"[\s'\u00a0]", "", text or "")
    if not re.fullmatch(r"[+-]?[\d.,]+", cleaned):
        return None
    if "," in cleaned and "." in cleaned:
        decimal = "," if cleaned.rfind(",") > cleaned.rfind(".") else "."
    elif "," in cleaned:
        decimal = "," if re.search(r",\d{1,2}$", cleaned) else ""
    else:
        decimal = "." if re.search(r"\.\d{1,3}$", cleaned) and cleaned.count(".") == 1 else ""
    thousands = {",", "."} - {decimal}
    for sep in thousands:
        cleaned = cleaned.replace(sep, "")
    if decimal == ",":
        cleaned = cleaned.replace(",", ".")
    try:
        minor = Decimal(cleaned).scaleb(exponent(currency))
    except (InvalidOperation, ValueError):
        return None
    if minor != minor.to_integral_value():
        return None
    return int(minor)


def parse_date(text: str) -> dt.date | None:
    for fmt in ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


def _check(line: Line) -> bool:
    """Parse a line's fields in place; False (and the outcome) when it is unreadable."""
    problems = []
    if line.currency not in currencies():
        problems.append(_("currency %s is not accepted") % (line.currency or "—"))
    else:
        line.amount = parse_amount(line.amount_text, line.currency)
        if line.amount is None:
            problems.append(_("amount %s is not readable") % (line.amount_text or "—"))
        elif line.amount <= 0:
            problems.append(_("not a credit"))
    line.date = parse_date(line.date_text)
    if line.date is None:
        problems.append(_("date %s is not readable") % (line.date_text or "—"))
    line.reference = normalise(line.raw_reference)
    if problems:
        line.outcome, line.detail = UNREADABLE, "; ".join(problems)
        return False
    return True


def _line_ids(lines: list[Line]) -> None:
    """Name each readable line by what it says and its position among identical lines, so
    the same line in the same statement (or recorded by hand first) is the same payment."""
    seen: Counter = Counter()
    for line in lines:
        key = f"{line.reference or line.raw_reference.upper()}|{line.amount}|{line.currency}|"
        key += f"{line.date.isoformat() if line.date else ''}"
        occurrence = seen[key]
        seen[key] += 1
        line.line_id = hashlib.sha256(f"{key}|{occurrence}".encode()).hexdigest()[:40]


# --- matching and recording ------------------------------------------------------------------


def _event_id(line: Line) -> str:
    return f"transfer:{line.line_id}"


def _match(line: Line) -> tuple[Contribution | None, RecurringPlan | None]:
    if not line.reference:
        return None, None
    plan = RecurringPlan.objects.filter(provider=PROVIDER, provider_ref=line.reference).first()
    if plan is not None:
        return None, plan
    pledge = Contribution.objects.filter(
        provider=PROVIDER, checkout_ref=line.reference, is_renewal=False, plan__isnull=True
    ).first()
    return pledge, None


def _events_for(line: Line) -> list[PaymentEvent] | None:
    """The ledger events recording this line, or None (with ``outcome``/``detail`` set)."""
    pledge, plan = _match(line)
    if pledge is None and plan is None:
        line.outcome, line.detail = UNMATCHED, _("no pledge has this reference")
        return None
    expected = pledge or plan
    if line.currency != expected.currency or line.amount != expected.amount:
        line.outcome = MISMATCHED
        line.detail = _("the pledge is %(pledged)s") % {
            "pledged": format_money(expected.amount, expected.currency)
        }
        line.contribution_id = pledge.pk if pledge else None
        return None
    paid_at = dt.datetime.combine(line.date, dt.time(12), tzinfo=dt.UTC)
    common: dict[str, Any] = {
        "kind": EventKind.PAYMENT_SUCCEEDED,
        "occurred_at": paid_at,
        "payment_ref": f"bt-{line.line_id}"[:100],
        "amount": line.amount,
        "currency": line.currency,
    }
    if pledge is not None:
        if pledge.paid_at is not None:
            line.outcome, line.detail = MISMATCHED, _("this one-off pledge was paid before")
            line.contribution_id = pledge.pk
            return None
        line.contribution_id = pledge.pk
        return [PaymentEvent(contribution_id=pledge.pk, checkout_ref=pledge.checkout_ref, **common)]
    open_period = plan.payments.filter(paid_at__isnull=True).order_by("created_at", "pk").first()
    line.contribution_id = open_period.pk if open_period else None
    return [
        PaymentEvent(
            contribution_id=open_period.pk if open_period else None,
            plan_id=plan.pk,
            subscription_ref=plan.provider_ref or "",
            first_payment=not plan.payments.filter(paid_at__isnull=False).exists(),
            **common,
        )
    ]


def record_line(line: Line, *, actor: Any = None, note: str = "") -> Line:
    """Match one line and, if it matches, record it through the ledger (a staff action)."""
    from . import ledger

    if not line.outcome and not _check(line):
        return line
    if not line.line_id:
        _line_ids([line])
    if ProviderEvent.objects.filter(provider=PROVIDER, event_id=_event_id(line)).exists():
        line.outcome, line.detail = ALREADY, _("recorded before")
        return line
    events = _events_for(line)
    if events is None:
        return line
    started = timezone.now()
    stored = ledger.record_findings(
        PROVIDER,
        _event_id(line),
        events,
        cause=ChangeCause.STAFF,
        actor=actor,
        note=(note or f"bank transfer {line.reference} of {line.date}")[:200],
    )
    if stored.received_at < started:  # another import recorded it a moment ago
        line.outcome, line.detail = ALREADY, _("recorded before")
    else:
        line.outcome = RECORDED
    return line


def import_statement(
    data: bytes | str,
    *,
    actor: Any = None,
    progress: Callable[[Iterable[Line]], Iterable[Line]] | None = None,
) -> Report:
    """Read a statement CSV and record every line that matches a pledge (see module doc).

    Raises :class:`StatementError` when the file as a whole cannot be read.
    """
    lines = read_csv(data)
    readable = [line for line in lines if _check(line)]
    _line_ids(readable)
    for line in progress(readable) if progress else readable:
        record_line(line, actor=actor, note=f"statement line {line.number}")
    return Report(lines)


def record_transfer(
    reference: str,
    amount_text: str,
    currency: str,
    date_text: str,
    *,
    actor: Any = None,
) -> Line:
    """One transfer staff saw arrive (the admin form): the same rules as a statement line."""
    line = Line(1, reference, amount_text, currency.upper(), date_text)
    if _check(line):
        _line_ids([line])
        record_line(line, actor=actor, note="recorded by hand")
    return line
