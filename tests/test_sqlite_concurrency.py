"""SQLite under concurrent writers: WAL, IMMEDIATE transactions and the busy timeout mean
several threads and processes writing at once never see "database is locked"."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from django.db import close_old_connections, connection, transaction
from taggit.models import Tag

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="about the embedded SQLite configuration"
)

TRANSACTIONS = 30

# Each transaction reads, then writes: exactly the pattern that deadlocks ("database is
# locked" at once, whatever the timeout) when a read lock has to be upgraded to a write lock.
WRITER = """
import time
from django.db import transaction
from taggit.models import Tag
name, count = {name!r}, {count}
for i in range(count):
    with transaction.atomic():
        Tag.objects.filter(name__startswith=name).count()
        Tag.objects.create(name=f"{{name}}-{{i}}", slug=f"{{name}}-{{i}}")
        if i % 10 == 0:
            time.sleep(0.02)  # hold the write lock a little, so others must wait
"""


def write_in_thread(name: str, count: int, errors: list[BaseException]) -> None:
    try:
        for i in range(count):
            with transaction.atomic():
                Tag.objects.filter(name__startswith=name).count()
                Tag.objects.create(name=f"{name}-{i}", slug=f"{name}-{i}")
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)
    finally:
        close_old_connections()
        connection.close()


def run_together(threads: list[threading.Thread], processes: list[subprocess.Popen]) -> list:
    """Start the threads (the processes run already), wait for all; the processes' outputs."""
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return [process.communicate(timeout=120) for process in processes]


def test_wal_and_immediate_transactions_are_in_effect(transactional_db):
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] >= 5000
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"

    # IMMEDIATE means BEGIN takes the write lock at once, even before the first write: while
    # Django's transaction is open, another connection cannot start a write transaction.
    other = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
    try:
        with transaction.atomic():
            Tag.objects.count()  # a read only
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again after commit
        other.rollback()
    finally:
        other.close()


def test_threads_and_processes_write_at_once_without_database_is_locked(subprocess_env):
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "masthead.cli", "shell", "--no-imports", "-c",
             WRITER.format(name=f"proc{n}", count=TRANSACTIONS)],
            env=subprocess_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=write_in_thread, args=(f"thread{n}", TRANSACTIONS, errors))
        for n in range(4)
    ]
    outputs = run_together(threads, processes)

    assert errors == []
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert "locked" not in err
        assert process.returncode == 0, err[-2000:]
    assert Tag.objects.count() == 8 * TRANSACTIONS
    for prefix in [f"proc{n}" for n in range(4)] + [f"thread{n}" for n in range(4)]:
        assert Tag.objects.filter(name__startswith=prefix + "-").count() == TRANSACTIONS


def test_writers_killed_mid_transaction_leave_the_database_intact(subprocess_env):
    """SIGKILL (the OOM killer, a crashed container) in the middle of writes: WAL recovers."""

    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "masthead.cli", "shell", "--no-imports", "-c",
             WRITER.format(name=f"killed{n}", count=1_000_000)],
            env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for n in range(3)
    ]
    try:
        deadline = time.monotonic() + 60
        while Tag.objects.filter(name__startswith="killed").count() < 150:
            assert time.monotonic() < deadline, "the writers did not get going"
            assert all(p.poll() is None for p in processes), processes[0].stderr.read()
            time.sleep(0.05)
    finally:
        for process in processes:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    with connection.cursor() as cursor:
        cursor.execute("PRAGMA integrity_check")
        assert cursor.fetchall() == [("ok",)]
    written = Tag.objects.filter(name__startswith="killed").count()
    Tag.objects.create(name="after-the-crash", slug="after-the-crash")
    assert Tag.objects.filter(name__startswith="killed").count() == written
    assert Tag.objects.filter(slug="after-the-crash").exists()


# --- the writer queue (masthead.core.sqlite) --------------------------------------------------

# Writers whose SQLite connection waits at most 100 ms (busy_timeout) and whose transactions
# each hold the lock 15 ms: six of them make a writer wait longer than that for its turn.
# SQLite's own busy handler gives up after 100 ms ("database is locked"); the writer queue's
# wait is bounded by the configured timeout (30 s) instead. (The 100 ms left to SQLite
# absorbs its rare short locks outside any writer, e.g. a connection closing.)
IMPATIENT = 100
HOLD = 0.015
QUEUED = 10

IMPATIENT_WRITER = """
import time
from django.db import connection, transaction
from taggit.models import Tag
connection.ensure_connection()
connection.connection.execute("PRAGMA busy_timeout = {impatient}")
name, count = {name!r}, {count}
for i in range(count):
    with transaction.atomic():
        Tag.objects.create(name=f"{{name}}-{{i}}", slug=f"{{name}}-{{i}}")
        time.sleep({hold})
"""


def impatient_writes(name: str, count: int, errors: list[BaseException], *, atomic: bool) -> None:
    try:
        connection.ensure_connection()
        connection.connection.execute(f"PRAGMA busy_timeout = {IMPATIENT}")
        for i in range(count):
            if atomic:
                with transaction.atomic():
                    Tag.objects.create(name=f"{name}-{i}", slug=f"{name}-{i}")
                    time.sleep(HOLD)
            else:  # a write outside a transaction (Django's autocommit): one statement
                Tag.objects.create(name=f"{name}-{i}", slug=f"{name}-{i}")
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)
    finally:
        connection.close()


def test_writers_queue_instead_of_relying_on_sqlites_busy_wait(subprocess_env):
    """Threads and processes write at once, each waiting its turn longer than SQLite's busy
    timeout: in the writer queue they all get it. (With Django's own SQLite backend writers
    fail "database is locked".)"""
    assert connection.settings_dict["ENGINE"] == "masthead.core.sqlite"
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "masthead.cli", "shell", "--no-imports", "-c",
             IMPATIENT_WRITER.format(name=f"iproc{n}", count=QUEUED, impatient=IMPATIENT,
                                     hold=HOLD)],
            env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for n in range(2)
    ]  # fmt: skip
    errors: list[BaseException] = []
    threads = [
        threading.Thread(
            target=impatient_writes,
            args=(f"ithread{n}", QUEUED, errors),
            kwargs={"atomic": n % 2 == 0},
        )
        for n in range(4)
    ]
    outputs = run_together(threads, processes)

    assert errors == []
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-2000:]
    assert Tag.objects.filter(name__startswith="i").count() == 6 * QUEUED


def test_the_queue_is_released_by_commit_rollback_and_close(transactional_db):
    from masthead.core.sqlite.base import WriterQueue

    connection.ensure_connection()
    queue = connection.writers
    with transaction.atomic():
        Tag.objects.create(name="held", slug="held")
        assert queue.held
    assert not queue.held
    with pytest.raises(RuntimeError), transaction.atomic():
        Tag.objects.create(name="rolled-back", slug="rolled-back")
        raise RuntimeError
    assert not queue.held
    assert not Tag.objects.filter(slug="rolled-back").exists()

    # Another connection to the same file waits at most its timeout, then fails as SQLite does.
    other = WriterQueue(connection.settings_dict["NAME"], timeout=0.2)
    with transaction.atomic():
        Tag.objects.count()
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.acquire()
        assert 0.15 < time.monotonic() - started < 5
    other.acquire()  # free once the transaction ended
    other.release()

    with transaction.atomic():
        Tag.objects.count()
        connection.close()  # mid-transaction (a worker shutting down): the queue is let go
    other.acquire()
    other.close()


def test_a_killed_writer_does_not_keep_the_queue(subprocess_env):
    holder = subprocess.Popen(
        [sys.executable, "-m", "masthead.cli", "shell", "--no-imports", "-c",
         "from django.db import transaction\nfrom taggit.models import Tag\n"
         "with transaction.atomic():\n    Tag.objects.count()\n    print('holding', flush=True)\n"
         "    import time; time.sleep(600)\n"],
        env=subprocess_env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "holding"
        from masthead.core.sqlite.base import WriterQueue

        waiting = WriterQueue(connection.settings_dict["NAME"], timeout=0.2)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            waiting.acquire()
    finally:
        holder.kill()
        holder.wait()
    waiting.acquire()  # the kernel let go of the dead process's lock
    waiting.close()
    Tag.objects.create(name="after-kill", slug="after-kill")


def test_a_forked_child_queues_behind_its_parent(transactional_db):
    """After fork() the child must not write through the parent's lock-file descriptor: an
    flock belongs to the open file, so the child would pass the parent's lock as its own."""
    from masthead.core.sqlite.base import WriterQueue

    queue = WriterQueue(connection.settings_dict["NAME"], timeout=0.3)
    queue.acquire()  # opens the lock file
    queue.release()
    holding_r, holding_w = os.pipe()
    result_r, result_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: wait until the parent holds the queue, then try to take it
        try:
            os.read(holding_r, 1)
            try:
                queue.acquire()
                outcome = b"acquired"
            except sqlite3.OperationalError:
                outcome = b"locked"
            os.write(result_w, outcome)
        finally:
            os._exit(0)
    try:
        queue.acquire()
        os.write(holding_w, b"1")
        outcome = os.read(result_r, 16)
        queue.release()
    finally:
        os.waitpid(pid, 0)
        for fd in (holding_r, holding_w, result_r, result_w):
            os.close(fd)
        queue.close()
    assert outcome == b"locked"
