"""Django's SQLite backend with one queue for writers (``ENGINE = "masthead.core.sqlite"``).

SQLite lets one connection write at a time. Web threads, the task worker and the scheduler
write at once on the embedded default, and a connection that finds the write lock taken
waits in SQLite's busy handler, which *sleeps* — 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50,
100 ms — and tries again: the writer that arrives while the lock is held misses the release
and waits out its sleep, and a late-comer can overtake it. Under a stream of short writes (a
thousand webhooks a second) that is the whole tail latency, and a writer can starve.

Here a writer queues instead: before ``BEGIN IMMEDIATE`` (every ``transaction.atomic`` on
SQLite) and around a write statement made outside a transaction, the connection takes

1. this process's lock for the database file (a ``threading.Lock``: one thread of the
   process at a time goes on), then
2. an exclusive ``flock`` on ``<database>-writers.lock`` beside the database, shared with the
   other processes (the other gunicorn workers, the worker, the scheduler). The kernel
   releases it when a process dies, so a crash never leaves it held. A waiting process
   polls it every 0.1–1 ms (``flock`` has no timeout of its own).

and releases both at commit, rollback or close. The wait is bounded by the database's
``timeout`` option (as SQLite's own busy timeout is), and ends with SQLite's own error
("database is locked"). Connections that do not use this backend (the ``sqlite3`` shell,
another program) still meet SQLite's own locking, which stays in force underneath; reads
never wait (WAL). An in-memory database has no lock file and no queue.

Chosen over a library: no maintained Django backend does this (django-sqlite backends in the
wild set pragmas only); it is these few lines on Django's own backend.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import weakref

from django.db.backends.sqlite3 import base

Database = base.Database

_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()
_queues: weakref.WeakSet[WriterQueue] = weakref.WeakSet()


def _start_afresh_in_child() -> None:
    """After ``fork()``: the parent's locks, copied held or not, are not the child's. Every
    queue gets a fresh process lock, and drops its copy of the parent's lock-file descriptor
    (an ``flock`` belongs to the open file, which the parent shares: through that copy the
    child would pass as the parent). Django's connections should not cross a fork anyway."""
    global _process_locks_guard
    _process_locks.clear()
    _process_locks_guard = threading.Lock()
    for queue in list(_queues):
        queue.in_process = _process_locks.setdefault(queue.path, threading.Lock())
        queue.held = False
        if queue.fd is not None:
            os.close(queue.fd)
            queue.fd = None


os.register_at_fork(after_in_child=_start_afresh_in_child)

# What a statement made outside a transaction reads only (everything else queues).
_READS = ("SELECT", "PRAGMA", "EXPLAIN")


class WriterQueue:
    """The two locks one connection takes to write; see the module docstring."""

    def __init__(self, database_path: str, timeout: float) -> None:
        self.path = f"{database_path}-writers.lock"
        self.timeout = timeout
        self.fd: int | None = None
        self.held = False
        with _process_locks_guard:
            self.in_process = _process_locks.setdefault(self.path, threading.Lock())
            _queues.add(self)

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        if not self.in_process.acquire(timeout=self.timeout):
            raise Database.OperationalError("database is locked (waited in the writer queue)")
        try:
            if self.fd is None:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            pause = 0.0001
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise Database.OperationalError(
                            "database is locked (waited in the writer queue)"
                        ) from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.001)
        except BaseException:
            self.in_process.release()
            raise
        self.held = True

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.in_process.release()

    def close(self) -> None:
        self.release()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class QueuedCursor(base.SQLiteCursorWrapper):
    """Queues a write statement made outside a transaction (Django's autocommit mode)."""

    writers: WriterQueue | None = None

    def execute(self, query, params=None):
        return self._in_turn(query, super().execute, params)

    def executemany(self, query, param_list):
        return self._in_turn(query, super().executemany, param_list)

    def _in_turn(self, query: str, run, params):
        """``run(query, params)``, in the writer queue if it is a write of its own."""
        if (
            self.writers is None
            or self.writers.held
            or self.connection.in_transaction
            or query.lstrip()[:7].upper().startswith(_READS)
        ):
            return run(query, params)
        self.writers.acquire()
        try:
            return run(query, params)
        finally:
            self.writers.release()


class DatabaseWrapper(base.DatabaseWrapper):
    writers: WriterQueue | None = None

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if not self.is_in_memory_db():
            if self.writers is not None:
                self.writers.close()
            self.writers = WriterQueue(
                str(self.settings_dict["NAME"]), float(conn_params.get("timeout", 5))
            )
        return connection

    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=QueuedCursor)
        cursor.writers = self.writers
        return cursor

    def _start_transaction_under_autocommit(self):
        if self.writers is None:
            return super()._start_transaction_under_autocommit()
        self.writers.acquire()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self.writers.release()
            raise

    def _commit(self):
        try:
            return super()._commit()
        finally:
            if self.writers is not None and not self.connection.in_transaction:
                self.writers.release()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            if self.writers is not None:
                self.writers.release()

    def _close(self):
        try:
            return super()._close()
        finally:
            if self.writers is not None:
                self.writers.close()
