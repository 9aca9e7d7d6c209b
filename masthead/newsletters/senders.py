"""How messages leave: one sender per connection, used by the delivery engine's threads.

* :class:`SMTPPipelineSender` talks SMTP itself when ``EMAIL_BACKEND`` is Django's SMTP
  backend. smtplib sets the connection up (TLS, AUTH); the transactions are hand-written so
  that they can be pipelined (RFC 2920): one write carries a message's end of data and the
  next message's MAIL, RCPT and DATA, so each message costs one round trip instead of four,
  over a connection that stays open for the whole send. Neither smtplib nor Django's backend
  pipeline, and a Python library that does would add a dependency for ~100 lines.
* :class:`BackendSender` hands Django email messages to any configured backend: django-anymail
  ESPs — in batches, one API call for many recipients, where the ESP can personalise a batch
  (``batching.py``), else one call per recipient — the local outbox, etc.
* Either way, with ``MASTHEAD_DKIM_*`` set, the pipelined sender signs each message
  (``dkim.py``), and bodies are 8bit where the server offers 8BITMIME (``rendering.py``).

Each ``send`` returns one :class:`Result` per recipient: sent, transient (retry later) or
permanent (record the failure; ``hard_bounce`` asks for the address to be suppressed).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass

from anymail.exceptions import (
    AnymailAPIError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
)
from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.utils import DNS_NAME

from .batching import batch_message, batch_size, batch_style
from .dkim import signer_for
from .rendering import MessageTemplate, Recipient

log = logging.getLogger(__name__)

SENT, TRANSIENT, PERMANENT = "sent", "transient", "permanent"


@dataclass(slots=True)
class Result:
    ledger_id: int
    outcome: str
    error: str = ""
    hard_bounce: bool = False
    # Set by senders whose backend reports the provider's message id (anymail), so that the
    # ledger can record it and a bounce webhook naming it can be matched (signals.py).
    subscription_id: int = 0
    message_id: str = ""
    esp_message_id: str = ""


def uses_smtp() -> bool:
    choice = settings.MASTHEAD_NEWSLETTER_SENDER
    if choice != "auto":
        return choice == "smtp"
    return settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"


def make_sender(template: MessageTemplate):
    return SMTPPipelineSender(template) if uses_smtp() else BackendSender(template)


def _reply_text(code: int, message: bytes) -> str:
    return f"{code} {message.decode('utf-8', 'replace')}"[:300]


class SMTPPipelineSender:
    """One SMTP connection, reused for every message it is given; pipelined when offered."""

    def __init__(self, template: MessageTemplate):
        self.template = template
        self.smtp: smtplib.SMTP | None = None
        self.pipelining = False
        self.eightbit = False
        self.envelope = template.envelope_from.encode("ascii")
        self.mail_from = b"MAIL FROM:<" + self.envelope + b">\r\n"
        # DKIM (dkim.py): the fields all recipients share are canonicalised and hashed once.
        signer = signer_for(template.envelope_from.rpartition("@")[2])
        self.signer = signer.for_head(template.head) if signer is not None else None

    def open(self) -> None:
        cls = smtplib.SMTP_SSL if settings.EMAIL_USE_SSL else smtplib.SMTP
        smtp = cls(
            settings.EMAIL_HOST,
            settings.EMAIL_PORT,
            local_hostname=DNS_NAME.get_fqdn(),
            timeout=settings.EMAIL_TIMEOUT,
        )
        smtp.ehlo()
        if settings.EMAIL_USE_TLS:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.EMAIL_HOST_USER:
            smtp.login(settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD)
        self.pipelining = smtp.has_extn("pipelining") and settings.MASTHEAD_NEWSLETTER_PIPELINING
        # Compact bodies (8bit UTF-8) need the server's 8BITMIME; else 7bit-safe encodings.
        self.eightbit = smtp.has_extn("8bitmime")
        body = b" BODY=8BITMIME" if self.eightbit and self.template.needs_8bitmime else b""
        self.mail_from = b"MAIL FROM:<" + self.envelope + b">" + body + b"\r\n"
        self.smtp = smtp

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()
            self.smtp = None

    def _envelope(self, recipient: Recipient) -> bytes:
        return self.mail_from + b"RCPT TO:<" + recipient.email.encode("ascii") + b">\r\nDATA\r\n"

    def _data(self, recipient: Recipient) -> bytes:
        raw = self.template.raw(recipient, self.eightbit)
        if self.signer is not None:
            raw = self.signer.sign(raw)
        return raw + b".\r\n"

    def send(self, recipients: list[Recipient]) -> list[Result]:
        results: list[Result] = []
        try:
            if self.smtp is None:
                self.open()
            if self.pipelining:
                self._send_pipelined(recipients, results)
            else:
                self._send_one_by_one(recipients, results)
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            # The connection broke: whatever has no final reply yet is retried later (a message
            # whose data was written but not acknowledged may then arrive twice: in flight).
            if self.smtp is not None:
                self.smtp.close()
                self.smtp = None
            done = {r.ledger_id for r in results}
            error = f"connection: {exc}"[:300]
            results.extend(
                Result(r.ledger_id, TRANSIENT, error) for r in recipients if r.ledger_id not in done
            )
        return results

    @staticmethod
    def _failure(recipient: Recipient, code: int, message: bytes, rcpt: bool) -> Result:
        outcome = PERMANENT if 500 <= code < 600 else TRANSIENT
        return Result(
            recipient.ledger_id,
            outcome,
            _reply_text(code, message),
            hard_bounce=rcpt and code in (550, 551, 553),
        )

    def _send_pipelined(self, recipients: list[Recipient], results: list[Result]) -> None:
        smtp = self.smtp
        assert smtp is not None
        smtp.send(self._envelope(recipients[0]))
        count = len(recipients)
        for index, recipient in enumerate(recipients):
            mail = smtp.getreply()
            rcpt = smtp.getreply()
            data = smtp.getreply()
            following = self._envelope(recipients[index + 1]) if index + 1 < count else b""
            if data[0] == 354:
                smtp.send(self._data(recipient) + following)
                code, message = smtp.getreply()
                if code == 250:
                    results.append(Result(recipient.ledger_id, SENT))
                else:
                    results.append(self._failure(recipient, code, message, rcpt=False))
            else:
                # MAIL or RCPT refused (then DATA fails too): reset and go on.
                smtp.send(b"RSET\r\n" + following)
                smtp.getreply()
                if mail[0] != 250:
                    results.append(self._failure(recipient, *mail, rcpt=False))
                elif rcpt[0] not in (250, 251):
                    results.append(self._failure(recipient, *rcpt, rcpt=True))
                else:
                    results.append(self._failure(recipient, *data, rcpt=False))

    def _send_one_by_one(self, recipients: list[Recipient], results: list[Result]) -> None:
        smtp = self.smtp
        assert smtp is not None
        for recipient in recipients:
            smtp.send(self.mail_from)
            code, message = smtp.getreply()
            if code == 250:
                smtp.send(b"RCPT TO:<" + recipient.email.encode("ascii") + b">\r\n")
                code, message = smtp.getreply()
                if code in (250, 251):
                    smtp.send(b"DATA\r\n")
                    code, message = smtp.getreply()
                    if code == 354:
                        smtp.send(self._data(recipient))
                        code, message = smtp.getreply()
                        if code == 250:
                            results.append(Result(recipient.ledger_id, SENT))
                        else:
                            results.append(self._failure(recipient, code, message, rcpt=False))
                        continue
                    results.append(self._failure(recipient, code, message, rcpt=False))
                else:
                    results.append(self._failure(recipient, code, message, rcpt=True))
            else:
                results.append(self._failure(recipient, code, message, rcpt=False))
            smtp.send(b"RSET\r\n")
            smtp.getreply()


class BackendSender:
    """Sends through Django's configured email backend, one open connection per thread."""

    def __init__(self, template: MessageTemplate):
        self.template = template
        self.connection = None

    def open(self) -> None:
        self.connection = get_connection(fail_silently=False)
        self.connection.open()

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception as exc:  # noqa: BLE001 - closing a broken connection is best effort
                log.debug("closing the email connection failed: %s", exc)
            self.connection = None

    def send(self, recipients: list[Recipient]) -> list[Result]:
        if self.connection is None:
            try:
                self.open()
            except Exception as exc:  # noqa: BLE001 - any backend error is retried later
                return [Result(r.ledger_id, TRANSIENT, f"connect: {exc}"[:300])
                        for r in recipients]
        style = batch_style()
        if style is None or len(recipients) < 2:
            return self._send_each(recipients)
        size = batch_size(style)
        results = []
        for start in range(0, len(recipients), size):
            results.extend(self._send_batch(recipients[start:start + size], style))
        return results

    def _send_each(self, recipients: list[Recipient]) -> list[Result]:
        results = []
        for recipient in recipients:
            if self.connection is None:
                try:
                    self.open()
                except Exception as exc:  # noqa: BLE001 - any backend error is retried later
                    results.append(Result(recipient.ledger_id, TRANSIENT, f"connect: {exc}"[:300]))
                    continue
            results.append(self._send_one(recipient))
        return results

    def _send_batch(self, recipients: list[Recipient], style) -> list[Result]:
        """One API call for ``recipients``; each one's outcome from anymail's per-recipient
        status. A call the ESP refused as a whole (4xx: one bad address spoils a SendGrid
        batch) is sent again one recipient at a time, so that only the bad one fails; a call
        that failed otherwise (5xx, network, throttling) is retried later for all of them —
        the ESP took none of it, so nobody is lost and nobody gets it twice."""
        if self.connection is None:
            return self._send_each(recipients)
        message = batch_message(self.template, recipients, style, self.connection)
        try:
            self.connection.send_messages([message])
        except AnymailInvalidAddress:
            return self._send_each(recipients)  # find the one malformed address
        except AnymailAPIError as exc:
            status = getattr(exc, "status_code", None)
            if status is not None and 400 <= status < 500 and status not in (401, 403, 429):
                return self._send_each(recipients)
            return self._batch_failed(recipients, exc)
        except Exception as exc:  # noqa: BLE001 - classified as for one recipient
            return self._batch_failed(recipients, exc)
        statuses = message.anymail_status.recipients or {}
        lowered = {email.lower(): one for email, one in statuses.items()}
        return [
            self._outcome(recipient, statuses.get(recipient.email)
                          or lowered.get(recipient.email.lower()), sent=1)
            for recipient in recipients
        ]

    def _batch_failed(self, recipients: list[Recipient], exc: Exception) -> list[Result]:
        error = f"{type(exc).__name__}: {exc}"[:300]
        if isinstance(exc, AnymailRecipientsRefused):
            return [Result(r.ledger_id, PERMANENT, error, hard_bounce=True) for r in recipients]
        self.close()
        return [Result(r.ledger_id, TRANSIENT, error) for r in recipients]

    def _send_one(self, recipient: Recipient) -> Result:
        message = self.template.django_message(recipient, connection=self.connection)
        try:
            sent = self.connection.send_messages([message])
        except Exception as exc:  # noqa: BLE001 - classified below
            return self._classify(recipient, exc)
        status = getattr(message, "anymail_status", None)
        one = None
        if status is not None and status.recipients:
            one = next(iter(status.recipients.values()))
        return self._outcome(recipient, one, sent)

    def _outcome(self, recipient: Recipient, one, sent) -> Result:
        """The ledger's outcome for one recipient from anymail's status for them (None: the
        backend reports none, e.g. the local outbox)."""
        esp_message_id = ""
        if one is not None:
            state = one.status
            if state in ("rejected", "invalid"):
                return Result(recipient.ledger_id, PERMANENT, f"provider: {state}", True)
            if state == "failed":
                return Result(recipient.ledger_id, TRANSIENT, "provider: failed")
            esp_message_id = "" if one.message_id is None else str(one.message_id)
        if not sent:
            return Result(recipient.ledger_id, TRANSIENT, "backend sent nothing")
        if not esp_message_id:
            return Result(recipient.ledger_id, SENT)
        return Result(
            recipient.ledger_id, SENT,
            subscription_id=recipient.subscription_id,
            message_id=self.template.message_id(recipient),
            esp_message_id=esp_message_id,
        )

    def _classify(self, recipient: Recipient, exc: Exception) -> Result:
        error = f"{type(exc).__name__}: {exc}"[:300]
        if isinstance(exc, AnymailInvalidAddress | AnymailRecipientsRefused):
            return Result(recipient.ledger_id, PERMANENT, error, hard_bounce=True)
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            return Result(recipient.ledger_id, PERMANENT, error, hard_bounce=True)
        # Anything else (network, 5xx from an API, throttling) may pass on a later try; the
        # connection may be broken, so the next message opens a fresh one.
        self.close()
        return Result(recipient.ledger_id, TRANSIENT, error)
