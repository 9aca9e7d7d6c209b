"""Stand-in email service providers for the tests (and bench/newsletter.py).

* :class:`FlakyESPBackend`: django-anymail's own test backend, with one address the provider
  rejects and one that fails with a 503 the first time (one API call per recipient).
* :class:`SendGridStandIn`: a local HTTP server speaking SendGrid's v3 ``POST /v3/mail/send``
  as anymail's real SendGrid backend calls it (``ANYMAIL_SENDGRID_API_URL`` pointed at it):
  one call carries up to 1,000 personalizations; each becomes one message, with the
  personalization's substitutions applied to the body and its headers added, as SendGrid
  does. Like SendGrid it answers 202 with an empty body, 400 for the whole call when one
  address is bad, and it can be told to fail calls with a 503.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from anymail.backends.test import EmailBackend
from anymail.exceptions import AnymailAPIError
from anymail.message import AnymailRecipientStatus

REJECTED = "reader1@example.org"
FLAKY = "reader2@example.org"
_failed_once: set[str] = set()


class FlakyESPBackend(EmailBackend):
    def post_to_esp(self, payload, message):
        to = message.to[0]
        if to == REJECTED:
            return {"recipient_status": {to: AnymailRecipientStatus(None, "rejected")}}
        if to == FLAKY and to not in _failed_once:
            _failed_once.add(to)
            raise AnymailAPIError("503 Service Unavailable: try again later")
        return super().post_to_esp(payload, message)


@dataclass
class Delivered:
    """One message the stand-in SendGrid made from a personalization."""

    to: str
    subject: str
    text: str
    html: str
    headers: dict
    custom_args: dict


@dataclass
class SendGridStandIn:
    """SendGrid's mail/send on 127.0.0.1; ``record=False`` only counts (for the benchmark)."""

    record: bool = True
    invalid: set[str] = field(default_factory=set)  # addresses SendGrid answers 400 for
    fail_calls: int = 0  # the next this-many calls get a 503
    calls: int = 0
    call_sizes: list[int] = field(default_factory=list)
    delivered: list[Delivered] = field(default_factory=list)
    accepted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = standin.handle(self.path, self.headers, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v3/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, path: str, headers, body: bytes) -> tuple[int, bytes]:
        if path != "/v3/mail/send" or not headers.get("Authorization", "").startswith("Bearer "):
            return 404, b'{"errors": [{"message": "not found"}]}'
        data = json.loads(body)
        with self.lock:
            self.calls += 1
            if self.fail_calls > 0:
                self.fail_calls -= 1
                return 503, b'{"errors": [{"message": "Service Unavailable"}]}'
        people = data["personalizations"]
        for index, person in enumerate(people):
            for to_index, to in enumerate(person["to"]):
                if to["email"] in self.invalid or "@" not in to["email"]:
                    error = {"message": "Does not contain a valid address.",
                             "field": f"personalizations.{index}.to.{to_index}.email"}
                    return 400, json.dumps({"errors": [error]}).encode()
        made = []
        if self.record:
            content = {part["type"]: part["value"] for part in data["content"]}
            for person in people:
                text = content.get("text/plain", "")
                html = content.get("text/html", "")
                subject = person.get("subject", data.get("subject", ""))
                for key, value in person.get("substitutions", {}).items():
                    text, html = text.replace(key, value), html.replace(key, value)
                    subject = subject.replace(key, value)
                made.append(Delivered(
                    to=person["to"][0]["email"], subject=subject, text=text, html=html,
                    headers={**data.get("headers", {}), **person.get("headers", {})},
                    custom_args={**data.get("custom_args", {}), **person.get("custom_args", {})},
                ))
        with self.lock:
            self.call_sizes.append(len(people))
            self.accepted += len(people)
            self.delivered.extend(made)
        return 202, b""


def sendgrid_settings(settings, url: str) -> None:
    """Point Django at the stand-in through anymail's real SendGrid backend."""
    settings.EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
    settings.ANYMAIL = {**getattr(settings, "ANYMAIL", {}), "SENDGRID_API_KEY": "SG.test",
                        "SENDGRID_API_URL": url}


FAILING = "reader3@example.org"


class PerRecipientStatusESP(EmailBackend):
    """anymail's test backend taking batches the way SendGrid's style writes them, and
    answering per recipient, as Postmark's batch API does: one address rejected, one failed,
    the rest queued with their own message ids."""

    esp_name = "SendGrid"

    def post_to_esp(self, payload, message):
        super().post_to_esp(payload, message)  # records the message in mail.outbox
        statuses = {}
        for email in payload.recipient_emails:
            if email == REJECTED:
                statuses[email] = AnymailRecipientStatus(None, "rejected")
            elif email == FAILING:
                statuses[email] = AnymailRecipientStatus(None, "failed")
            else:
                statuses[email] = AnymailRecipientStatus(f"id-{email}", "queued")
        return {"recipient_status": statuses}
