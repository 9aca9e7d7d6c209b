"""ESP batch sends: one API call for many recipients, each personalised by the ESP.

django-anymail's batch sending (``merge_data`` with several ``to`` addresses) makes one API
call that the ESP turns into one message per recipient, substituting merge fields in the
body; ``merge_headers`` gives each its own ``List-Unsubscribe`` and ``Message-ID``. Which
ESPs can do that *without a template stored at the ESP* — and so can send our own rendered
edition — and how their merge fields are written, is in :data:`STYLES`:

* SendGrid: legacy substitutions, anywhere in the body; our placeholders themselves are the
  merge fields (``merge_field_format`` "{}"); anymail gives each recipient its own message
  id (``anymail_id``), which bounce webhooks name. Up to 1,000 personalizations a call.
* Mailgun: ``recipient-variables``, written ``%recipient.KEY%`` in the body and (anymail's
  ``merge_headers``) in each recipient's headers. Mailgun answers one message id for the
  whole call; its webhooks name that id *and* the recipient, and the bounce matching in
  ``signals.py`` asks for a message we sent with that id *to that recipient's address* —
  so a shared id still finds the right reader. Up to 1,000 recipients a call.
* Brevo: ``messageVersions``, one per recipient, with the edition as inline content and the
  recipient's ``params`` written ``{{ params.KEY }}``; Brevo answers one message id per
  version (``messageIds``, in order), which anymail gives each recipient. Up to 1,000
  versions a call.

* Postmark: its batch API (``/email/batchWithTemplates``) personalises only templates stored
  at Postmark, so the edition is stored as one for the send (:func:`store_template`, ``POST
  /templates``, alias made from the edition and a hash of its content: a retry finds it
  there) and removed when the delivery is done (:func:`remove_template`); each message's
  ``TemplateModel`` fills ``{{{ masthead_… }}}`` (triple braces: not escaped again). Postmark
  answers per message — its id, or an error (inactive, invalid) for that recipient alone.
  Up to 500 messages a call.

* Amazon SES: its bulk API (SESv2 ``SendBulkEmail``, which anymail uses for a message with
  ``template_id``) personalises only templates stored at SES, so the edition is stored as
  one for the send (``CreateEmailTemplate``, named like Postmark's alias; looked up first,
  and again when the create says AlreadyExists) and deleted when the delivery is done. Each
  destination's ``ReplacementTemplateData`` fills ``{{{masthead_…}}}`` (Handlebars' triple
  braces: not HTML-escaped again) and its ``ReplacementHeaders`` (anymail's
  ``merge_headers``) carry its own List-Unsubscribe. SES answers per destination, in order:
  a ``MessageId``, or a failure status for that destination alone. Up to 50 destinations a
  call (SES's limit). Header values must be printable ASCII, so List-Id goes without a
  non-ASCII name; SES puts its own Message-ID on each message (``<MessageId@…amazonses.com>``,
  replacing any we set, so we set none).
  Needs boto3 (``django-anymail[amazon-ses]``).

Not here, so sent one API call per recipient as before: the rest.
``MASTHEAD_NEWSLETTER_ESP_BATCH`` (default 500) is the batch size; 0 turns batching off.
"""

from __future__ import annotations

import hashlib
import html
import logging
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote

from anymail.message import AnymailMessage
from anymail.utils import get_anymail_setting
from django.conf import settings
from django.utils.module_loading import import_string

from .rendering import GREETING, UNSUBSCRIBE, MessageTemplate, Recipient, greeting_text

GREETING_HTML = "%%MASTHEAD_GREETING_HTML%%"  # the HTML part's greeting is escaped

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class BatchStyle:
    """How one ESP's batch API personalises: the merge-data key for each placeholder, how a
    key is written in the body (``field``), the most recipients one call may carry, and
    anymail's esp_extra."""

    unsubscribe: str
    greeting: str
    greeting_html: str
    max_size: int
    esp_extra: dict = field(default_factory=dict)
    field: str = "{}"
    # Brevo reads inline content as a template ("{{ … }}", "{% … %}"): the edition's own
    # braces are kept from it (an entity in HTML, a space in text); and it sends non-ASCII
    # header values as raw 8-bit (anymail refuses them), so List-Id goes without its name.
    template_language: bool = False
    ascii_headers: bool = False
    # Postmark, Amazon SES: the edition goes to the ESP as a stored template for the send;
    # ``esp`` says whose API stores it.
    stored_template: bool = False
    esp: str = ""
    # Amazon SES puts its own Message-ID on every message (it replaces one we set), so none
    # is sent: a header SES would drop is no reason to risk the call.
    message_id_header: bool = True

    def written(self, key: str) -> str:
        return self.field.format(key)


STYLES = {
    "SendGrid": BatchStyle(UNSUBSCRIBE, GREETING, GREETING_HTML, 1000,
                           {"merge_field_format": "{}"}),
    "Mailgun": BatchStyle("masthead_unsubscribe", "masthead_greeting",
                          "masthead_greeting_html", 1000, field="%recipient.{}%"),
    "Brevo": BatchStyle("masthead_unsubscribe", "masthead_greeting", "masthead_greeting_html",
                        1000, field="{{{{ params.{} }}}}", template_language=True,
                        ascii_headers=True),
    "Postmark": BatchStyle("masthead_unsubscribe", "masthead_greeting",
                           "masthead_greeting_html", 500, field="{{{{{{ {} }}}}}}",
                           template_language=True, stored_template=True, esp="postmark"),
    "Amazon SES": BatchStyle("masthead_unsubscribe", "masthead_greeting",
                             "masthead_greeting_html", 50, field="{{{{{{{}}}}}}}",
                             template_language=True, ascii_headers=True, stored_template=True,
                             esp="amazon_ses", message_id_header=False),
}


@lru_cache(maxsize=16)
def _esp_name(backend_path: str) -> str:
    try:
        return getattr(import_string(backend_path), "esp_name", "")
    except ImportError:
        return ""


def batch_style(backend_path: str | None = None) -> BatchStyle | None:
    """The batch style of the configured email backend, or None: one call per recipient."""
    if settings.MASTHEAD_NEWSLETTER_ESP_BATCH <= 1:
        return None
    return STYLES.get(_esp_name(backend_path or settings.EMAIL_BACKEND))


def batch_size(style: BatchStyle) -> int:
    return max(1, min(style.max_size, settings.MASTHEAD_NEWSLETTER_ESP_BATCH))


def _bodies_for(template: MessageTemplate, style: BatchStyle) -> tuple[str, str]:
    """The text and HTML with the style's merge fields, made once per template."""
    cache = template.__dict__.setdefault("_batch_bodies", {})
    if style not in cache:
        text_body, html_body = template.text_body, template.html_body
        if style.template_language:
            text_body, html_body = _inert_braces(text_body), _inert_braces(html_body, True)
        cache[style] = (
            text_body.replace(UNSUBSCRIBE, style.written(style.unsubscribe)).replace(
                GREETING, style.written(style.greeting)),
            html_body.replace(UNSUBSCRIBE, style.written(style.unsubscribe)).replace(
                GREETING, style.written(style.greeting_html)),
        )
    return cache[style]


def _inert_braces(body: str, is_html: bool = False) -> str:
    """``body`` with no "{{", "{%" or "{#" a template language would read: in HTML the
    first brace becomes its character reference (shown the same), in text a space follows
    it. (CSS in a style element has no such pairs.)"""
    if "{" not in body:
        return body
    for pair in ("{{", "{%", "{#"):
        while pair in body:
            body = body.replace(pair, ("&#123;" if is_html else "{ ") + pair[1])
    return body


def batch_message(template: MessageTemplate, recipients: list[Recipient], style: BatchStyle,
                  connection=None) -> AnymailMessage:
    """One anymail message for ``recipients``: the edition with the ESP's merge fields where
    each recipient's greeting and unsubscribe link go, and their values per address."""
    text, html_body = _bodies_for(template, style)
    newsletter = template.newsletter
    merge_data, merge_headers = {}, {}
    for recipient in recipients:
        url = template.unsubscribe_url(recipient.token)
        greeting = greeting_text(newsletter, recipient.name)
        mailto = f"mailto:{template.mailto}?subject=unsubscribe%20{quote(recipient.token)}"
        merge_data[recipient.email] = {
            style.unsubscribe: url,
            style.greeting: greeting,
            style.greeting_html: html.escape(greeting),
        }
        merge_headers[recipient.email] = {"List-Unsubscribe": f"<{url}>, <{mailto}>"}
        if style.message_id_header:
            merge_headers[recipient.email]["Message-ID"] = template.message_id(recipient)
    list_id = (template.list_id if not style.ascii_headers or template.list_id.isascii()
               else f"<{newsletter.list_id}>")
    if style.stored_template:  # subject and bodies are in the template at the ESP
        message = AnymailMessage(
            from_email=template.sender,
            to=[recipient.email for recipient in recipients],
            reply_to=[newsletter.reply_to] if newsletter.reply_to else None,
            headers={"List-Id": list_id,
                     "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
            connection=connection,
        )
        message.template_id = stored_template_alias(template, style)
        message.merge_data = merge_data
        message.merge_headers = merge_headers
        return message
    message = AnymailMessage(
        subject=_inert_braces(template.subject) if style.template_language else template.subject,
        body=text,
        from_email=template.sender,
        to=[recipient.email for recipient in recipients],
        reply_to=[newsletter.reply_to] if newsletter.reply_to else None,
        headers={
            "List-Id": list_id,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        connection=connection,
    )
    message.attach_alternative(html_body, "text/html")
    message.merge_data = merge_data
    message.merge_headers = merge_headers
    if style.esp_extra:
        message.esp_extra = dict(style.esp_extra)
    return message


# --- Stored templates (Postmark, Amazon SES) ------------------------------------------------------


def stored_template_alias(template: MessageTemplate, style: BatchStyle) -> str:
    """The template's alias at the ESP: the edition's, with a hash of the content stored, so
    that a retry (any worker, any time) names the same template and a changed edition a new
    one. Letters, digits and '-', starting with a letter, as Postmark wants."""
    cache = template.__dict__.setdefault("_stored_alias", {})
    if style not in cache:
        text, html_body = _bodies_for(template, style)
        digest = hashlib.sha256("\0".join((template.subject, text, html_body)).encode())
        cache[style] = f"masthead-{template.message_id_prefix}-{digest.hexdigest()[:16]}"
    return cache[style]


class StoredTemplateError(RuntimeError):
    """The ESP would not store (or tell us about) the edition's template."""


def _postmark():
    import requests

    token = get_anymail_setting("server_token", esp_name="Postmark", allow_bare=True)
    url = get_anymail_setting("api_url", esp_name="Postmark",
                              default="https://api.postmarkapp.com/")
    session = requests.Session()
    session.headers.update({"X-Postmark-Server-Token": token, "Accept": "application/json",
                            "Content-Type": "application/json"})
    return session, url if url.endswith("/") else url + "/"


_store_lock = threading.Lock()


def store_template(template: MessageTemplate, style: BatchStyle) -> str:
    """Make sure the ESP holds the edition as the template the batches name; idempotent
    (it is looked up first, and a create that lost a race is looked up again). Raises
    StoredTemplateError if the ESP will not: nothing is sent, and the delivery is picked up
    again by the stalled-send recovery."""
    alias = stored_template_alias(template, style)
    with _store_lock:
        if template.__dict__.get("_stored_at_esp") == alias:
            return alias
        if style.esp == "amazon_ses":
            _ses_store(template, style, alias)
            template.__dict__["_stored_at_esp"] = alias
            return alias
        session, url = _postmark()
        text, html_body = _bodies_for(template, style)
        try:
            if session.get(f"{url}templates/{alias}", timeout=30).status_code != 200:
                created = session.post(f"{url}templates", timeout=30, json={
                    "Name": f"Masthead {template.message_id_prefix} ({alias[-16:]})",
                    "Alias": alias,
                    "Subject": _inert_braces(template.subject),
                    "HtmlBody": html_body,
                    "TextBody": text,
                })
                if created.status_code != 200 and session.get(
                        f"{url}templates/{alias}", timeout=30).status_code != 200:
                    raise StoredTemplateError(
                        f"Postmark did not store template {alias}: {created.status_code} "
                        f"{created.text[:200]}")
        except OSError as exc:  # requests' connection errors are OSErrors
            raise StoredTemplateError(f"Postmark template {alias}: {exc}") from exc
        finally:
            session.close()
        template.__dict__["_stored_at_esp"] = alias
    return alias


def remove_template(template: MessageTemplate, style: BatchStyle) -> bool:
    """Delete the edition's template once the delivery is done (a missing one is fine: an
    earlier attempt removed it). A failure is logged, not raised: the mail has gone out."""
    alias = stored_template_alias(template, style)
    if style.esp == "amazon_ses":
        return _ses_remove(alias)
    session, url = _postmark()
    try:
        answer = session.delete(f"{url}templates/{alias}", timeout=30)
        if answer.status_code == 200:
            return True
        if session.get(f"{url}templates/{alias}", timeout=30).status_code != 200:
            return True  # not there
        log.warning("Postmark template %s not deleted: %s %s", alias, answer.status_code,
                    answer.text[:200])
    except OSError as exc:
        log.warning("Postmark template %s not deleted: %s", alias, exc)
    finally:
        session.close()
    return False


# Amazon SES (SESv2 through boto3, with anymail's AMAZON_SES_SESSION_PARAMS and
# AMAZON_SES_CLIENT_PARAMS, as its backend uses them)


def _ses_client():
    import boto3
    from botocore.client import Config

    session_params = get_anymail_setting("session_params", esp_name="Amazon SES", default={})
    client_params = dict(get_anymail_setting("client_params", esp_name="Amazon SES",
                                             default={}))
    if isinstance(client_params.get("config"), dict):
        client_params["config"] = Config(**client_params["config"])
    return boto3.session.Session(**session_params).client("sesv2", **client_params)


def _ses_error_code(exc: Exception) -> str:
    return (getattr(exc, "response", None) or {}).get("Error", {}).get("Code", "")


def _ses_exists(client, name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.get_email_template(TemplateName=name)
    except ClientError as exc:
        if _ses_error_code(exc) == "NotFoundException":
            return False
        raise
    return True


def _ses_store(template: MessageTemplate, style: BatchStyle, name: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    text, html_body = _bodies_for(template, style)
    try:
        client = _ses_client()
    except (BotoCoreError, ValueError) as exc:  # no region, a bad endpoint URL …
        raise StoredTemplateError(f"Amazon SES template {name}: {exc}") from exc
    try:
        if _ses_exists(client, name):
            return
        try:
            client.create_email_template(TemplateName=name, TemplateContent={
                "Subject": _inert_braces(template.subject), "Text": text, "Html": html_body})
        except ClientError as exc:
            # AlreadyExists: another worker (or an earlier try) stored it meanwhile.
            if _ses_error_code(exc) != "AlreadyExistsException" or not _ses_exists(client, name):
                raise
    except (BotoCoreError, ClientError) as exc:
        raise StoredTemplateError(f"Amazon SES did not store template {name}: {exc}") from exc
    finally:
        client.close()


def _ses_remove(name: str) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    client = None
    try:
        client = _ses_client()
        client.delete_email_template(TemplateName=name)
        return True
    except ClientError as exc:
        if _ses_error_code(exc) == "NotFoundException":
            return True  # an earlier attempt removed it
        log.warning("Amazon SES template %s not deleted: %s", name, exc)
    except (BotoCoreError, ValueError) as exc:
        log.warning("Amazon SES template %s not deleted: %s", name, exc)
    finally:
        if client is not None:
            client.close()
    return False
