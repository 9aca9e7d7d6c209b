"""The local email outbox: the embedded default email backend.

Each message becomes one ``.eml`` file in ``MASTHEAD_OUTBOX_DIR`` (``data/outbox``), named so
that ``ls`` lists them oldest first; an operator reads them with any mail client or with
``masthead outbox``. Production configures SMTP or an ESP through django-anymail instead.
"""

from __future__ import annotations

import os
import threading
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend

_counter_lock = threading.Lock()
_counter = 0


def outbox_dir() -> Path:
    path = Path(settings.MASTHEAD_OUTBOX_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


class OutboxBackend(BaseEmailBackend):
    """Writes every message to its own file in the outbox folder."""

    def send_messages(self, email_messages):
        global _counter
        sent = 0
        folder = outbox_dir()
        for message in email_messages:
            if not message.recipients():
                continue
            with _counter_lock:
                _counter += 1
                serial = _counter
            name = f"{time.time_ns()}-{os.getpid()}-{serial}.eml"
            tmp = folder / f".{name}.tmp"
            tmp.write_bytes(message.message().as_bytes(linesep="\n"))
            tmp.replace(folder / name)
            sent += 1
        return sent


def read_outbox(limit: int | None = None):
    """The outbox's messages, newest first, as ``email.message.EmailMessage`` objects."""
    files = sorted(outbox_dir().glob("*.eml"), key=lambda p: p.name, reverse=True)
    if limit is not None:
        files = files[:limit]
    parser = BytesParser(policy=policy.default)
    return [(path, parser.parsebytes(path.read_bytes())) for path in files]
