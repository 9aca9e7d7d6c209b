"""Stand-in email service providers for the tests (and bench/newsletter.py).

* :class:`FlakyESPBackend`: django-anymail's own test backend, with one address the provider
  rejects and one that fails with a 503 the first time (one API call per recipient).
* :class:`SendGridStandIn`: a local HTTP server speaking SendGrid's v3 ``POST /v3/mail/send``
  as anymail's real SendGrid backend calls it (``ANYMAIL_SENDGRID_API_URL`` pointed at it):
  one call carries up to 1,000 personalizations; each becomes one message, with the
  personalization's substitutions applied to the body and its headers added, as SendGrid
  does. Like SendGrid it answers 202 with an empty body, 400 for the whole call when one
  address is bad, and it can be told to fail calls with a 503.
* :class:`MailgunStandIn`: Mailgun's ``POST /v3/<domain>/messages`` (form fields, HTTP basic
  auth ``api:<key>``) as anymail's Mailgun backend calls it: several ``to`` with
  ``recipient-variables`` become one message each, ``%recipient.KEY%`` substituted in the
  subject, bodies and ``h:`` headers; one id for the whole call (``{"id": "<…>", "message":
  "Queued. Thank you."}``), as Mailgun answers; 400 for the call when an address is bad.
* :class:`PostmarkStandIn`: Postmark's templates API (``GET``/``POST``/``DELETE
  /templates[/<id or alias>]``) and ``POST /email/batchWithTemplates`` (``Messages``, each
  with ``TemplateAlias`` and ``TemplateModel``: ``{{{ key }}}`` filled in as is, ``{{ key }}``
  HTML-escaped in the HTML body, as Mustachio does), plus ``POST /email`` for single sends;
  ``X-Postmark-Server-Token``. Answers per message — ``MessageID``, or ``ErrorCode`` 406 for
  an inactive recipient — as Postmark does.
* :class:`BrevoStandIn`: Brevo's ``POST /v3/smtp/email`` (JSON, ``api-key`` header): each
  of ``messageVersions`` becomes one message with its ``params`` substituted for
  ``{{ params.KEY }}`` and its headers added; 201 with one id per version
  (``{"messageIds": […]}``); 400 ``invalid_parameter`` for a bad address.
* :class:`AmazonSESStandIn`: SESv2's REST API as boto3 calls it (``endpoint_url`` pointed at
  it, SigV4 ``Authorization`` with the expected access key): email templates (``POST
  /v2/email/templates``, ``GET``/``DELETE /v2/email/templates/<name>``; 400
  ``AlreadyExistsException``, 404 ``NotFoundException``), ``POST
  /v2/email/outbound-bulk-emails`` (at most 50 ``BulkEmailEntries``; each destination's
  ``ReplacementTemplateData`` fills the stored template — ``{{{ key }}}`` as is, ``{{ key }}``
  HTML-escaped, as Handlebars does — and its ``ReplacementHeaders``, which must be printable
  ASCII, are added; one ``BulkEmailEntryResults`` entry per destination, in order:
  ``SUCCESS`` with a ``MessageId``, or ``MESSAGE_REJECTED``/``TRANSIENT_FAILURE`` for that
  destination alone) and ``POST /v2/email/outbound-emails`` (raw MIME) for single sends.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from html import escape as html_escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

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
class StandIn:
    """An ESP's send API on 127.0.0.1; ``record=False`` only counts (for the benchmark)."""

    base_path = "/v3/"

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
                status, answer = standin.handle_request(self.command, self.path, self.headers,
                                                        body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_DELETE = do_POST  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.base_path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle_request(self, method: str, path: str, headers, body: bytes) -> tuple[int, bytes]:
        if method != "POST":
            return 405, b'{"message": "method not allowed"}'
        return self.handle(path, headers, body)

    def handle(self, path: str, headers, body: bytes) -> tuple[int, bytes]:
        raise NotImplementedError

    def _fail_this_call(self) -> bool:
        with self.lock:
            self.calls += 1
            if self.fail_calls > 0:
                self.fail_calls -= 1
                return True
        return False

    def _accepted(self, count: int, made: list[Delivered]) -> None:
        with self.lock:
            self.call_sizes.append(count)
            self.accepted += count
            self.delivered.extend(made)


@dataclass
class SendGridStandIn(StandIn):
    """SendGrid's mail/send."""

    def handle(self, path: str, headers, body: bytes) -> tuple[int, bytes]:
        if path != "/v3/mail/send" or not headers.get("Authorization", "").startswith("Bearer "):
            return 404, b'{"errors": [{"message": "not found"}]}'
        data = json.loads(body)
        if self._fail_this_call():
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
        self._accepted(len(people), made)
        return 202, b""


def _form(headers, body: bytes) -> dict[str, list[str]]:
    """A form body as requests sends it: urlencoded, or multipart with attachments."""
    kind = headers.get("Content-Type", "")
    if kind.startswith("application/x-www-form-urlencoded"):
        return parse_qs(body.decode(), keep_blank_values=True)
    if kind.startswith("multipart/form-data"):
        message = message_from_bytes(
            b"Content-Type: " + kind.encode() + b"\r\n\r\n" + body, policy=email_policy.HTTP)
        fields: dict[str, list[str]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields.setdefault(name, []).append(part.get_content())
        return fields
    return {}


MAILGUN_VARIABLE = re.compile(r"%recipient\.([^%]+)%")


@dataclass
class MailgunStandIn(StandIn):
    """Mailgun's messages API, for any sending domain."""

    api_key: str = "key-test"
    domains: list[str] = field(default_factory=list)  # the sending domains of each call

    def handle(self, path: str, headers, body: bytes) -> tuple[int, bytes]:
        import base64

        match = re.fullmatch(r"/v3/([^/]+)/messages", path)
        expected = "Basic " + base64.b64encode(f"api:{self.api_key}".encode()).decode()
        if headers.get("Authorization") != expected:
            return 401, b"Forbidden"
        if not match:
            return 200, b"Mailgun Magnificent API"  # what Mailgun says to unknown paths
        data = _form(headers, body)
        if self._fail_this_call():
            return 503, b'{"message": "Service Unavailable"}'
        to = data.get("to", [])
        for address in to:
            if address in self.invalid or "@" not in address:
                return 400, json.dumps({"message": f"to parameter is not a valid address. "
                                        f"please check documentation: {address}"}).encode()
        variables = json.loads(data.get("recipient-variables", ["{}"])[0])
        made = []
        if self.record:
            one = {key: values[0] for key, values in data.items()}
            for address in to:
                mine = variables.get(address, {})

                def fill(value: str, mine=mine) -> str:
                    return MAILGUN_VARIABLE.sub(
                        lambda m: str(mine.get(m[1], m[0])), value)

                made.append(Delivered(
                    to=address, subject=fill(one.get("subject", "")),
                    text=fill(one.get("text", "")), html=fill(one.get("html", "")),
                    headers={key[2:]: fill(value) for key, value in one.items()
                             if key.startswith("h:")},
                    custom_args={key[2:]: fill(value) for key, value in one.items()
                                 if key.startswith("v:")},
                ))
        with self.lock:
            self.domains.append(match[1])
        self._accepted(len(to), made)
        message_id = f"<{uuid.uuid4().hex}.{len(to)}@{match[1]}>"
        return 200, json.dumps({"id": message_id, "message": "Queued. Thank you."}).encode()


MUSTACHE = re.compile(r"\{\{(\{?)\s*([A-Za-z0-9_.]+)\s*\}?\}\}")


@dataclass
class PostmarkStandIn(StandIn):
    """Postmark's templates and send APIs."""

    base_path = "/"
    server_token: str = "postmark-test-token"  # noqa: S105
    inactive: set[str] = field(default_factory=set)  # answered per message with 406
    templates: dict = field(default_factory=dict)  # alias -> the stored template
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    message_ids: dict = field(default_factory=dict)  # address -> the id answered

    def handle_request(self, method, path, headers, body):
        if headers.get("X-Postmark-Server-Token") != self.server_token:
            return 401, b'{"ErrorCode": 10, "Message": "Bad or missing Server API token."}'
        # Not found: 422 with an error code (the code here is the stand-in's own).
        missing = b'{"ErrorCode": 1101, "Message": "The template was not found."}'
        if path.startswith("/templates/"):
            key = path.removeprefix("/templates/")
            with self.lock:
                found = self.templates.get(key) or next(
                    (t for t in self.templates.values() if str(t["TemplateId"]) == key), None)
                if found is None:
                    return 422, missing
                if method == "DELETE":
                    del self.templates[found["Alias"]]
                    self.deleted.append(found["Alias"])
                    return 200, b'{"ErrorCode": 0, "Message": "Template removed."}'
            if method == "GET":
                return 200, json.dumps({**found, "Active": True}).encode()
            return 405, b"{}"
        if method != "POST":
            return 405, b"{}"
        data = json.loads(body)
        if path == "/templates":
            with self.lock:
                if data.get("Alias") in self.templates:
                    return 422, json.dumps({"ErrorCode": 1105, "Message":
                                            "A template with this alias already exists."}).encode()
                record = {"TemplateId": len(self.created) + 1, "Name": data["Name"],
                          "Alias": data.get("Alias"), "Subject": data["Subject"],
                          "HtmlBody": data.get("HtmlBody", ""),
                          "TextBody": data.get("TextBody", "")}
                self.templates[record["Alias"]] = record
                self.created.append(record["Alias"])
            return 200, json.dumps({"TemplateId": record["TemplateId"], "Name": record["Name"],
                                    "Alias": record["Alias"], "Active": True}).encode()
        if self._fail_this_call():
            return 503, b'{"ErrorCode": 100, "Message": "Maintenance"}'
        if path == "/email/batchWithTemplates":
            messages = data["Messages"]
            if len(messages) > 500:
                return 422, b'{"ErrorCode": 410, "Message": "Too many batch messages"}'
        elif path == "/email":
            messages = [data]
        else:
            return 404, b'{"ErrorCode": 0, "Message": "not found"}'
        answers, made = [], []
        for message in messages:
            to = message["To"]
            if to in self.inactive:
                answers.append({"ErrorCode": 406, "Message":
                                "You tried to send to recipient(s) that have been marked as "
                                f"inactive.\nFound inactive addresses: {to}.\nInactive "
                                "recipients are ones that have generated a hard bounce or a "
                                "spam complaint.\n"})
                continue
            if to in self.invalid or "@" not in to:
                answers.append({"ErrorCode": 300, "Message": f"Invalid 'To' address: '{to}'."})
                continue
            stored = None
            if "TemplateAlias" in message or "TemplateId" in message:
                key = message.get("TemplateAlias") or message.get("TemplateId")
                with self.lock:
                    stored = self.templates.get(key)
                if stored is None:
                    answers.append(json.loads(missing))
                    continue
            message_id = str(uuid.uuid4())
            answers.append({"To": to, "SubmittedAt": "2026-12-01T09:00:00Z",
                            "MessageID": message_id, "ErrorCode": 0, "Message": "OK"})
            if self.record:
                if stored is not None:
                    model = message.get("TemplateModel", {})

                    def fill(value: str, escape: bool, model=model) -> str:
                        return MUSTACHE.sub(
                            lambda m: str(model.get(m[2], "")) if m[1] or not escape
                            else html_escape(str(model.get(m[2], ""))), value)

                    subject = fill(stored["Subject"], False)
                    text, html = fill(stored["TextBody"], False), fill(stored["HtmlBody"], True)
                else:
                    subject = message.get("Subject", "")
                    text, html = message.get("TextBody", ""), message.get("HtmlBody", "")
                made.append(Delivered(
                    to=to, subject=subject, text=text, html=html,
                    headers={h["Name"]: h["Value"] for h in message.get("Headers", [])},
                    custom_args=message.get("Metadata", {})))
                with self.lock:
                    self.message_ids[to] = message_id
        self._accepted(len(messages), made)
        if path == "/email":
            if answers[0]["ErrorCode"]:
                return 422, json.dumps(answers[0]).encode()
            return 200, json.dumps(answers[0]).encode()
        return 200, json.dumps(answers).encode()


BREVO_PARAM = re.compile(r"\{\{\s*params\.([A-Za-z0-9_]+)\s*\}\}")


@dataclass
class BrevoStandIn(StandIn):
    """Brevo's transactional email API."""

    api_key: str = "xkeysib-test"
    message_ids: dict = field(default_factory=dict)  # address -> the id Brevo answered

    def handle(self, path: str, headers, body: bytes) -> tuple[int, bytes]:
        if headers.get("api-key") != self.api_key:
            return 401, b'{"code": "unauthorized", "message": "Key not found"}'
        if path != "/v3/smtp/email":
            return 404, b'{"code": "not_found", "message": "Invalid route"}'
        data = json.loads(body)
        if self._fail_this_call():
            return 503, b'{"code": "internal_error", "message": "Service Unavailable"}'
        versions = data.get("messageVersions") or [{"to": data.get("to", [])}]
        if len(versions) > 1000:
            return 400, b'{"code": "invalid_parameter", "message": "too many versions"}'
        for version in versions:
            for to in version["to"]:
                if to["email"] in self.invalid or "@" not in to["email"]:
                    return 400, json.dumps({"code": "invalid_parameter",
                                            "message": "email is not valid in to"}).encode()
        made, ids = [], []
        for version in versions:
            ids.append(f"<{uuid.uuid4().hex}@smtp-relay.mailin.fr>")
            if not self.record:
                continue
            params = version.get("params", data.get("params", {}))

            def fill(value: str, params=params) -> str:
                return BREVO_PARAM.sub(lambda m: str(params.get(m[1], "")), value)

            made.append(Delivered(
                to=version["to"][0]["email"],
                subject=fill(version.get("subject", data.get("subject", ""))),
                text=fill(version.get("textContent", data.get("textContent", ""))),
                html=fill(version.get("htmlContent", data.get("htmlContent", ""))),
                headers={**data.get("headers", {}), **version.get("headers", {})},
                custom_args={},
            ))
            with self.lock:
                self.message_ids[version["to"][0]["email"]] = ids[-1]
        self._accepted(len(versions), made)
        if "messageVersions" not in data:
            return 201, json.dumps({"messageId": ids[0]}).encode()
        return 201, json.dumps({"messageIds": ids}).encode()


SES_ACCESS_KEY = "AKIDMASTHEADTEST"
SES_HEADER_NAME = re.compile(r"[!-9;-@A-~]{1,126}")  # SESv2 MessageHeader's patterns
SES_HEADER_VALUE = re.compile(r"[ -~]{1,870}")


@dataclass
class AmazonSESStandIn(StandIn):
    """Amazon SES's v2 API: templates and sends."""

    base_path = ""
    access_key: str = SES_ACCESS_KEY
    rejected: set[str] = field(default_factory=set)  # MESSAGE_REJECTED, every time
    flaky: set[str] = field(default_factory=set)  # TRANSIENT_FAILURE, the first time
    failed_once: set[str] = field(default_factory=set)
    templates: dict = field(default_factory=dict)  # name -> TemplateContent
    created: list[str] = field(default_factory=list)
    create_calls: int = 0
    miss_lookups: int = 0  # the next this-many GETs say NotFound (another worker's race)
    deleted: list[str] = field(default_factory=list)
    message_ids: dict = field(default_factory=dict)  # address -> the MessageId answered
    entries: list[dict] = field(default_factory=list)  # each BulkEmailEntry, as sent

    @staticmethod
    def _error(status: int, kind: str, message: str) -> tuple[int, bytes]:
        return status, json.dumps({"__type": kind, "message": message}).encode()

    def handle_request(self, method, path, headers, body):
        auth = headers.get("Authorization", "")
        if not auth.startswith(f"AWS4-HMAC-SHA256 Credential={self.access_key}/"):
            return self._error(403, "UnrecognizedClientException",
                               "The security token included in the request is invalid.")
        if path.startswith("/v2/email/templates"):
            return self._templates(method, path.removeprefix("/v2/email/templates"), body)
        if method != "POST":
            return self._error(404, "NotFoundException", "no such route")
        data = json.loads(body)
        if self._fail_this_call():
            return self._error(503, "ServiceUnavailable", "Service Unavailable")
        if path == "/v2/email/outbound-bulk-emails":
            return self._bulk(data)
        if path == "/v2/email/outbound-emails":
            return self._single(data)
        return self._error(404, "NotFoundException", "no such route")

    def _templates(self, method, rest, body):
        from urllib.parse import unquote

        name = unquote(rest.removeprefix("/"))
        with self.lock:
            if method == "POST" and not name:
                data = json.loads(body)
                self.create_calls += 1
                if data["TemplateName"] in self.templates:
                    return self._error(400, "AlreadyExistsException",
                                       f"Template {data['TemplateName']} already exists.")
                self.templates[data["TemplateName"]] = data["TemplateContent"]
                self.created.append(data["TemplateName"])
                return 200, b"{}"
            missed = method == "GET" and self.miss_lookups > 0
            if missed:
                self.miss_lookups -= 1
            if name not in self.templates or missed:
                return self._error(404, "NotFoundException", f"Template {name} does not exist.")
            if method == "GET":
                return 200, json.dumps({"TemplateName": name,
                                        "TemplateContent": self.templates[name]}).encode()
            if method == "DELETE":
                del self.templates[name]
                self.deleted.append(name)
                return 200, b"{}"
        return self._error(404, "NotFoundException", "no such route")

    def _bulk(self, data):
        entries = data["BulkEmailEntries"]
        if not 1 <= len(entries) <= 50:
            return self._error(400, "BadRequestException",
                               "BulkEmailEntries must hold 1 to 50 entries.")
        for entry in entries:
            for header in entry.get("ReplacementHeaders", []):
                if not (SES_HEADER_NAME.fullmatch(header["Name"])
                        and SES_HEADER_VALUE.fullmatch(header["Value"])):
                    return self._error(400, "BadRequestException",
                                       f"Invalid header {header['Name']!r}.")
        default = data["DefaultContent"]["Template"]
        with self.lock:
            stored = self.templates.get(default["TemplateName"])
        defaults = json.loads(default.get("TemplateData") or "{}")
        results, made = [], []
        for entry in entries:
            to = entry["Destination"]["ToAddresses"][0]
            address = to.rsplit("<", 1)[-1].rstrip(">")
            if stored is None:
                results.append({"Status": "TEMPLATE_NOT_FOUND",
                                "Error": f"Template {default['TemplateName']} does not exist."})
                continue
            if address in self.rejected:
                results.append({"Status": "MESSAGE_REJECTED",
                                "Error": "Email address is on the suppression list."})
                continue
            with self.lock:
                transient = address in self.flaky and address not in self.failed_once
                if transient:
                    self.failed_once.add(address)
            if transient:
                results.append({"Status": "TRANSIENT_FAILURE", "Error": "Try again later."})
                continue
            message_id = f"0100{uuid.uuid4().hex}-000000"
            results.append({"Status": "SUCCESS", "MessageId": message_id})
            if not self.record:
                continue
            values = {**defaults, **json.loads(entry.get("ReplacementEmailContent", {}).get(
                "ReplacementTemplate", {}).get("ReplacementTemplateData") or "{}")}

            def fill(value: str, values=values) -> str:
                return MUSTACHE.sub(lambda m: str(values.get(m[2], "")) if m[1]
                                    else html_escape(str(values.get(m[2], ""))), value)

            made.append(Delivered(
                to=address, subject=fill(stored.get("Subject", "")),
                text=fill(stored.get("Text", "")), html=fill(stored.get("Html", "")),
                headers={h["Name"]: h["Value"] for h in entry.get("ReplacementHeaders", [])},
                custom_args={"FromEmailAddress": data.get("FromEmailAddress", ""),
                             "ReplyToAddresses": data.get("ReplyToAddresses", [])}))
            with self.lock:
                self.message_ids[address] = message_id
                self.entries.append(entry)
        self._accepted(len(entries), made)
        return 200, json.dumps({"BulkEmailEntryResults": results}).encode()

    def _single(self, data):
        import base64

        raw = base64.b64decode(data["Content"]["Raw"]["Data"])
        to = data.get("Destination", {}).get("ToAddresses", [])
        if any(address in self.rejected for address in to):
            return self._error(400, "MessageRejected", "Email address is on the suppression list.")
        message_id = f"0100{uuid.uuid4().hex}-000000"
        made = []
        if self.record:
            parsed = message_from_bytes(raw, policy=email_policy.default)
            parts = {part.get_content_type(): part.get_content()
                     for part in parsed.walk() if part.get_content_maintype() == "text"}
            made = [Delivered(to=to[0], subject=str(parsed["Subject"]),
                              text=parts.get("text/plain", ""), html=parts.get("text/html", ""),
                              headers={k: str(v) for k, v in parsed.items()}, custom_args={})]
            with self.lock:
                self.message_ids[to[0]] = message_id
        self._accepted(len(to), made)
        return 200, json.dumps({"MessageId": message_id}).encode()


def amazon_ses_settings(settings, url: str, access_key: str = SES_ACCESS_KEY) -> None:
    """Point Django at the stand-in through anymail's real Amazon SES backend (boto3)."""
    settings.EMAIL_BACKEND = "anymail.backends.amazon_ses.EmailBackend"
    settings.ANYMAIL = {**getattr(settings, "ANYMAIL", {}), "AMAZON_SES_CLIENT_PARAMS": {
        "endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": access_key,
        "aws_secret_access_key": "masthead-test-secret",
        "config": {"retries": {"total_max_attempts": 1, "mode": "standard"}}}}


def mailgun_settings(settings, url: str, api_key: str = "key-test") -> None:
    """Point Django at the stand-in through anymail's real Mailgun backend."""
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = {**getattr(settings, "ANYMAIL", {}), "MAILGUN_API_KEY": api_key,
                        "MAILGUN_API_URL": url}


def brevo_settings(settings, url: str, api_key: str = "xkeysib-test") -> None:
    """Point Django at the stand-in through anymail's real Brevo backend."""
    settings.EMAIL_BACKEND = "anymail.backends.brevo.EmailBackend"
    settings.ANYMAIL = {**getattr(settings, "ANYMAIL", {}), "BREVO_API_KEY": api_key,
                        "BREVO_API_URL": url}


def postmark_settings(settings, url: str, token: str = "postmark-test-token") -> None:  # noqa: S107
    """Point Django at the stand-in through anymail's real Postmark backend."""
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {**getattr(settings, "ANYMAIL", {}), "POSTMARK_SERVER_TOKEN": token,
                        "POSTMARK_API_URL": url}


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


def amazon_ses_bounce(email, esp_id, event_id):
    """A hard bounce as Amazon SES notifies it through SNS to anymail's tracking webhook:
    (body, content type, request headers); the caller adds its authentication."""
    ses = {"notificationType": "Bounce",
           "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                      "bouncedRecipients": [{"emailAddress": email, "status": "5.1.1",
                                             "diagnosticCode": "smtp; 550 5.1.1 unknown"}],
                      "timestamp": "2026-11-20T09:00:00.000Z", "feedbackId": "feedback"},
           "mail": {"timestamp": "2026-11-20T08:59:00.000Z", "messageId": esp_id,
                    "source": "newsroom@example.org", "destination": [email]}}
    sns_id = f"sns-{event_id}"
    body = {"Type": "Notification", "MessageId": sns_id,
            "TopicArn": "arn:aws:sns:us-east-1:111111111111:ses-bounces",
            "Message": json.dumps(ses), "Timestamp": "2026-11-20T09:00:01.000Z",
            "SignatureVersion": "1", "Signature": "EXAMPLE", "SigningCertURL": "https://x/",
            "UnsubscribeURL": "https://x/"}
    headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification",
               "HTTP_X_AMZ_SNS_MESSAGE_ID": sns_id}
    return json.dumps(body).encode(), "text/plain; charset=UTF-8", headers
