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
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    outputs = [process.communicate(timeout=120) for process in processes]

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
