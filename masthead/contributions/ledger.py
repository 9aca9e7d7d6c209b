"""The ledger: the one place where provider events are stored and statuses change.

Everything that moves a :class:`Contribution` or a :class:`RecurringPlan` from one status to
another goes through here, and only here; so do the side effects of a change. Other modules
call these functions (the public API, kept small):

- :func:`receive_webhook` ``(provider_key, body, headers)`` — what the webhook view calls,
  for every provider, the sandbox included: verify (the provider's own check), refuse an
  exact replay of a delivery (409), store the event once (unique per provider and event id)
  and wake the worker. Raises ``UnknownProvider`` / ``WebhookError``.
- :func:`apply_received_events` — the worker's side (``tasks.apply_events``): apply the
  stored events in the order they arrived, in batches, one applier at a time.
- :func:`record_findings` ``(provider, event_id, events, *, cause, actor=None, note="")`` —
  apply what we learned other than by webhook: the reader's return, reconciliation, a donor's
  or staff member's action. ``event_id`` names the finding (stored like a webhook, once, so
  the same finding twice is applied once); ``cause`` is a :class:`ChangeCause`; ``actor`` the
  staff user, when there is one.
- :func:`checkout_refused` — the provider refused to open a checkout.
- :func:`record_plan_cancelled` — a plan cancelled at the provider by us (donor, staff,
  erasure, the last failed try), with the notice the donor gets.
- :func:`record_refund` — a refund made outside any provider webhook, recorded by staff.
- :func:`process_event` / :func:`retry_waiting_events` — apply stored events (again).
- :func:`claim_dunning_notice` / :func:`claim_cancellation_notice` — the claims the email
  tasks make before sending.
- :func:`prune_webhook_deliveries`.

How a change is applied: a provider's event is translated into provider-neutral
:class:`PaymentEvent` objects; each merges *facts* into the locked rows (see models.py) and
the status is derived from the facts, so replays and any order of delivery converge. When the
derived status differs from the stored one, one :class:`StatusChange` row is written in the
same transaction (from, to, when, the stored event, the cause and the actor): the history
shown as a timeline in the admin.

Side effects fire with ``transaction.on_commit`` and each is claimed exactly once, so
duplicates, replays and concurrent deliveries never send twice: ``contribution_succeeded``
(claimed by ``announced_at`` under the row lock), receipts (``receipt_sent_at``, claimed by
the task), dunning (``dunning_notified_at`` / ``_attempts``), the cancellation notice
(``cancellation_notified_at``), the cancellation at the provider after the last failed try,
and the notice of a live plan's new amount or frequency (sent when the terms actually
change, so replays and the provider's echo of our own change send nothing).
"""

from __future__ import annotations

import contextvars
import copy
import datetime as dt
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from masthead.core.crypto import email_index
from masthead.core.replay import (
    first_delivery,
    forget_deliveries,
    insert_once,
    insert_once_returning_pk,
)
from masthead.core.state import state_store

from .models import (
    DISPUTE_RANK,
    RECURRING,
    ChangeCause,
    Contribution,
    Donor,
    EventStatus,
    PlanStatus,
    ProviderEvent,
    RecurringPlan,
    StatusChange,
)
from .providers import UnknownProvider, get_provider
from .providers.base import EventKind, PaymentEvent, WebhookError
from .signals import contribution_succeeded

log = logging.getLogger(__name__)


# --- why a change happens (written into the history) ----------------------------------------


@dataclass(frozen=True)
class Cause:
    cause: str = ChangeCause.PROVIDER
    event_pk: int | None = None
    actor: Any = None
    note: str = ""


_cause: contextvars.ContextVar[Cause | None] = contextvars.ContextVar("ledger_cause", default=None)


@contextmanager
def _because(cause: Cause) -> Iterator[None]:
    token = _cause.set(cause)
    try:
        yield
    finally:
        _cause.reset(token)


def _history(*, contribution=None, plan=None, before: str, after: str, note: str = "") -> None:
    """Write one status change (in the caller's transaction)."""
    if before == after:
        return
    why = _cause.get() or Cause()
    # A staff user, or a name (who ran a management command).
    actor = why.actor if getattr(why.actor, "pk", None) is not None else None
    name = actor.get_username() if actor is not None else str(why.actor or "")
    change = StatusChange(
        contribution=contribution,
        plan=plan,
        from_status=before or "",
        to_status=after,
        cause=why.cause,
        event_id=why.event_pk,
        actor=actor,
        actor_name=name[:150],
        note=(note or why.note)[:200],
    )
    deferred = _deferred.get()
    if deferred is None:
        change.save(force_insert=True)
    else:  # a batch: written with the batch's other rows, before it commits
        deferred.history.append(change)


@dataclass
class _Deferred:
    """What a batch (``_apply_batch``) keeps between its events, inside its transaction.

    - The writes it makes in bulk at its end: the history rows and the events' own statuses
      (``_flush``).
    - An identity map of the plans and payments it has loaded (``rows``), and an index of
      them by the references events name them by (``refs``: (model, field, provider, value)
      → pk, or None where the batch looked and there is no such row). Each chunk of events
      has its plans and payments loaded in one query each (``_prefetch``), so an event's
      lookups cost no query, and every event of the batch works on the same instance of a
      row. Saves still write at once; the map only spares reads. A savepoint that rolls back
      (``_savepoint``), or a write that bypasses the instances (``_link_donor``'s update),
      forgets the map, which is then filled again from the database.
    """

    history: list = field(default_factory=list)
    events: list = field(default_factory=list)
    rows: dict = field(default_factory=dict)
    refs: dict = field(default_factory=dict)

    def keep(self, row):
        """The batch's instance of this row (``row`` itself, the first time it is seen)."""
        if row is None:
            return None
        kept = self.rows.setdefault((type(row), row.pk), row)
        self.index(kept)
        return kept

    def index(self, row) -> None:
        """Point the references a saved or loaded row carries at it."""
        model = type(row)
        self.refs[(model, "pk", row.provider, row.pk)] = row.pk
        if model is Contribution:
            unique, shared = ("payment_ref",), ("charge_ref",)
        else:
            unique, shared = ("provider_ref",), ()
        for name in unique:  # unique per provider: this row is the one
            if value := getattr(row, name):
                self.refs[(model, name, row.provider, value)] = row.pk
        for name in shared:  # the lowest pk wins, known only where all were loaded
            key = (model, name, row.provider, getattr(row, name))
            if key[3] and key in self.refs:
                known = self.refs[key]
                self.refs[key] = row.pk if known is None else min(known, row.pk)

    def lookup(self, model, name: str, provider: str, value):
        """(True, row or None) when the batch knows the answer, else (False, None)."""
        key = (model, name, provider, value)
        if key not in self.refs:
            return False, None
        pk = self.refs[key]
        return True, (None if pk is None else self.rows[(model, pk)])

    def forget(self) -> None:
        self.rows.clear()
        self.refs.clear()


_deferred: contextvars.ContextVar[_Deferred | None] = contextvars.ContextVar(
    "ledger_deferred", default=None
)


@contextmanager
def _savepoint() -> Iterator[None]:
    """``transaction.atomic()``; in a batch, its deferred rows go if it rolls back."""
    deferred = _deferred.get()
    history, events = (len(deferred.history), len(deferred.events)) if deferred else (0, 0)
    try:
        with transaction.atomic():
            yield
    except BaseException:
        if deferred is not None:
            del deferred.history[history:]
            del deferred.events[events:]
            deferred.forget()  # its instances may hold what was rolled back
        raise


def _flush(deferred: _Deferred) -> None:
    """Write what a batch deferred: its history rows in one statement, and its events'
    statuses in one statement per status."""
    StatusChange.objects.bulk_create(deferred.history)
    outcomes: dict[tuple[str, str], list[int]] = {}
    for event in deferred.events:
        outcomes.setdefault((event.status, event.error), []).append(event.pk)
    now = timezone.now()
    for (status, error), pks in outcomes.items():
        ProviderEvent.objects.filter(pk__in=pks).update(
            status=status, error=error, processed_at=now, attempts=F("attempts") + 1
        )
    deferred.history.clear()
    deferred.events.clear()


# --- webhooks -------------------------------------------------------------------------------


def receive_webhook(
    provider_key: str, body: bytes, headers: Mapping[str, str], *, apply_now: bool = False
) -> ProviderEvent:
    """Verify, store once, wake the applier. Raises WebhookError (with an HTTP status) when
    refused.

    A provider that cannot verify its webhooks (its secret is not configured) takes none:
    UnknownProvider, as for a provider that is not enabled. Verification works on the raw
    body; an exact replay of a delivery already received is refused (409). The transmission
    and the event are written in one transaction (one commit); an event already stored
    (a provider's retry) is answered from the unique index, and one whose application failed
    is put back in the queue. The event is applied by :func:`apply_received_events` in the
    worker (with the immediate task backend, at once, before this returns); ``apply_now``
    applies this one event here and now (the sandbox's checkout page: the reader's choice
    and their return in one).
    """
    provider = get_provider(provider_key)
    if provider.missing_webhook_settings():
        raise UnknownProvider(provider_key)
    incoming = provider.verify_webhook(body, headers)
    with transaction.atomic():
        if incoming.delivery_id and not first_delivery(
            f"payment:{provider.key}", incoming.delivery_id
        ):
            raise WebhookError("This delivery was received before: refused as a replay.", 409)
        event = _insert_event(
            provider.key, incoming.event_id, incoming.event_type, incoming.payload
        ) or _stored(provider.key, incoming.event_id)
        if event.status == EventStatus.FAILED:  # the provider's retry: try it again
            ProviderEvent.objects.filter(pk=event.pk, status=EventStatus.FAILED).update(
                status=EventStatus.RECEIVED
            )
            event.status = EventStatus.RECEIVED
    if event.status != EventStatus.RECEIVED:
        return event
    if apply_now or wake_applier():  # the latter: applied already (immediate task backend)
        stored = ProviderEvent.objects.get(provider=event.provider, event_id=event.event_id)
        return process_event(stored.pk) if apply_now else stored
    return event


# --- applying stored events: the worker's side ----------------------------------------------

WAKE_KEY = "contributions:ledger:wake"
LOCK_KEY = "contributions:ledger:applier"


def wake_applier() -> bool:
    """Make sure a worker task will apply the events stored so far.

    One task per wake-up, not one per event: the first delivery after a run has started sets
    the flag and enqueues the next run; the ones after it find the flag set. (A run deletes the
    flag before it looks for events, so nothing stored after that is missed; a lost task is
    covered by the flag's expiry and by :func:`schedule_apply`'s sweep.) Returns True when the
    task already ran (the immediate backend, as in tests and ``MASTHEAD_TASKS=immediate``).
    """
    store = state_store()
    if store.get(WAKE_KEY) or not store.add(
        WAKE_KEY, 1, timeout=settings.MASTHEAD_WEBHOOK_WAKE_SECONDS
    ):  # a read first: while a run is due, deliveries write nothing more
        return False
    from .tasks import enqueue_apply_events

    return enqueue_apply_events().is_finished


def apply_received_events(*, batch: int | None = None, max_seconds: float | None = None) -> int:
    """Apply stored events in the order they arrived, in batches; returns how many applied.

    One applier at a time (a lock in the state store), so a contribution's events are applied
    in the order they were received, each event in its own savepoint of its batch's
    transaction (a failure is recorded on that event alone). The run goes on until nothing is
    left or ``max_seconds`` pass; then, if events remain, it wakes the next run, so a backlog
    never holds the worker for long.
    """
    batch = batch or settings.MASTHEAD_WEBHOOK_APPLY_BATCH
    max_seconds = max_seconds or settings.MASTHEAD_WEBHOOK_APPLY_SECONDS
    store = state_store()
    store.delete(WAKE_KEY)  # what is stored from now on wakes another run
    deadline = time.monotonic() + max_seconds
    applied = 0
    while True:
        if not store.add(LOCK_KEY, 1, timeout=int(max_seconds) + 120):
            return applied  # another run is at work; it goes on until nothing is left
        try:
            while done := _apply_batch(batch):  # at least one batch a run
                applied += done
                if time.monotonic() >= deadline:
                    break
                # Let the writers that queued during the batch go first (webhook requests,
                # on SQLite): they poll the writer queue every ≤ 1 ms, and without a pause
                # this loop would take the lock back before any of them looked.
                time.sleep(settings.MASTHEAD_WEBHOOK_APPLY_PAUSE_MS / 1000)
        finally:
            store.delete(LOCK_KEY)
        pending = ProviderEvent.objects.filter(status=EventStatus.RECEIVED).exists()
        if not pending:
            return applied
        if time.monotonic() >= deadline:
            store.delete(WAKE_KEY)
            wake_applier()
            return applied
        # A delivery stored while we held the lock found it taken: take it again.


def stale_received_events(older_than: float = 30.0) -> bool:
    """Whether events wait that a run should have applied by now."""
    horizon = timezone.now() - dt.timedelta(seconds=older_than)
    return ProviderEvent.objects.filter(
        status=EventStatus.RECEIVED, received_at__lt=horizon
    ).exists()


def _apply_batch(size: int) -> int:
    """Apply up to ``size`` received events, oldest first, in one transaction — or fewer:
    the transaction ends once it has taken ``MASTHEAD_WEBHOOK_APPLY_TRANSACTION_MS`` (on
    SQLite it holds the one write lock, which the webhook requests wait for); the rest of
    the batch is the next one's."""
    pks = list(
        ProviderEvent.objects.filter(status=EventStatus.RECEIVED)
        .order_by("pk")
        .values_list("pk", flat=True)[:size]
    )
    if not pks:
        return 0
    applied: set[str] = set()
    done = 0
    budget = time.monotonic() + settings.MASTHEAD_WEBHOOK_APPLY_TRANSACTION_MS / 1000
    with _after_commit_in_one_transaction():
        deferred = _Deferred()
        token = _deferred.set(deferred)
        try:
            with transaction.atomic():
                for loaded in _load_in_chunks(pks):  # in order of arrival
                    event = process_event(loaded.pk, retry_waiting=False, locked=loaded)
                    done += 1
                    if event.status == EventStatus.PROCESSED:
                        applied.add(event.provider)
                    if time.monotonic() > budget:
                        break
                _flush(deferred)
        finally:
            _deferred.reset(token)  # before the side effects run: they write for themselves
    since = timezone.now() - dt.timedelta(hours=1)
    for provider in sorted(applied):
        retry_waiting_events(provider, since=since)
    return done


def _load_in_chunks(pks: list[int], chunk: int = 8) -> Iterator[ProviderEvent]:
    """The batch's events, locked, a few per query (a batch cut short by its time limit has
    not loaded and decrypted the payloads it leaves for the next one), each chunk with the
    plans and payments its events name (``_prefetch``)."""
    for start in range(0, len(pks), chunk):
        events = list(
            ProviderEvent.objects.select_for_update()
            .filter(pk__in=pks[start : start + chunk])
            .order_by("pk")
        )
        _prefetch(events)
        yield from events


def _prefetch(events: list[ProviderEvent]) -> None:
    """Translate a chunk of events (kept on each as ``translated``) and load, locked, the
    plans and the payments they name: one query for the plans and one for the payments per
    provider. Each reference looked for is recorded, found or not, in the batch's index."""
    deferred = _deferred.get()
    if deferred is None:
        return
    wanted: dict[str, tuple[set, set, set]] = {}
    for event in events:
        if event.status not in (EventStatus.RECEIVED, EventStatus.FAILED, EventStatus.WAITING):
            continue
        try:
            event.translated = get_provider(event.provider).translate(
                event.event_type, event.payload
            )
        except Exception:  # noqa: BLE001 - process_event translates again and records it
            event.translated = None
        if event.translated is None:
            continue
        plan_ids, plan_refs, payment_refs = wanted.setdefault(event.provider, (set(), set(), set()))
        for found in event.translated:
            if isinstance(found.plan_id, int):
                plan_ids.add(found.plan_id)
            if found.subscription_ref:
                plan_refs.add(found.subscription_ref)
            if found.payment_ref:
                payment_refs.add(found.payment_ref)
    for provider, (plan_ids, plan_refs, payment_refs) in wanted.items():
        if plan_ids or plan_refs:
            plans = RecurringPlan.objects.select_for_update().filter(provider=provider).filter(
                Q(pk__in=plan_ids) | Q(provider_ref__in=plan_refs)
            )
            for plan in plans.order_by("pk"):
                deferred.keep(plan)
            for pk in plan_ids:
                deferred.refs.setdefault((RecurringPlan, "pk", provider, pk), None)
            for ref in plan_refs:
                deferred.refs.setdefault((RecurringPlan, "provider_ref", provider, ref), None)
        if payment_refs:
            for name in ("payment_ref", "charge_ref"):
                for ref in payment_refs:
                    deferred.refs.setdefault((Contribution, name, provider, ref), None)
            payments = Contribution.objects.select_for_update().filter(provider=provider).filter(
                Q(payment_ref__in=payment_refs) | Q(charge_ref__in=payment_refs)
            )
            for payment in payments.order_by("pk"):
                deferred.keep(payment)


_batched: contextvars.ContextVar[list | None] = contextvars.ContextVar("ledger_batch", default=None)


@contextmanager
def _after_commit_in_one_transaction() -> Iterator[None]:
    """Run the side effects a batch queued for after its commit (tasks to enqueue, signals)
    together in one transaction of their own, each in a savepoint: one commit for a batch's
    receipts rather than one per receipt. A side effect that fails is logged, and the others
    still run (as ``on_commit(robust=True)`` would). Inside a caller's transaction the batch
    commits only with it, so its side effects stay ordinary ``on_commit`` callbacks."""
    if transaction.get_connection().in_atomic_block:
        yield
        return
    pending: list = []
    token = _batched.set(pending)
    try:
        yield
    finally:
        _batched.reset(token)
    if not pending:
        return
    with transaction.atomic():
        for func in pending:
            try:
                with transaction.atomic():
                    func()
            except Exception:
                log.exception("a side effect of applying provider events failed")


def _on_commit(func) -> None:
    """``transaction.on_commit``, deferred to the end of a batch while one is applied."""
    pending = _batched.get()
    transaction.on_commit(func if pending is None else (lambda: pending.append(func)))


def prune_webhook_deliveries(now: dt.datetime | None = None) -> int:
    """Forget deliveries older than twice the tolerance: their own age now refuses them."""
    return forget_deliveries("payment:", 2 * settings.MASTHEAD_WEBHOOK_TOLERANCE, now)


def store_event(provider: str, event_id: str, event_type: str, payload: dict) -> ProviderEvent:
    """The event, stored once per provider and event id (a duplicate returns the stored one)."""
    event = _insert_event(provider, event_id, event_type, payload)
    if event is None or event.pk is None:
        event = ProviderEvent.objects.get(provider=provider, event_id=event_id)
    return event


def _stored(provider: str, event_id: str) -> ProviderEvent:
    """A duplicate's stored event: its pk and status (the answer), in one plain query —
    half a duplicate's cost went to compiling the ORM's; the other fields load if read."""
    meta = ProviderEvent._meta
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    names = ["id", "provider", "event_id", "status"]
    columns = ", ".join(quote(meta.get_field(name).column) for name in names)
    where = f"{quote(meta.get_field('provider').column)} = %s AND {quote(meta.get_field('event_id').column)} = %s"  # noqa: E501
    with connection.cursor() as cursor:
        # The identifiers are the model's own, quoted; the values are parameters.
        cursor.execute(f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {where}", [provider, event_id])  # noqa: S608, E501
        row = cursor.fetchone()
    if row is None:  # cannot happen inside the transaction that found the conflict
        return ProviderEvent.objects.get(provider=provider, event_id=event_id)
    return ProviderEvent.from_db(connection.alias, names, row)


def _insert_event(provider: str, event_id: str, event_type: str, payload: dict
                  ) -> ProviderEvent | None:  # fmt: skip
    """Insert the event unless it is stored already: the new event (status "received",
    without its pk: the webhook's hot path needs none), or None for a duplicate."""
    event = ProviderEvent(provider=provider, event_id=event_id, event_type=event_type,
                          payload=payload)  # fmt: skip
    return event if insert_once(event, ("provider", "event_id")) else None


def process_event(
    event_pk: int, *, retry_waiting: bool = True, locked: ProviderEvent | None = None
) -> ProviderEvent:
    """Apply a stored event once; a failure is recorded on the event and retried later.

    An event about a payment we cannot match yet (a refund delivered before the payment it
    refunds) waits, and is tried again each time another event of that provider is applied.
    ``locked``: the event, already loaded and locked by the caller's transaction (a batch).
    """
    deferred = _deferred.get() if locked is not None else None
    try:
        with _savepoint():
            event = locked or ProviderEvent.objects.select_for_update().get(pk=event_pk)
            if event.status in (EventStatus.PROCESSED, EventStatus.IGNORED):
                return event
            translated = getattr(event, "translated", None)  # _prefetch translated it
            if translated is None:
                translated = get_provider(event.provider).translate(
                    event.event_type, event.payload
                )
            with _because(Cause(ChangeCause.PROVIDER, event_pk=event.pk)):
                applied = sum(apply_event(event.provider, e) for e in translated)
            event.error = ""
            if applied:
                event.status = EventStatus.PROCESSED
            elif translated and not all(_not_ours(event.provider, e) for e in translated):
                event.status = EventStatus.WAITING
            else:
                event.status = EventStatus.IGNORED
                if translated:
                    event.error = NOT_OURS
            event.processed_at = timezone.now()
            event.attempts += 1
            if deferred is not None:  # saved with the rest of its batch (``_flush``)
                deferred.events.append(event)
            else:
                event.save(update_fields=["status", "processed_at", "attempts", "error"])
    except Exception as exc:
        log.exception("processing provider event %s failed", event_pk)
        ProviderEvent.objects.filter(pk=event_pk).update(
            status=EventStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            attempts=F("attempts") + 1,
        )
        return ProviderEvent.objects.get(pk=event_pk)
    if retry_waiting and event.status == EventStatus.PROCESSED:
        # Only recent ones here (cheap); the reconciliation job retries older ones.
        retry_waiting_events(event.provider, since=timezone.now() - dt.timedelta(hours=1))
        event.refresh_from_db()
    return event


NOT_OURS = "Not ours: no contribution or plan here carries its references."


def _not_ours(provider: str, event: PaymentEvent) -> bool:
    """Whether an event names a checkout or plan that Masthead never made.

    Everything we start carries our ids (contribution or plan id in the metadata or custom
    id) and we know its checkout and subscription references from the start, so an event
    whose own references match none of ours is another integration's: it is recorded as
    ignored at once rather than waiting. Refunds and disputes name only a payment, which may
    simply not have reached us yet: those wait (see :func:`retry_waiting_events`).
    """
    if event.kind in (EventKind.REFUNDED, EventKind.DISPUTE):
        return False
    if not (event.contribution_id or event.plan_id or event.checkout_ref or event.subscription_ref):
        return False
    contributions = Contribution.objects.filter(provider=provider)
    plans = RecurringPlan.objects.filter(provider=provider)
    return not (
        (event.contribution_id and contributions.filter(pk=event.contribution_id).exists())
        or (event.plan_id and plans.filter(pk=event.plan_id).exists())
        or (event.checkout_ref and contributions.filter(checkout_ref=event.checkout_ref).exists())
        or (event.subscription_ref and plans.filter(provider_ref=event.subscription_ref).exists())
    )


def retry_waiting_events(
    provider: str, *, since: dt.datetime | None = None, limit: int = 200
) -> int:
    """Try again the events that arrived before what they refer to; returns how many applied."""
    applied = 0
    progress = True
    while progress:  # one applied event may unblock another
        progress = False
        waiting = ProviderEvent.objects.filter(provider=provider, status=EventStatus.WAITING)
        if since is not None:
            waiting = waiting.filter(received_at__gte=since)
        for pk in waiting.order_by("received_at").values_list("pk", flat=True)[:limit]:
            if process_event(pk, retry_waiting=False).status == EventStatus.PROCESSED:
                applied += 1
                progress = True
    return applied


def record_findings(
    provider: str,
    event_id: str,
    events: list[PaymentEvent],
    *,
    cause: str,
    actor: Any = None,
    note: str = "",
) -> ProviderEvent:
    """Apply what we learned other than by webhook (return, reconcile, donor or staff action).

    Stored like a webhook (with a serialised copy of the neutral events) for the audit trail,
    once per ``event_id``; the status changes it makes name it, ``cause`` and ``actor``.
    """
    payload = {"neutral": [_event_to_json(e) for e in events]}
    kind = ",".join(sorted({e.kind for e in events})) or "nothing"
    event = store_event(provider, event_id, f"local:{kind}"[:100], payload)
    if event.status in (EventStatus.PROCESSED, EventStatus.IGNORED):
        return event
    with transaction.atomic(), _because(Cause(cause, event.pk, actor, note)):
        applied = sum(apply_event(provider, e) for e in events)
        ProviderEvent.objects.filter(pk=event.pk).update(
            status=EventStatus.PROCESSED if applied else EventStatus.IGNORED,
            processed_at=timezone.now(),
            attempts=event.attempts + 1,
        )
    event.refresh_from_db()
    return event


def _event_to_json(event: PaymentEvent) -> dict[str, Any]:
    data = {k: v for k, v in event.__dict__.items() if v not in (None, "", 0, False)}
    data["occurred_at"] = event.occurred_at.isoformat()
    data.pop("email", None)  # personal data is not copied into the audit trail
    data.pop("name", None)
    return data


# --- applying provider-neutral events -------------------------------------------------------


def apply_event(provider: str, event: PaymentEvent) -> int:
    """Merge one event's facts into our records; returns 1 if it concerned us, else 0."""
    handler = _HANDLERS.get(event.kind)
    if handler is None:
        return 0
    try:
        with _savepoint():
            return 1 if handler(provider, event) else 0
    except _Raced:  # another transaction recorded the same payment first: merge into it
        with _savepoint():
            return 1 if handler(provider, event) else 0


class _Raced(Exception):
    """A new renewal's row was inserted by another transaction since we looked for it."""


def _locked(qs):
    """The first row, locked; in a batch, the batch's instance of it."""
    row = qs.select_for_update().first()
    deferred = _deferred.get()
    return row if deferred is None else deferred.keep(row)


def _known(model, name: str, provider: str, value) -> tuple[bool, Any]:
    """What the batch knows of the row with this reference: (True, row or None), or
    (False, None) outside a batch or for a reference it did not load."""
    deferred = _deferred.get()
    return (False, None) if deferred is None else deferred.lookup(model, name, provider, value)


def _find_plan(provider: str, event: PaymentEvent) -> RecurringPlan | None:
    qs = RecurringPlan.objects.filter(provider=provider)
    if event.plan_id:
        known, plan = _known(RecurringPlan, "pk", provider, event.plan_id)
        if not known:
            plan = _locked(qs.filter(pk=event.plan_id))
        if plan is not None:
            return plan
    if event.subscription_ref:
        known, plan = _known(RecurringPlan, "provider_ref", provider, event.subscription_ref)
        return plan if known else _locked(qs.filter(provider_ref=event.subscription_ref))
    return None


def _find_contribution(
    provider: str, event: PaymentEvent, plan: RecurringPlan | None
) -> Contribution | None:
    qs = Contribution.objects.filter(provider=provider)
    if event.contribution_id:
        found = _locked(qs.filter(pk=event.contribution_id))
        if found is not None:
            return found
    if event.payment_ref:
        # The payment itself; or, as a refund or dispute names the charge, a renewal keyed
        # by its invoice that records the charge it was paid by (PaymentEvent.charge_ref).
        # One query (none in a batch); the payment's own match wins.
        paid, by_payment = _known(Contribution, "payment_ref", provider, event.payment_ref)
        charged, by_charge = _known(Contribution, "charge_ref", provider, event.payment_ref)
        if paid and charged:
            matches = [row for row in (by_payment, by_charge) if row is not None]
        else:
            matches = list(
                qs.filter(Q(payment_ref=event.payment_ref) | Q(charge_ref=event.payment_ref))
                .select_for_update()
                .order_by("pk")[:10]
            )
            if (deferred := _deferred.get()) is not None:
                matches = [deferred.keep(row) for row in matches]
        for found in matches:
            if found.payment_ref == event.payment_ref:
                return found
        if matches:
            return matches[0]
    if event.checkout_ref:
        found = _locked(qs.filter(checkout_ref=event.checkout_ref))
        if found is not None:
            return found
    if plan is not None and event.first_payment:
        first = _locked(plan.payments.filter(is_renewal=False).order_by("pk"))
        if first is not None and first.payment_ref and event.payment_ref:
            # The first payment is already matched to another payment: this one is a renewal.
            return first if first.payment_ref == event.payment_ref else None
        return first
    return None


def _renewal(provider: str, event: PaymentEvent, plan: RecurringPlan) -> Contribution | None:
    """The renewal payment this event is about, the first time we hear of it: not saved yet.

    :func:`_save_contribution` inserts it with its facts in one statement, once per payment:
    the unique index decides; if another transaction inserted it first, the handler runs
    again (``_Raced``) and merges into that row."""
    if not event.payment_ref:
        return None
    amount = event.amount or plan.amount
    renewal = Contribution(
        provider=provider,
        payment_ref=event.payment_ref,
        plan=plan,
        donor_id=plan.donor_id,
        frequency=plan.frequency,
        amount=amount,
        currency=(event.currency or plan.currency).upper(),
        is_renewal=True,
        created_at=event.occurred_at,
        status="",  # its history starts with the first status it is given
    )
    return renewal


def _donor(email: str, name: str) -> Donor | None:
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        # Whatever a provider sends, it never reaches an email header unless it is an address.
        return None
    index = email_index(email)
    donor = Donor.objects.filter(email_index=index).first()
    if donor is None:
        try:
            with transaction.atomic():
                donor = Donor(name=(name or "").strip()[:200])
                donor.set_email(email)
                donor.save()
        except IntegrityError:
            donor = Donor.objects.get(email_index=index)
    elif name and not donor.name:
        donor.name = name.strip()[:200]
        donor.save(update_fields=["name"])
    return donor


def _earliest(current: dt.datetime | None, new: dt.datetime) -> dt.datetime:
    return new if current is None or new < current else current


def _latest(current: dt.datetime | None, new: dt.datetime) -> dt.datetime:
    return new if current is None or new > current else current


def _link_donor(donor: Donor | None, contribution: Contribution | None, plan: RecurringPlan | None):
    if donor is None:
        return
    if plan is not None and plan.donor_id is None:
        # The plan's donor is known now: its payments so far are theirs, and those already
        # paid get their receipts. (Payments made after this carry the plan's donor.)
        plan.donor = donor
        orphans = list(plan.payments.filter(donor__isnull=True).values_list("pk", flat=True))
        if orphans:
            Contribution.objects.filter(pk__in=orphans).update(donor=donor)
            if (deferred := _deferred.get()) is not None:
                deferred.forget()  # a batch's instances of them are out of date now
            for paid in Contribution.objects.filter(
                pk__in=orphans, paid_at__isnull=False, receipt_sent_at__isnull=True
            ):
                _queue_receipt(paid)
    if contribution is not None and contribution.donor_id is None:
        contribution.donor = donor


def _on_checkout_completed(provider: str, event: PaymentEvent) -> bool:
    plan = _find_plan(provider, event)
    contribution = _find_contribution(provider, event, plan)
    if plan is None and contribution is not None and contribution.plan_id:
        plan = _locked(RecurringPlan.objects.filter(pk=contribution.plan_id))
    if contribution is None and plan is None:
        return False
    donor = _donor(event.email, event.name)
    if plan is not None:
        if event.subscription_ref and not plan.provider_ref:
            plan.provider_ref = event.subscription_ref
        if event.customer_ref and not plan.provider_customer:
            plan.provider_customer = event.customer_ref
    _link_donor(donor, contribution, plan)
    if contribution is not None:
        if event.checkout_ref and not contribution.checkout_ref:
            contribution.checkout_ref = event.checkout_ref
        _save_contribution(contribution)
    if plan is not None:
        _save_plan(plan)
    return True


def contribution_record_payment(provider: str, event: PaymentEvent) -> bool:
    """A payment succeeded: a one-off gift, a plan's first payment or a renewal."""
    plan = _find_plan(provider, event)
    contribution = _find_contribution(provider, event, plan)
    if contribution is None and plan is not None:
        contribution = _renewal(provider, event, plan)
    if contribution is None:
        log.warning("payment %s at %s matches no contribution", event.payment_ref, provider)
        return False
    if plan is None and contribution.plan_id:
        plan = _locked(RecurringPlan.objects.filter(pk=contribution.plan_id))
    if event.payment_ref and not contribution.payment_ref:
        clash = Contribution.objects.filter(provider=provider, payment_ref=event.payment_ref)
        if not clash.exclude(pk=contribution.pk).exists():
            contribution.payment_ref = event.payment_ref
    if event.charge_ref and not contribution.charge_ref:
        contribution.charge_ref = event.charge_ref[:100]
    contribution.paid_at = _earliest(contribution.paid_at, event.occurred_at)
    donor = _donor(event.email, event.name)
    if donor is None and plan is not None and plan.donor_id:
        if contribution.donor_id is None:
            contribution.donor_id = plan.donor_id  # the plan's donor, without loading it
    else:
        _link_donor(donor, contribution, plan)
    _save_contribution(contribution)
    if plan is not None:
        if event.subscription_ref and not plan.provider_ref:
            plan.provider_ref = event.subscription_ref
        plan.last_paid_at = _latest(plan.last_paid_at, event.occurred_at)
        plan.activated_at = _earliest(plan.activated_at, event.occurred_at)
        _save_plan(plan)
    return True


def _on_payment_failed(provider: str, event: PaymentEvent) -> bool:
    plan = _find_plan(provider, event)
    contribution = _find_contribution(provider, event, plan)
    if contribution is None and plan is not None:
        contribution = _renewal(provider, event, plan)
    if contribution is None:
        return False
    if plan is None and contribution.plan_id:
        plan = _locked(RecurringPlan.objects.filter(pk=contribution.plan_id))
    contribution.failed_at = _latest(contribution.failed_at, event.occurred_at)
    contribution.attempts = max(contribution.attempts, event.attempt or 1)
    if event.reason:
        contribution.failure_reason = event.reason[:200]
    _save_contribution(contribution)
    if plan is not None and contribution.is_renewal:
        plan.last_failed_at = _latest(plan.last_failed_at, event.occurred_at)
        _save_plan(plan)
    return True


def _on_checkout_abandoned(provider: str, event: PaymentEvent) -> bool:
    plan = _find_plan(provider, event)
    contribution = _find_contribution(provider, event, plan)
    if contribution is None or contribution.is_renewal:
        return False
    contribution.abandoned_at = _earliest(contribution.abandoned_at, event.occurred_at)
    _save_contribution(contribution)
    if contribution.plan_id:
        plan = _locked(RecurringPlan.objects.filter(pk=contribution.plan_id))
        plan.abandoned_at = _earliest(plan.abandoned_at, event.occurred_at)
        _save_plan(plan)
    return True


def _on_refunded(provider: str, event: PaymentEvent) -> bool:
    contribution = _find_contribution(provider, event, None)
    if contribution is None:
        return False
    contribution.refunded_amount = max(contribution.refunded_amount, event.refunded_amount)
    _save_contribution(contribution)
    return True


def _on_dispute(provider: str, event: PaymentEvent) -> bool:
    contribution = _find_contribution(provider, event, None)
    if contribution is None or event.dispute_status not in DISPUTE_RANK:
        return False
    if DISPUTE_RANK[event.dispute_status] > DISPUTE_RANK[contribution.dispute_status]:
        contribution.dispute_status = event.dispute_status
    _save_contribution(contribution)
    return True


def _on_plan_activated(provider: str, event: PaymentEvent) -> bool:
    plan = _find_plan(provider, event)
    if plan is None:
        return False
    if event.subscription_ref and not plan.provider_ref:
        plan.provider_ref = event.subscription_ref
    if event.customer_ref and not plan.provider_customer:
        plan.provider_customer = event.customer_ref
    plan.activated_at = _earliest(plan.activated_at, event.occurred_at)
    _link_donor(_donor(event.email, event.name), None, plan)
    _save_plan(plan)
    return True


def _on_plan_cancelled(provider: str, event: PaymentEvent) -> bool:
    plan = _find_plan(provider, event)
    if plan is None:
        return False
    plan.cancelled_at = _earliest(plan.cancelled_at, event.occurred_at)
    _save_plan(plan)
    return True


def _on_plan_terms_changed(provider: str, event: PaymentEvent) -> bool:
    plan = _find_plan(provider, event)
    if plan is None:
        return False
    before = (plan.amount, plan.currency, plan.frequency)
    if plan.terms_changed_at is None or event.occurred_at > plan.terms_changed_at:
        if event.amount:
            plan.amount = event.amount
        if event.currency:
            plan.currency = event.currency.upper()
        if event.frequency in RECURRING:
            plan.frequency = event.frequency
        plan.terms_changed_at = event.occurred_at
    _save_plan(plan)
    if (plan.amount, plan.currency, plan.frequency) != before and plan.is_live:
        # The donor is told the new terms once per change: a replay, a retry or the
        # provider's echo of our own change finds the terms already set, and sends nothing.
        from .tasks import send_plan_changed

        pk, amount, frequency = plan.pk, plan.amount, plan.frequency
        _on_commit(lambda: send_plan_changed.enqueue(pk, amount, frequency))
    return True


_HANDLERS = {
    EventKind.CHECKOUT_COMPLETED: _on_checkout_completed,
    EventKind.CHECKOUT_ABANDONED: _on_checkout_abandoned,
    EventKind.PAYMENT_SUCCEEDED: contribution_record_payment,
    EventKind.PAYMENT_FAILED: _on_payment_failed,
    EventKind.REFUNDED: _on_refunded,
    EventKind.DISPUTE: _on_dispute,
    EventKind.PLAN_ACTIVATED: _on_plan_activated,
    EventKind.PLAN_CANCELLED: _on_plan_cancelled,
    EventKind.PLAN_TERMS_CHANGED: _on_plan_terms_changed,
}


# --- saving with derived status and side effects --------------------------------------------


def _save_contribution(contribution: Contribution) -> None:
    before = contribution.status
    contribution.status = contribution.derive_status()
    announce = contribution.paid_at is not None and contribution.announced_at is None
    if announce:
        contribution.announced_at = timezone.now()
    if contribution.pk is None:  # a new renewal (_renewal)
        if not insert_once_returning_pk(contribution, ("provider", "payment_ref")):
            raise _Raced
    else:
        contribution.save()
    if (deferred := _deferred.get()) is not None:
        deferred.keep(contribution)  # a new one, or references it carries now
    _history(contribution=contribution, before=before, after=contribution.status)
    if announce:
        source = "" if contribution.is_renewal else contribution.source
        saved = copy.copy(contribution)  # as saved now: listeners get it after the commit

        def send_signal() -> None:
            contribution_succeeded.send(sender=Contribution, contribution=saved, source=source)

        _on_commit(send_signal)
        _queue_receipt(contribution)


def _queue_receipt(contribution: Contribution) -> None:
    if contribution.donor_id is None or contribution.receipt_sent_at is not None:
        return
    from .tasks import send_receipt

    pk = contribution.pk
    _on_commit(lambda: send_receipt.enqueue(pk))


def _save_plan(plan: RecurringPlan) -> None:
    before = plan.status
    plan.status = plan.derive_status()
    if plan.status == PlanStatus.PAST_DUE:
        latest = (
            plan.payments.filter(paid_at__isnull=True, failed_at__isnull=False, is_renewal=True)
            .order_by("-failed_at")
            .first()
        )
        plan.failed_attempts = latest.attempts if latest else 1
    else:
        plan.failed_attempts = 0
    dunning = (
        plan.status == PlanStatus.PAST_DUE
        and plan.last_failed_at is not None
        and (
            plan.dunning_notified_at is None
            or plan.last_failed_at > plan.dunning_notified_at
            or plan.failed_attempts > plan.dunning_notified_attempts
        )
    )
    give_up = (
        plan.status == PlanStatus.PAST_DUE
        and plan.failed_attempts >= settings.MASTHEAD_DUNNING_MAX_TRIES
    )
    if give_up:
        # The configured number of tries failed: stop asking, here and at the provider.
        plan.cancelled_at = timezone.now()
        plan.status = plan.derive_status()
        dunning = False
    # The donor is told a plan ended after failed payments whoever ended it (our last try,
    # or the provider's own), once: the task claims ``cancellation_notified_at``.
    ended_unpaid = (
        plan.status == PlanStatus.CANCELLED
        and not give_up
        and plan.cancellation_notified_at is None
        and plan.last_failed_at is not None
        and (plan.last_paid_at is None or plan.last_failed_at > plan.last_paid_at)
    )
    plan.save()
    if (deferred := _deferred.get()) is not None:
        deferred.keep(plan)
    note = f"cancelled here after {plan.failed_attempts} failed tries" if give_up else ""
    _history(plan=plan, before=before, after=plan.status, note=note)
    from . import tasks

    pk = plan.pk
    if dunning:
        # The task sends it only if this failure is still the latest news when it runs.
        _on_commit(lambda: tasks.send_dunning.enqueue(pk))
    if give_up:
        _on_commit(lambda: tasks.cancel_plan_at_provider.enqueue(pk, "dunning"))
    if ended_unpaid:
        _on_commit(lambda: tasks.send_cancellation.enqueue(pk, True))




# --- changes made here rather than reported by a provider -----------------------------------


def checkout_refused(contribution: Contribution, reason: str) -> None:
    """The provider would not open a checkout: the contribution failed, its plan is abandoned."""
    now = timezone.now()
    with transaction.atomic(), _because(Cause(ChangeCause.CHECKOUT, note=reason[:200])):
        contribution = _locked(Contribution.objects.filter(pk=contribution.pk))
        contribution.failed_at = _earliest(contribution.failed_at, now)
        contribution.failure_reason = reason[:200]
        _save_contribution(contribution)
        if contribution.plan_id:
            plan = _locked(RecurringPlan.objects.filter(pk=contribution.plan_id))
            plan.abandoned_at = _earliest(plan.abandoned_at, now)
            _save_plan(plan)


def record_plan_cancelled(
    plan: RecurringPlan,
    events: list[PaymentEvent],
    *,
    cause: str,
    actor: Any = None,
    notify: bool = True,
) -> RecurringPlan:
    """Record a cancellation we asked the provider for (``events``: what it answered).

    The donor who cancels (or whose plan staff cancel) is told so, not that their payments
    failed: their notice is claimed first, in the same transaction, so the "ended after failed
    payments" notice cannot also go (one cancellation notice per plan). After the last failed
    try (``cause`` dunning) the notice says the payments failed; on erasure there is no one
    to tell (``notify=False``).
    """
    if not any(e.kind == EventKind.PLAN_CANCELLED for e in events):
        events = [
            *events,
            PaymentEvent(
                kind=EventKind.PLAN_CANCELLED, occurred_at=timezone.now(), plan_id=plan.pk
            ),
        ]
    from . import tasks

    with transaction.atomic():
        claimed = (
            notify and cause != ChangeCause.DUNNING and claim_cancellation_notice(plan.pk)
        )
        record_findings(
            plan.provider, f"local:cancel:{plan.pk}", events, cause=cause, actor=actor
        )
        if claimed:
            pk = plan.pk
            _on_commit(lambda: tasks.send_cancellation.enqueue(pk, False, True))
    plan.refresh_from_db()
    return plan


def record_refund(
    contribution: Contribution, refunded_total: int, *, actor: Any, note: str = ""
) -> Contribution:
    """Staff record a refund made outside the provider's webhooks (e.g. by bank transfer).

    ``refunded_total`` is the total refunded so far, in minor units (refunds only grow, as
    providers report them). Raises ValueError when it is out of range.
    """
    if not 0 < refunded_total <= contribution.amount or not contribution.paid_at:
        raise ValueError("A refund is of a paid contribution, between 1 and its amount.")
    event = PaymentEvent(
        kind=EventKind.REFUNDED,
        occurred_at=timezone.now(),
        contribution_id=contribution.pk,
        refunded_amount=refunded_total,
    )
    record_findings(
        contribution.provider,
        f"local:refund:{contribution.pk}:{refunded_total}",
        [event],
        cause=ChangeCause.STAFF,
        actor=actor,
        note=note,
    )
    contribution.refresh_from_db()
    return contribution


def mark_checked(record: Contribution | RecurringPlan, when: dt.datetime) -> None:
    """Reconciliation asked the provider about this contribution or plan at ``when``."""
    type(record).objects.filter(pk=record.pk).update(last_checked_at=when)


def give_up_waiting_events(*, older_than: dt.datetime) -> int:
    """Events that never found what they refer to (another integration on the account)."""
    return ProviderEvent.objects.filter(
        status=EventStatus.WAITING, received_at__lt=older_than
    ).update(status=EventStatus.IGNORED, error="Nothing here matched it within 3 days.")


# --- claims made by the email tasks ---------------------------------------------------------


def claim_cancellation_notice(plan_pk: int) -> bool:
    """Claim the one notice that a plan ended; False if it was claimed before."""
    return bool(
        RecurringPlan.objects.filter(pk=plan_pk, cancellation_notified_at__isnull=True).update(
            cancellation_notified_at=timezone.now()
        )
    )


def claim_dunning_notice(plan_pk: int) -> RecurringPlan | None:
    """Claim the "your payment failed" notice for a plan's latest failed attempt.

    The notice is for the latest news only: the plan must still be past due (no later
    payment, no cancellation) and this attempt (its time and number) not notified yet.
    Returns the plan when the caller should send it.
    """
    with transaction.atomic():
        plan = _locked(RecurringPlan.objects.filter(pk=plan_pk))
        if plan is None or plan.status != PlanStatus.PAST_DUE or plan.last_failed_at is None:
            return None
        if plan.dunning_notified_at is not None and (
            plan.last_failed_at <= plan.dunning_notified_at
            and plan.failed_attempts <= plan.dunning_notified_attempts
        ):
            return None
        plan.dunning_notified_at = plan.last_failed_at
        plan.dunning_notified_attempts = plan.failed_attempts
        plan.save(update_fields=["dunning_notified_at", "dunning_notified_attempts"])
    return plan


def claim_receipt(contribution_pk: int) -> Contribution | None:
    """Claim the one receipt of a paid contribution (a conditional update: one winner).

    Returns the contribution (with its donor and plan) when the caller should send it; not
    for a donor erased since.
    """
    claimed = Contribution.objects.filter(
        pk=contribution_pk,
        receipt_sent_at__isnull=True,
        donor__isnull=False,
        donor__erased_at__isnull=True,
        paid_at__isnull=False,
    ).update(receipt_sent_at=timezone.now())
    if not claimed:
        return None
    return Contribution.objects.select_related("donor", "plan").get(pk=contribution_pk)


def release_receipt(contribution_pk: int) -> None:
    """The claimed receipt could not be sent: let the next attempt claim it."""
    Contribution.objects.filter(pk=contribution_pk).update(receipt_sent_at=None)
