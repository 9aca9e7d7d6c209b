"""Crash safety and scale-out with real processes: the worker (``masthead db_worker``, or
RQ's worker on Redis) sends to a real SMTP server (aiosmtpd) in this process, which counts
what it receives. Killing the workers with SIGKILL mid-send and starting them again must
complete the send with nobody skipped and no duplicate beyond the messages in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import redis

from masthead.newsletters.delivery import delivery_start
from masthead.newsletters.models import Delivery, DeliveryRecipient

from .conftest import add_subscribers

pytestmark = pytest.mark.slow

RECIPIENTS = 500


def masthead(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "masthead.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def db_worker(env):
    return masthead("db_worker", "--queue-name", "*", "--no-reload", "--interval", "0.2",
                    "--no-startup-delay", env=env)


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(condition, timeout: float, what: str, processes=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        for process in processes:
            if process.poll() is not None:
                output = process.stderr.read().decode()[-3000:]
                raise AssertionError(f"{what}: a process exited: {output}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def send_env(subprocess_env, smtp_server):
    server = smtp_server()
    env = {
        **subprocess_env,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(server.port),
        "MASTHEAD_NEWSLETTER_RATE": "150",
        "MASTHEAD_NEWSLETTER_CONNECTIONS": "2",
        "MASTHEAD_NEWSLETTER_PARALLEL": "2",
        "MASTHEAD_NEWSLETTER_LEASE_SECONDS": "3",
        "MASTHEAD_NEWSLETTER_TICK_SECONDS": "1",
        # Small claims, so that a kill always finds rows nobody has claimed yet, however late
        # a loaded machine lets the test see the first messages arrive.
        "MASTHEAD_NEWSLETTER_BATCH": "25",
    }
    return server, env


def test_sigkill_mid_send_then_restart_skips_nobody_and_repeats_only_in_flight(
    send_env, newsletter, edition_factory, settings
):
    server, env = send_env
    settings.MASTHEAD_NEWSLETTER_PARALLEL = 2
    addresses = add_subscribers(newsletter, RECIPIENTS)
    delivery = delivery_start(edition_factory(newsletter))  # commits: two tasks enqueued
    workers = [db_worker(env), db_worker(env)]
    try:
        wait_for(lambda: sum(server.counts().values()) >= 120, 60, "the first messages", workers)
        for worker in workers:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
        received_at_kill = sum(server.counts().values())
        in_flight = set(
            DeliveryRecipient.objects.filter(delivery=delivery, state="claimed").values_list(
                "subscription__subscriber__email_index", flat=True))
        assert received_at_kill < RECIPIENTS, "the kill came too late to prove anything"
        assert DeliveryRecipient.objects.filter(state="pending").exists()
        time.sleep(0.5)
        assert sum(server.counts().values()) == received_at_kill  # really dead

        # Restart: the workers, and the scheduler whose recovery job re-enqueues the send
        # once the dead workers' lease has run out.
        workers = [db_worker(env), db_worker(env), masthead("scheduler", "--tick", "0.5", env=env)]
        wait_for(
            lambda: Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.DONE,
            90, "the send to finish", workers,
        )
    finally:
        stop(*workers)

    counts = server.counts()
    assert set(counts) == set(addresses), "someone was skipped"
    duplicates = {address for address, n in counts.items() if n > 1}
    from masthead.core.crypto import email_index

    assert {email_index(a) for a in duplicates} <= in_flight
    assert all(n <= 2 for n in counts.values())
    assert DeliveryRecipient.objects.filter(delivery=delivery, state="sent").count() == RECIPIENTS
    # Mail programs can drop the duplicates: a copy keeps its Message-ID.
    ids = {}
    for message in server.parsed():
        ids.setdefault(message["To"], set()).add(message["Message-ID"])
    assert all(len(v) == 1 for v in ids.values())


def test_sigterm_stops_gracefully_and_the_send_resumes_with_no_duplicate(
    send_env, newsletter, edition_factory, settings
):
    server, env = send_env
    env = {**env, "MASTHEAD_NEWSLETTER_PARALLEL": "1"}
    addresses = add_subscribers(newsletter, 500)
    delivery = delivery_start(edition_factory(newsletter))
    worker = db_worker(env)
    try:
        wait_for(lambda: sum(server.counts().values()) >= 60, 60, "the first messages", [worker])
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0  # it finishes what is in flight and exits
        assert not DeliveryRecipient.objects.filter(state="claimed").exists()
        sent = DeliveryRecipient.objects.filter(state="sent").count()
        assert sent == sum(server.counts().values()) < len(addresses)
        workers = [db_worker(env), masthead("scheduler", "--tick", "0.5", env=env)]
        wait_for(
            lambda: Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.DONE,
            60, "the send to finish", workers,
        )
    finally:
        stop(worker, *locals().get("workers", []))
    assert server.counts() == {address: 1 for address in addresses}


def _redis_available(url: str) -> bool:
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


def test_rq_workers_on_redis_send_without_duplicates(send_env, newsletter, edition_factory):
    server, env = send_env
    url = os.environ.get("MASTHEAD_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    if not _redis_available(url):
        if os.environ.get("CI"):
            pytest.fail(f"CI=true but Redis is not reachable at {url}")
        pytest.skip(f"Redis not reachable at {url}")
    env = {**env, "MASTHEAD_TASKS": "rq", "REDIS_URL": url, "MASTHEAD_NEWSLETTER_RATE": "0"}
    addresses = add_subscribers(newsletter, 200)
    edition = edition_factory(newsletter)
    queued = subprocess.run(
        [sys.executable, "-m", "masthead.cli", "send_edition", str(edition.pk), "--enqueue"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert queued.returncode == 0, queued.stderr
    assert "queued for the workers" in queued.stdout
    workers = [
        masthead("rqworker", "--burst", "--job-class", "django_tasks_rq.Job", "default", env=env)
        for _ in range(2)
    ]
    try:
        wait_for(lambda: Delivery.objects.filter(edition=edition, status="done").exists(),
                 90, "the RQ workers to finish")
    finally:
        stop(*workers)
    assert server.counts() == {address: 1 for address in addresses}
