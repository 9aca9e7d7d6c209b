"""The delivery engine: a ledger of recipients worked through by any number of workers.

:func:`delivery_start` renders the edition once and writes one ledger row per confirmed,
unsuppressed subscriber (one ``INSERT … SELECT``), then enqueues the worker task(s).
:func:`delivery_run` (what a task or ``masthead send-edition`` runs) loops:

1. claim a batch of rows atomically — ``UPDATE … WHERE id IN (SELECT … LIMIT n [FOR UPDATE
   SKIP LOCKED]) RETURNING`` — so several workers (PostgreSQL) never take the same row, and
   on SQLite the one-writer lock makes the same statement atomic;
2. personalise and send them over a few reused connections in threads, rate-limited;
3. write the outcomes back in bulk (sent, retry later with backoff, failed).

Crash safety: a row is "claimed" with a time until its outcome is written. If a worker dies
(SIGKILL, power), its claimed rows become claimable again after the lease
(``MASTHEAD_NEWSLETTER_LEASE_SECONDS``), and the scheduler's recovery job re-enqueues a
delivery whose heartbeat stopped. Rows already written "sent" are never sent again; only
messages in flight at the moment of the kill (sent to the server, outcome not yet written)
can go out twice — and those carry the same Message-ID.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Min
from django.utils import timezone

from masthead.core.crypto import decrypt
from masthead.core.pagecache import invalidate_pages

from . import tokens
from .batching import batch_size, batch_style, remove_template, store_template
from .models import (
    Delivery,
    DeliveryRecipient,
    Edition,
    SentMessage,
    Subscriber,
    Subscription,
    message_id_key,
)
from .rendering import MessageTemplate, Recipient, render_edition
from .senders import PERMANENT, SENT, Result, make_sender, uses_smtp

log = logging.getLogger(__name__)
State = DeliveryRecipient.State


class DeliveryError(Exception):
    """An edition cannot be sent in its current state (shown to the editor)."""


# --- Starting ---------------------------------------------------------------------------------


def delivery_start(edition: Edition, *, enqueue: bool = True) -> Delivery:
    """Freeze the edition's content and its recipients into a delivery, and set it going."""
    now = timezone.now()
    with transaction.atomic():
        edition = Edition.objects.select_for_update().select_related("newsletter").get(
            pk=edition.pk
        )
        if edition.status in (Edition.Status.SENDING, Edition.Status.SENT):
            raise DeliveryError(f"“{edition}” has already been sent.")
        if not edition.articles() and not edition.intro:
            raise DeliveryError("The edition is empty: add an introduction or articles.")
        rendered = render_edition(edition)
        delivery = Delivery.objects.create(
            edition=edition,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            heartbeat_at=now,
        )
        ledger = DeliveryRecipient._meta.db_table
        subs = Subscription._meta.db_table
        people = Subscriber._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {ledger} (delivery_id, subscription_id, state, attempts, "  # noqa: S608
                f"claimed_by, error) SELECT %s, s.id, %s, 0, '', '' FROM {subs} s "
                f"JOIN {people} p ON p.id = s.subscriber_id "
                "WHERE s.newsletter_id = %s AND s.status = %s AND p.suppressed_at IS NULL "
                "ORDER BY s.id",
                [delivery.pk, State.PENDING, edition.newsletter_id,
                 Subscription.Status.CONFIRMED],
            )
        delivery.total = DeliveryRecipient.objects.filter(delivery=delivery).count()
        delivery.save(update_fields=["total"])
        edition.status = Edition.Status.SENDING
        edition.scheduled_at = edition.scheduled_at or now
        edition.save(update_fields=["status", "scheduled_at"])
        if enqueue:
            transaction.on_commit(lambda: enqueue_workers(delivery.pk))
    return delivery


def edition_schedule(edition: Edition, when) -> None:
    """Schedule an edition for ``when``; the scheduler starts it then."""
    if edition.status in (Edition.Status.SENDING, Edition.Status.SENT):
        raise DeliveryError(f"“{edition}” has already been sent.")
    if not edition.articles() and not edition.intro:
        raise DeliveryError("The edition is empty: add an introduction or articles.")
    Edition.objects.filter(pk=edition.pk).update(status=Edition.Status.SCHEDULED, scheduled_at=when)


def edition_unschedule(edition: Edition) -> None:
    Edition.objects.filter(pk=edition.pk, status=Edition.Status.SCHEDULED).update(
        status=Edition.Status.DRAFT, scheduled_at=None
    )


def send_test(edition: Edition, addresses: list[str]) -> int:
    """Send the edition as subscribers will get it (subject marked [Test]) to ``addresses``,
    through the configured email backend; the ledger is not involved."""
    from django.core.mail import get_connection

    rendered = render_edition(edition)
    template = MessageTemplate(
        newsletter=edition.newsletter,
        subject=f"[Test] {rendered.subject}",
        html_body=rendered.html,
        text_body=rendered.text,
        message_id_prefix=f"test-{edition.pk}-{int(time.time())}",
    )
    connection = get_connection()
    batch = [
        template.django_message(
            Recipient(0, index, address, "", "test-link-does-not-unsubscribe"), connection
        )
        for index, address in enumerate(addresses)
    ]
    return connection.send_messages(batch) or 0


def enqueue_workers(delivery_id: int, count: int | None = None) -> None:
    from .tasks import deliver

    for _ in range(count or settings.MASTHEAD_NEWSLETTER_PARALLEL):
        deliver.enqueue(delivery_id)


def delivery_pause(delivery: Delivery) -> None:
    """Stop a running send after the messages in flight; :func:`delivery_resume` continues."""
    Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING).update(
        status=Delivery.Status.PAUSED
    )


def delivery_resume(delivery: Delivery) -> None:
    with transaction.atomic():
        changed = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.PAUSED).update(
            status=Delivery.Status.SENDING, heartbeat_at=timezone.now()
        )
        if changed:
            transaction.on_commit(lambda: enqueue_workers(delivery.pk))


# --- Claiming and recording -------------------------------------------------------------------


def _lease() -> timedelta:
    return timedelta(seconds=settings.MASTHEAD_NEWSLETTER_LEASE_SECONDS)


def claim_batch(delivery_id: int, worker: str, size: int) -> list[tuple[int, int]]:
    """Atomically take up to ``size`` sendable rows: [(ledger id, subscription id)].

    Two statements, pending rows then rows whose claim went stale, so that each walks the
    (delivery, state, id) index from its start: one condition with OR made SQLite scan past
    every row already sent, each time."""
    now = timezone.now()
    table = DeliveryRecipient._meta.db_table
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    conditions = [
        ("state = %s AND (next_attempt_at IS NULL OR next_attempt_at <= %s)",
         [State.PENDING, now]),
        ("state = %s AND claimed_at < %s", [State.CLAIMED, now - _lease()]),
    ]
    rows: list[tuple[int, int]] = []
    with transaction.atomic(), connection.cursor() as cursor:
        for condition, params in conditions:
            if len(rows) >= size:
                break
            cursor.execute(
                f"UPDATE {table} SET state = %s, claimed_by = %s, claimed_at = %s, "  # noqa: S608
                "attempts = attempts + 1 "
                f"WHERE id IN (SELECT id FROM {table} WHERE delivery_id = %s AND {condition} "
                f"ORDER BY id LIMIT %s{lock}) RETURNING id, subscription_id",
                [State.CLAIMED, worker, now, delivery_id, *params, size - len(rows)],
            )
            rows.extend(cursor.fetchall())
    rows.sort()
    return rows


def load_recipients(
    rows: list[tuple[int, int]], *, names: bool = True
) -> tuple[list[Recipient], list[int]]:
    """Emails and names for claimed rows; and the rows whose subscription lapsed meanwhile.
    Plain SQL: at thousands of rows a second the ORM's per-parameter work shows."""
    by_subscription = {subscription_id: ledger_id for ledger_id, subscription_id in rows}
    if not by_subscription:
        return [], []
    subs = Subscription._meta.db_table
    people = Subscriber._meta.db_table
    marks = ", ".join(["%s"] * len(by_subscription))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.id, s.status, p.email, p.name, p.suppressed_at FROM {subs} s "  # noqa: S608
            f"JOIN {people} p ON p.id = s.subscriber_id WHERE s.id IN ({marks})",
            list(by_subscription),
        )
        details = cursor.fetchall()
    recipients, skipped = [], []
    seen = set()
    confirmed = Subscription.Status.CONFIRMED
    sign = tokens.make_unsubscribe_token
    for subscription_id, status, email, name, suppressed_at in details:
        seen.add(subscription_id)
        ledger_id = by_subscription[subscription_id]
        if status != confirmed or suppressed_at is not None:
            skipped.append(ledger_id)
            continue
        recipients.append(
            Recipient(
                ledger_id, subscription_id, decrypt(email),
                decrypt(name) if name and names else "",
                sign(subscription_id),
            )
        )
    recipients.sort(key=lambda r: r.ledger_id)
    skipped.extend(ledger for sub, ledger in by_subscription.items() if sub not in seen)
    return recipients, skipped


def _update_ids(sql: str, params: list, ids: list[int]) -> None:
    """Run ``UPDATE … WHERE … AND id IN (ids)`` in slices (bounded statement size)."""
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 900):
            part = ids[start:start + 900]
            cursor.execute(sql.format(ids=", ".join(["%s"] * len(part))), [*params, *part])


def _backoff(attempts: int) -> timedelta:
    base = settings.MASTHEAD_NEWSLETTER_RETRY_SECONDS
    return timedelta(seconds=min(3600, base * 2 ** max(0, attempts - 1)))


def record_results(delivery_id: int, worker: str, results: list[Result]) -> dict[str, int]:
    """Write a batch of outcomes back to the ledger in a few bulk statements."""
    if not results:
        return {}
    now = timezone.now()
    mine = DeliveryRecipient.objects.filter(delivery_id=delivery_id, claimed_by=worker)
    sent = [r.ledger_id for r in results if r.outcome == SENT]
    failed = [r for r in results if r.outcome == PERMANENT]
    retry = [r for r in results if r.outcome not in (SENT, PERMANENT)]
    counts = {"sent": len(sent), "failed": 0, "retry": 0}
    with transaction.atomic():
        table = DeliveryRecipient._meta.db_table
        _update_ids(
            f"UPDATE {table} SET state = %s, sent_at = %s, error = '', claimed_by = '' "  # noqa: S608
            "WHERE delivery_id = %s AND claimed_by = %s AND id IN ({ids})",
            [State.SENT, now, delivery_id, worker],
            sent,
        )
        # The provider's message ids (anymail backends), so that its bounce and complaint
        # events can be matched to what we sent: one bulk insert, none for SMTP sends.
        # Plain SQL: at an ESP batch's thousands of rows a second, bulk_create's per-object
        # model and field work cost more than the sending.
        named = [r for r in results if r.outcome == SENT and r.esp_message_id]
        if named:
            sent_at = connection.ops.adapt_datetimefield_value(now)
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {SentMessage._meta.db_table} (message_id, esp_message_id, "  # noqa: S608
                    "subscription_id, kind, sent_at) VALUES (%s, %s, %s, %s, %s)",
                    [(message_id_key(r.message_id), message_id_key(r.esp_message_id),
                      r.subscription_id, "edition", sent_at) for r in named],
                )
        attempts = dict(
            DeliveryRecipient.objects.filter(id__in=[r.ledger_id for r in retry]).values_list(
                "id", "attempts"
            )
        ) if retry else {}
        by_error: dict[tuple[str, str, timedelta | None], list[int]] = {}
        for result in failed:
            by_error.setdefault((State.FAILED, result.error, None), []).append(result.ledger_id)
        for result in retry:
            tries = attempts.get(result.ledger_id, 1)
            if tries >= settings.MASTHEAD_NEWSLETTER_MAX_ATTEMPTS:
                key = (State.FAILED, f"gave up after {tries} tries: {result.error}"[:300], None)
            else:
                key = (State.PENDING, result.error, _backoff(tries))
            by_error.setdefault(key, []).append(result.ledger_id)
        for (state, error, delay), ids in by_error.items():
            counts["failed" if state == State.FAILED else "retry"] += len(ids)
            mine.filter(id__in=ids).update(
                state=state,
                error=error,
                claimed_by="",
                next_attempt_at=(now + delay) if delay else None,
            )
        bounced = [r.ledger_id for r in failed if r.hard_bounce]
        if bounced:
            from .subscriptions import subscriber_suppress

            reasons = {r.ledger_id: r.error for r in failed}
            rows = DeliveryRecipient.objects.filter(id__in=bounced).select_related(
                "subscription__subscriber"
            )
            for row in rows:
                subscriber_suppress(row.subscription.subscriber, f"rejected: {reasons[row.pk]}")
    return counts


def release_claims(delivery_id: int, worker: str) -> None:
    """Give back rows this worker claimed but did not send (a graceful stop)."""
    DeliveryRecipient.objects.filter(
        delivery_id=delivery_id, claimed_by=worker, state=State.CLAIMED
    ).update(state=State.PENDING, claimed_by="", attempts=F("attempts") - 1)


def delivery_finish_if_done(delivery_id: int) -> bool:
    """Mark the delivery done once no row is left to send; exactly one caller succeeds."""
    open_rows = DeliveryRecipient.objects.filter(
        delivery_id=delivery_id, state__in=[State.PENDING, State.CLAIMED]
    )
    now = timezone.now()
    with transaction.atomic():
        if open_rows.exists():
            return False
        changed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.SENDING).update(
            status=Delivery.Status.DONE, finished_at=now
        )
        if changed:
            delivery = Delivery.objects.get(pk=delivery_id)
            Edition.objects.filter(pk=delivery.edition_id).update(
                status=Edition.Status.SENT, sent_at=now
            )
            # The sign-up blocks' Preview link and the archive now show this edition.
            transaction.on_commit(invalidate_pages)
    return bool(changed)


# --- Progress ---------------------------------------------------------------------------------


def delivery_progress(delivery: Delivery) -> dict:
    """Counts, rate and ETA of a delivery, for the admin and the command line."""
    counts = dict(
        DeliveryRecipient.objects.filter(delivery=delivery)
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    sent = counts.get(State.SENT, 0)
    failed = counts.get(State.FAILED, 0)
    skipped = counts.get(State.SKIPPED, 0)
    remaining = counts.get(State.PENDING, 0) + counts.get(State.CLAIMED, 0)
    end = delivery.finished_at or timezone.now()
    elapsed = (end - delivery.started_at).total_seconds() if delivery.started_at else 0.0
    rate = sent / elapsed if elapsed > 0 else 0.0
    return {
        "status": delivery.status,
        "total": delivery.total,
        "sent": sent,
        "failed": failed,
        "skipped": skipped,
        "remaining": remaining,
        "rate": round(rate, 1),
        "eta_seconds": round(remaining / rate) if rate > 0 and remaining else None,
        "elapsed_seconds": round(elapsed, 1),
        "started_at": delivery.started_at.isoformat() if delivery.started_at else None,
        "finished_at": delivery.finished_at.isoformat() if delivery.finished_at else None,
    }


# --- Running ----------------------------------------------------------------------------------


class RateLimiter:
    """A token bucket: at most ``rate`` messages a second (0: no limit)."""

    def __init__(self, rate: float):
        self.rate = rate
        self.allowance = rate
        self.last = time.monotonic()

    def acquire(self, n: int) -> None:
        if self.rate <= 0:
            return
        while True:
            now = time.monotonic()
            self.allowance = min(self.rate, self.allowance + (now - self.last) * self.rate)
            self.last = now
            if self.allowance >= n or (n > self.rate and self.allowance >= self.rate):
                self.allowance -= n
                return
            time.sleep((min(n, self.rate) - self.allowance) / self.rate)


@dataclass
class RunReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    finished: bool = False


class _Stop:
    """Turns the first SIGTERM/SIGINT during a run into a graceful stop (then chains on)."""

    def __init__(self):
        self.requested = False
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        previous = self.previous.get(signum)
        if not self.requested:
            self.requested = True
            # A task worker's own handler only notes that it should stop after this task.
            if callable(previous) and previous is not signal.default_int_handler:
                previous(signum, frame)
            return
        if callable(previous):
            previous(signum, frame)
        raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(1)

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def delivery_run(
    delivery_id: int,
    *,
    worker: str | None = None,
    progress: Callable[[dict[str, int]], None] | None = None,
) -> RunReport:
    """Send a delivery's pending rows until none is left (or a stop); safe to run anywhere,
    any number of times, concurrently."""
    worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    report = RunReport()
    delivery = Delivery.objects.select_related("edition__newsletter").get(pk=delivery_id)
    if delivery.status != Delivery.Status.SENDING:
        return report
    now = timezone.now()
    Delivery.objects.filter(pk=delivery_id, started_at__isnull=True).update(started_at=now)
    template = MessageTemplate.for_delivery(delivery)
    greets_by_name = "{name}" in delivery.edition.newsletter.greeting  # else skip decrypting
    connections = max(1, settings.MASTHEAD_NEWSLETTER_CONNECTIONS)
    rate = settings.MASTHEAD_NEWSLETTER_RATE
    lease = settings.MASTHEAD_NEWSLETTER_LEASE_SECONDS
    batch = settings.MASTHEAD_NEWSLETTER_BATCH
    if rate > 0:  # a claimed batch must be sent well within the lease
        batch = max(1, min(batch, int(rate * lease / 4)))
    chunk_size = max(1, min(100, batch // connections))
    style = None if uses_smtp() else batch_style()
    if style is not None:  # one ESP API call per chunk: as many recipients as it takes
        chunk_size = max(1, min(batch_size(style), batch // connections))
        if style.stored_template:  # Postmark: the edition stored at the ESP for the send
            store_template(template, style)
    if rate > 0:  # a chunk is one token-bucket withdrawal: no bigger than a second's worth
        chunk_size = max(1, min(chunk_size, int(rate / connections) or 1))
    limiter = RateLimiter(rate)
    local = threading.local()
    senders = []
    senders_lock = threading.Lock()

    def send_chunk(chunk: list[Recipient]) -> list[Result]:
        sender = getattr(local, "sender", None)
        if sender is None:
            sender = local.sender = make_sender(template)
            with senders_lock:
                senders.append(sender)
        return sender.send(chunk)

    pending_results: list[Result] = []
    last_flush = last_beat = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        last_flush = time.monotonic()
        if not pending_results:
            return
        counts = record_results(delivery_id, worker, pending_results)
        pending_results.clear()
        report.sent += counts.get("sent", 0)
        report.failed += counts.get("failed", 0)
        report.retried += counts.get("retry", 0)
        if progress:
            progress(counts)

    with _Stop() as stop, ThreadPoolExecutor(connections, "newsletter-send") as pool:
        inflight = set()
        queue: list[list[Recipient]] = []
        exhausted = False
        try:
            while True:
                if time.monotonic() - last_beat > lease / 4:
                    last_beat = time.monotonic()
                    Delivery.objects.filter(pk=delivery_id).update(heartbeat_at=timezone.now())
                    status = Delivery.objects.values_list("status", flat=True).get(pk=delivery_id)
                    if status != Delivery.Status.SENDING:
                        stop.requested = True
                if not stop.requested and not queue and not exhausted and (
                    len(inflight) < 2 * connections
                ):
                    rows = claim_batch(delivery_id, worker, batch)
                    if not rows:
                        exhausted = True
                    else:
                        recipients, skipped = load_recipients(rows, names=greets_by_name)
                        if skipped:
                            DeliveryRecipient.objects.filter(id__in=skipped).update(
                                state=State.SKIPPED, claimed_by=""
                            )
                            report.skipped += len(skipped)
                            if progress:
                                progress({"skipped": len(skipped)})
                        queue = [
                            recipients[i:i + chunk_size]
                            for i in range(0, len(recipients), chunk_size)
                        ]
                while queue and len(inflight) < 2 * connections and not stop.requested:
                    chunk = queue.pop(0)
                    limiter.acquire(len(chunk))
                    inflight.add(pool.submit(send_chunk, chunk))
                if inflight:
                    done, inflight = wait(inflight, timeout=0.25, return_when=FIRST_COMPLETED)
                    for future in done:
                        pending_results.extend(future.result())
                    if len(pending_results) >= batch or time.monotonic() - last_flush > 0.25:
                        flush()
                    continue
                flush()
                if stop.requested:
                    break
                if exhausted:
                    if delivery_finish_if_done(delivery_id):
                        report.finished = True
                        if style is not None and style.stored_template:
                            remove_template(template, style)
                        break
                    wait_for = _next_retry_in(delivery_id, worker)
                    if wait_for is None:
                        break  # what is left is claimed by live workers: they finish it
                    time.sleep(min(wait_for, lease / 4))
                    exhausted = False
        finally:
            for future in inflight:
                try:
                    pending_results.extend(future.result())
                except Exception:  # noqa: BLE001 - the rows stay claimed and are retried
                    log.exception("sending a chunk failed")
            flush()
            release_claims(delivery_id, worker)
            for sender in senders:
                sender.close()
            if stop.requested and not report.finished:
                # Let the recovery job (or a resume) pick the delivery up without waiting.
                Delivery.objects.filter(pk=delivery_id).update(
                    heartbeat_at=timezone.now() - _lease()
                )
    return report


def _next_retry_in(delivery_id: int, worker: str) -> float | None:
    """Seconds until the earliest retry is due, or None if others hold what is left."""
    rows = DeliveryRecipient.objects.filter(delivery_id=delivery_id)
    stale = timezone.now() - _lease()
    if rows.filter(state=State.CLAIMED, claimed_at__gte=stale).exclude(claimed_by=worker).exists():
        return None
    earliest = rows.filter(state=State.PENDING).aggregate(t=Min("next_attempt_at"))["t"]
    if earliest is None:
        return 0.0
    return max(0.0, (earliest - timezone.now()).total_seconds())


# --- Periodic jobs ----------------------------------------------------------------------------


def start_due_editions(now=None) -> list[int]:
    """Start every scheduled edition whose time has come; returns their ids."""
    now = now or timezone.now()
    started = []
    due = Edition.objects.filter(status=Edition.Status.SCHEDULED, scheduled_at__lte=now)
    for edition in due.order_by("scheduled_at"):
        try:
            delivery_start(edition)
            started.append(edition.pk)
        except DeliveryError as exc:
            log.warning("scheduled edition %s not sent: %s", edition.pk, exc)
            Edition.objects.filter(pk=edition.pk, status=Edition.Status.SCHEDULED).update(
                status=Edition.Status.DRAFT
            )
    return started


def recover_stalled(now=None) -> list[int]:
    """Re-enqueue deliveries whose workers stopped beating (killed, crashed, lost task)."""
    now = now or timezone.now()
    recovered = []
    stalled = Delivery.objects.filter(
        status=Delivery.Status.SENDING, heartbeat_at__lt=now - _lease()
    )
    for delivery_id in stalled.values_list("pk", flat=True):
        with transaction.atomic():
            # Bumping the heartbeat first makes concurrent schedulers enqueue it once.
            claimed = Delivery.objects.filter(
                pk=delivery_id, heartbeat_at__lt=now - _lease()
            ).update(heartbeat_at=now)
            if claimed:
                transaction.on_commit(lambda pk=delivery_id: enqueue_workers(pk))
                recovered.append(delivery_id)
    return recovered
