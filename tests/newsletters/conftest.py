"""Fixtures for the newsletter tests: newsletters, subscribers, editions and a real SMTP
server (aiosmtpd) that records what it receives and can refuse chosen addresses."""

from __future__ import annotations

import collections
import logging
import socket
import threading
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from masthead.core.crypto import email_index
from masthead.newsletters.models import (
    Edition,
    EditionArticle,
    Newsletter,
    Subscriber,
    Subscription,
)

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RecordingHandler:
    """Keeps every accepted message; ``refuse`` maps an address to SMTP replies to give at
    RCPT, one per attempt (e.g. ["451 4.3.0 try later"] then accept)."""

    def __init__(self, pipelining: bool = True):
        self.pipelining = pipelining
        self.lock = threading.Lock()
        self.messages: list[tuple[list[str], bytes]] = []
        self.refuse: dict[str, list[str]] = {}
        self.connections = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        session.host_name = hostname
        with self.lock:
            self.connections += 1
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        with self.lock:
            replies = self.refuse.get(address)
            if replies:
                return replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def counts(self) -> collections.Counter:
        with self.lock:
            return collections.Counter(r for rcpts, _ in self.messages for r in rcpts)

    def parsed(self):
        with self.lock:
            return [message_from_bytes(data, policy=policy.default) for _, data in self.messages]


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on localhost; Django's SMTP settings point at it."""
    servers = []

    def start(pipelining: bool = True) -> RecordingHandler:
        handler = RecordingHandler(pipelining=pipelining)
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        servers.append(controller)
        handler.port = port
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_HOST_USER = ""
        return handler

    yield start
    for controller in servers:
        controller.stop()


@pytest.fixture
def newsletter(db):
    return Newsletter.objects.create(
        name="The Friday Lantern",
        slug="friday-lantern",
        language="en",
        is_default=True,
        description="Hand-picked news, features and analysis. Arrives every Friday.",
        timezone="Europe/London",
    )


@pytest.fixture
def russian_newsletter(db):
    return Newsletter.objects.create(
        name="Фонарь по пятницам",
        slug="fonar",
        language="ru",
        is_default=True,
        greeting="Здравствуйте, {name}!",
        greeting_without_name="Здравствуйте!",
        timezone="Europe/Moscow",
    )


def subscription_of(email: str, newsletter=None) -> Subscription:
    found = Subscription.objects.filter(subscriber__email_index=email_index(email))
    if newsletter is not None:
        found = found.filter(newsletter=newsletter)
    return found.get()


def states(delivery) -> dict[str, int]:
    """How many of a delivery's recipients are in each ledger state."""
    from masthead.newsletters.models import DeliveryRecipient

    return collections.Counter(
        DeliveryRecipient.objects.filter(delivery=delivery).values_list("state", flat=True)
    )


def add_subscribers(newsletter, count: int, *, prefix: str = "reader", names: bool = False):
    """Confirmed subscribers reader0@example.org …, created in bulk."""
    now = timezone.now()
    people = Subscriber.objects.bulk_create(
        Subscriber(
            email=f"{prefix}{i}@example.org",
            email_index=email_index(f"{prefix}{i}@example.org"),
            name=f"Name{i}" if names else "",
        )
        for i in range(count)
    )
    Subscription.objects.bulk_create(
        Subscription(
            subscriber=person,
            newsletter=newsletter,
            status=Subscription.Status.CONFIRMED,
            confirmed_at=now,
        )
        for person in people
    )
    return [f"{prefix}{i}@example.org" for i in range(count)]


@pytest.fixture
def edition_factory(site):
    from masthead.publishing.demo import load_demo_articles
    from masthead.publishing.models import ArticlePage

    if not ArticlePage.objects.exists():
        load_demo_articles()

    def make(newsletter, subject="This week: ice, contracts and a letterpress", count=3,
             full_text_first=True) -> Edition:
        edition = Edition.objects.create(
            newsletter=newsletter,
            subject=subject,
            preheader="The week in the Orlin valley",
            intro="<p>Good morning. Here is <b>what</b> we found.</p>",
        )
        articles = ArticlePage.objects.live().filter(
            locale__language_code=newsletter.language
        ).order_by("-published_at")[:count]
        for order, article in enumerate(articles):
            EditionArticle.objects.create(
                edition=edition, article=article, sort_order=order,
                full_text=full_text_first and order == 0,
            )
        return edition

    return make


@pytest.fixture(autouse=True)
def _on_commit_runs_at_once(request, monkeypatch):
    """Tests run inside a transaction that never commits: run commit hooks straight away
    (transactional tests commit for real and need no help)."""
    if "transactional_db" in request.fixturenames or "subprocess_env" in request.fixturenames:
        return
    from django.db import transaction

    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())
