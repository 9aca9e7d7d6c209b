"""Turning an edition into mail: rendered once, personalised per recipient by substitution.

:func:`render_edition` renders the HTML (CSS inlined with css-inline) and the plain-text part
once, with placeholders where each recipient's greeting and unsubscribe link go.
:class:`MessageTemplate` then pre-encodes everything that is the same for every recipient
(headers, the body split at the placeholders), so a personalised message is a join of a few
byte strings: no template rendering, no MIME building per recipient. Bodies are compact in
every script: 8bit for a server that offers 8BITMIME (long lines wrapped: text as
format=flowed, HTML at spaces between words), else quoted-printable or base64, whichever is
smaller for that part (Cyrillic: base64, about 2.7 bytes a letter instead of QP's 6). It also
builds ordinary Django email messages for email backends that need them (django-anymail,
the outbox).
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import time
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate, parseaddr
from urllib.parse import quote, urlsplit

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from masthead.reach.mirrors import email_link_base, email_mirror_links, rebase

UNSUBSCRIBE = "%%MASTHEAD_UNSUBSCRIBE%%"
GREETING = "%%MASTHEAD_GREETING%%"
_TOKEN = "MASTHEADTOKEN"  # noqa: S105 - stands for the unsubscribe token while URLs are reversed

_inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@dataclass
class RenderedEdition:
    """An edition's subject, HTML and text, with personalisation placeholders."""

    subject: str
    html: str
    text: str
    newsletter: object

    def preview_html(self, name: str = "") -> str:
        return personalise_str(self.html, greeting_html(self.newsletter, name), "#")

    def preview_text(self, name: str = "") -> str:
        return personalise_str(self.text, greeting_text(self.newsletter, name), "#")


def absolutise(fragment: str, base: str | None = None) -> str:
    """Make root-relative links and image sources absolute (mail has no base URL), on the
    email's link host (``base``, default the main site)."""
    base = base or settings.MASTHEAD_BASE_URL
    fragment = re.sub(r'(\s(?:href|src)=")/(?!/)', rf"\1{base}/", fragment)
    return re.sub(
        r'(\ssrcset=")([^"]*)"',
        lambda m: m.group(1)
        + ", ".join(
            (base + part.strip()) if part.strip().startswith("/") else part.strip()
            for part in m.group(2).split(",")
        )
        + '"',
        fragment,
    )


_BLOCK_END = re.compile(r"</(p|h[1-6]|li|blockquote|figure|div|tr)>|<br\s*/?>", re.I)
_LINK = re.compile(r'<a\s[^>]*href="([^"]+)"[^>]*>(.*?)</a>', re.I | re.S)
_TAG = re.compile(r"<[^>]+>")


def html_to_text(fragment: str) -> str:
    """A readable plain-text version of simple rich text (paragraphs, lists, links)."""

    def link(match):
        label = _TAG.sub("", match.group(2)).strip()
        url = html.unescape(match.group(1))
        return f"{label} ({url})" if label and label != url else url

    text = _LINK.sub(link, fragment)
    text = re.sub(r"<li[^>]*>", "• ", text, flags=re.I)
    text = _BLOCK_END.sub("\n\n", text)
    text = html.unescape(_TAG.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def article_text(article) -> str:
    """An article's body as plain text, for the text part of a full-text item."""
    parts = []
    for block in article.body:
        kind, value = block.block_type, block.value
        if kind == "paragraph":
            parts.append(html_to_text(str(value.__html__())))
        elif kind == "subhead":
            parts.append(str(value).upper())
        elif kind == "quote":
            attribution = f" — {value['attribution']}" if value.get("attribution") else ""
            parts.append(f"“{value['quote']}”{attribution}")
    return "\n\n".join(p for p in parts if p)


def _article_url(article, base: str) -> str:
    parts = article.get_url_parts()
    return base + parts[2] if parts else article.full_url


def _context(edition) -> dict:
    newsletter = edition.newsletter
    base = email_link_base(newsletter)
    items = edition.articles()
    for item in items:
        # the newsletter's "whole articles" option, or the editor's choice per article
        item.full_text = item.full_text or newsletter.full_text
        item.text_body = article_text(item.article) if item.full_text else ""
        item.url = _article_url(item.article, base)
    return {
        "edition": edition,
        "newsletter": newsletter,
        "items": items,
        "images": newsletter.email_images,
        "intro_text": html_to_text(str(edition.intro)) if edition.intro else "",
        "base_url": base,
        "outlet_name": settings.MASTHEAD_OUTLET_NAME,
        "web_url": base + edition.get_absolute_url() if edition.pk else "",
        "mirror_links": email_mirror_links(),
        "unsubscribe_url": UNSUBSCRIBE,
        "greeting": GREETING,
    }


def render_edition(edition) -> RenderedEdition:
    """Render an edition once: inlined HTML and text, both with placeholders."""
    with translation.override(edition.newsletter.language):
        context = _context(edition)
        raw_html = render_to_string("newsletters/email/edition.html", context)
        text = render_to_string("newsletters/email/edition.txt", context)
    base = context["base_url"]
    # Links an editor or rich text wrote with the main site's address follow the link host.
    inlined = _inliner.inline(rebase(absolutise(raw_html, base), base))
    text = rebase(text, base)
    if settings.MASTHEAD_NEWSLETTER_CLICK_COUNTS and edition.pk:
        inlined = count_clicks(edition, inlined)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    return RenderedEdition(
        subject=edition.subject, html=inlined, text=text, newsletter=edition.newsletter
    )


_HREF = re.compile(r'href="(https?://[^"]+)"')


def count_clicks(edition, html_body: str) -> str:
    """Send the HTML part's links through an aggregate counter (opt-in, see docs): one row
    per link per edition, nothing per reader. The unsubscribe link is left alone."""
    from .models import EditionLink

    def replace(match):
        url = html.unescape(match.group(1))
        link, _ = EditionLink.objects.get_or_create(edition=edition, url=url[:2000])
        with translation.override(edition.newsletter.language):
            path = reverse("newsletters:click", args=[edition.pk, link.pk])
        return f'href="{email_link_base(edition.newsletter)}{path}"'

    return _HREF.sub(replace, html_body)


# --- Personalisation -------------------------------------------------------------------------


def clean_name(name: str) -> str:
    return " ".join((name or "").split())[:100]


def greeting_text(newsletter, name: str) -> str:
    name = clean_name(name)
    if newsletter is None or not newsletter.greeting:
        return ""
    if name and "{name}" in newsletter.greeting:
        return newsletter.greeting.replace("{name}", name)
    return newsletter.greeting_without_name or newsletter.greeting.replace(" {name}", "")


def greeting_html(newsletter, name: str) -> str:
    return html.escape(greeting_text(newsletter, name))


def personalise_str(template: str, greeting: str, unsubscribe_url: str) -> str:
    return template.replace(GREETING, greeting).replace(UNSUBSCRIBE, unsubscribe_url)


def unsubscribe_url_parts(newsletter) -> tuple[str, str]:
    """(prefix, suffix) of the unsubscribe URL around the token, in the newsletter's language."""
    with translation.override(newsletter.language):
        url = email_link_base(newsletter) + reverse("newsletters:unsubscribe", args=[_TOKEN])
    prefix, suffix = url.split(_TOKEN)
    return prefix, suffix


def unsubscribe_mailto(newsletter) -> str:
    address = getattr(settings, "MASTHEAD_NEWSLETTER_UNSUBSCRIBE_EMAIL", "")
    if not address:
        domain = parseaddr(newsletter.sender)[1].rpartition("@")[2] or "localhost"
        address = f"unsubscribe@{domain}"
    return address


def _qp(data: str) -> bytes:
    return binascii.b2a_qp(data.replace("\r\n", "\n").replace("\n", "\r\n").encode(), istext=True)


def dot_stuff(data: bytes) -> bytes:
    """SMTP transparency (RFC 5321 4.5.2): a line starting with "." gets another."""
    data = data.replace(b"\r\n.", b"\r\n..")
    return b"." + data if data.startswith(b".") else data


class _Split:
    """A body split at the placeholders, for cheap per-recipient joins: each fixed piece is
    encoded (``encode``: quoted-printable, or UTF-8 as it is for 7bit/8bit) and dot-stuffed
    for SMTP here, once; :meth:`fill` only stuffs the short values (a value that starts a
    line and begins with "." included)."""

    def __init__(self, text: str, encode=None):
        encode = encode or _qp
        pattern = re.compile(f"({re.escape(UNSUBSCRIBE)}|{re.escape(GREETING)})")
        pieces = pattern.split(text)
        self.parts: list[bytes | tuple[str, bool]] = []
        previous = b"\n"
        for index, piece in enumerate(pieces):
            if index % 2:
                # (placeholder, does it start a line?)
                self.parts.append((piece, previous.endswith(b"\n")))
                previous = b"x"
            elif piece:
                encoded = encode(piece)
                self.parts.append(dot_stuff(encoded) if previous.endswith(b"\n") else
                                  encoded.replace(b"\r\n.", b"\r\n.."))
                previous = encoded

    def fill(self, values: dict[str, bytes]) -> bytes:
        out = []
        for part in self.parts:
            if isinstance(part, bytes):
                out.append(part)
            else:
                name, line_start = part
                value = values[name].replace(b"\r\n.", b"\r\n..")
                out.append(b"." + value if line_start and value.startswith(b".") else value)
        return b"".join(out)


# --- Compact bodies: 8bit with wrapped lines, or the smaller of quoted-printable and base64 ---

# A line of a 7bit/8bit body may have 998 octets (RFC 5322 2.1.1). Lines are wrapped well
# below that, counting each placeholder at its largest filled size (a 100-character name in
# a greeting, an unsubscribe URL), so that no recipient's message goes over.
_LONG_LINE = 700
_PLACEHOLDER_BYTES = 300
_FLOW_WIDTH = 76
_PLACEHOLDERS = re.compile(f"{re.escape(UNSUBSCRIBE)}|{re.escape(GREETING)}")


def _octets(line: str) -> int:
    return len(_PLACEHOLDERS.sub("x" * _PLACEHOLDER_BYTES, line).encode())


def _unix(text: str) -> str:
    return text.replace("\r\n", "\n")


def flow_text(text: str) -> tuple[str, bool]:
    """``text`` with its too-long lines wrapped as format=flowed (RFC 3676, DelSp=no): a
    wrapped line ends with a space, so a flowed-aware reader joins it back; (text, flowed?).
    Text without long lines comes back as it was."""
    lines = _unix(text).split("\n")
    if all(_octets(line) <= _LONG_LINE for line in lines):
        return text, False
    out = []
    for line in lines:
        line = line.rstrip(" ")
        if line.startswith((" ", ">", "From ")):
            line = " " + line  # space-stuffing: the reader removes one leading space
        if len(line) <= _FLOW_WIDTH and _octets(line) <= _LONG_LINE:
            out.append(line)
            continue
        words = line.split(" ")
        current = words[0]
        for word in words[1:]:
            if len(current) + 1 + len(word) > _FLOW_WIDTH and current.strip():
                out.append(current + " ")
                current = word
            else:
                current += " " + word
        out.append(current)
    return "\n".join(out), True


_TAG_OR_TEXT = re.compile(r"<[^>]*>|[^<]+")


def wrap_html(html_text: str, width: int = 500) -> str:
    """Break HTML lines that are too long for 8bit at spaces between words (outside tags),
    where a line break renders the same as the space it replaces."""
    lines = _unix(html_text).split("\n")
    out = []
    for line in lines:
        if _octets(line) <= _LONG_LINE:
            out.append(line)
            continue
        current, size = [], 0
        for match in _TAG_OR_TEXT.finditer(line):
            token = match.group()
            if token.startswith("<"):
                current.append(token)
                size += _octets(token)
                continue
            for index, word in enumerate(token.split(" ")):
                grown = _octets(word) + (1 if index else 0)
                if index and size + grown > width and size:
                    out.append("".join(current))
                    current, size = [word], _octets(word)
                else:
                    current.append((" " if index else "") + word)
                    size += grown
        out.append("".join(current))
    return "\n".join(out)


def _utf8_crlf(text: str) -> bytes:
    return _unix(text).replace("\n", "\r\n").encode()


def _base64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


class _Part:
    """One body part (text or HTML) in one transfer encoding."""

    def __init__(self, kind: str, boundary: str, text: str, *, eightbit: bool):
        self.kind = kind
        extra = ""
        ascii_only = text.isascii()
        wrapped = text
        if eightbit or ascii_only:
            if kind == "plain":
                wrapped, flowed = flow_text(text)
                extra = "; format=flowed" if flowed else ""
            else:
                wrapped = wrap_html(text)
        fits = all(_octets(line) <= 998 - 2 for line in _unix(wrapped).split("\n"))
        if fits and (ascii_only or eightbit):
            self.encoding = "7bit" if ascii_only else "8bit"
            self.text = wrapped
        else:
            extra = ""
            self.text = text
            data = text.encode()
            self.encoding = (
                "quoted-printable" if len(_qp(text)) <= len(data) * 4 // 3 * 78 // 76 + 4
                else "base64"
            )
        self.open = (
            f"--{boundary}\r\nContent-Type: text/{kind}; charset=utf-8{extra}\r\n"
            f"Content-Transfer-Encoding: {self.encoding}\r\n\r\n"
        ).encode()
        if self.encoding == "base64":
            self.split = None
        else:
            self.split = _Split(self.text, _qp if self.encoding == "quoted-printable"
                                else _utf8_crlf)

    def body(self, greeting: str, url: str) -> bytes:
        if self.split is None:
            body = _base64(personalise_str(self.text, greeting, url).encode())
            return body[:-2] if body.endswith(b"\r\n") else body
        encode = _qp if self.encoding == "quoted-printable" else str.encode
        return self.split.fill({
            UNSUBSCRIBE: url.encode("ascii"),
            GREETING: encode(greeting) if greeting else b"",
        })


def _header(name: str, value: str) -> bytes:
    try:
        value.encode("ascii")
        encoded = value
    except UnicodeEncodeError:
        encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}\r\n".encode("ascii")


def _address_header(name: str, value: str) -> bytes:
    display, address = parseaddr(value)
    if display:
        try:
            display.encode("ascii")
            display = '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
        except UnicodeEncodeError:
            display = Header(display, "utf-8").encode()
        return f"{name}: {display} <{address}>\r\n".encode("ascii")
    return f"{name}: {address}\r\n".encode("ascii")


@dataclass(slots=True)
class Recipient:
    """What personalisation needs about one recipient."""

    ledger_id: int
    subscription_id: int
    email: str
    name: str
    token: str


_date_cache: list = [0, b""]


def _date_header() -> bytes:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = f"Date: {formatdate(now, localtime=False)}\r\n".encode()
    return _date_cache[1]


class MessageTemplate:
    """Everything about an edition's message that is the same for all recipients."""

    def __init__(self, *, newsletter, subject: str, html_body: str, text_body: str,
                 message_id_prefix: str):
        self.newsletter = newsletter
        self.subject = subject
        self.html_body = html_body
        self.text_body = text_body
        self.sender = newsletter.sender
        self.envelope_from = parseaddr(self.sender)[1]
        self.host = urlsplit(settings.MASTHEAD_BASE_URL).hostname or "localhost"
        self.message_id_prefix = message_id_prefix
        self.unsub_prefix, self.unsub_suffix = unsubscribe_url_parts(newsletter)
        self.mailto = unsubscribe_mailto(newsletter)
        self.list_id = f"{newsletter.name} <{newsletter.list_id}>"
        boundary = f"=_masthead_{message_id_prefix}_{int(time.time())}"
        head = [
            _address_header("From", self.sender),
            _header("Subject", subject),
            _header("List-Id", self.list_id),
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            b"MIME-Version: 1.0\r\n",
        ]
        if newsletter.reply_to:
            head.append(_address_header("Reply-To", newsletter.reply_to))
        head.append(
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode()
        )
        self.head = b"".join(head)
        self.boundary = boundary
        self.close = f"\r\n--{boundary}--\r\n".encode()
        # Two wire forms: 8bit for servers that offer 8BITMIME (and for building a Django
        # message), else 7bit-safe (quoted-printable or base64 per part).
        self.parts = {
            eightbit: (
                _Part("plain", boundary, text_body, eightbit=eightbit),
                _Part("html", boundary, html_body, eightbit=eightbit),
            )
            for eightbit in (True, False)
        }
        self.needs_8bitmime = any(p.encoding == "8bit" for p in self.parts[True])

    @classmethod
    def for_delivery(cls, delivery) -> MessageTemplate:
        return cls(
            newsletter=delivery.edition.newsletter,
            subject=delivery.subject,
            html_body=delivery.html,
            text_body=delivery.text,
            message_id_prefix=f"edition-{delivery.edition_id}",
        )

    def unsubscribe_url(self, token: str) -> str:
        return self.unsub_prefix + token + self.unsub_suffix

    def message_id(self, recipient: Recipient) -> str:
        # Stable per recipient: a copy re-sent after a crash carries the same Message-ID,
        # which lets mail programs hide the duplicate.
        return f"<{self.message_id_prefix}.{recipient.subscription_id}@{self.host}>"

    def raw(self, recipient: Recipient, eightbit: bool = False) -> bytes:
        """The complete message, CRLF line ends, dot-stuffed for SMTP's DATA (headers never
        start with "."): send it followed by ".\r\n". For a parser, undo the stuffing.
        ``eightbit``: the server offered 8BITMIME (send ``MAIL FROM … BODY=8BITMIME`` when
        :attr:`needs_8bitmime`)."""
        url = self.unsubscribe_url(recipient.token)
        greeting = greeting_text(self.newsletter, recipient.name)
        mailto = f"mailto:{self.mailto}?subject=unsubscribe%20{quote(recipient.token)}"
        headers = (
            f"To: {recipient.email}\r\n"
            f"Message-ID: {self.message_id(recipient)}\r\n"
            f"List-Unsubscribe: <{url}>,\r\n <{mailto}>\r\n"
        ).encode("ascii")
        text, html_part = self.parts[eightbit]
        return b"".join(
            (
                _date_header(),
                headers,
                self.head,
                text.open,
                text.body(greeting, url),
                b"\r\n",
                html_part.open,
                html_part.body(html.escape(greeting), url),
                self.close,
            )
        )

    def django_message(self, recipient: Recipient, connection=None) -> EmailMultiAlternatives:
        """The same message as a Django email, for backends that take those (anymail …)."""
        url = self.unsubscribe_url(recipient.token)
        greeting = greeting_text(self.newsletter, recipient.name)
        mailto = f"mailto:{self.mailto}?subject=unsubscribe%20{quote(recipient.token)}"
        message = EmailMultiAlternatives(
            subject=self.subject,
            body=personalise_str(self.text_body, greeting, url),
            from_email=self.sender,
            to=[recipient.email],
            reply_to=[self.newsletter.reply_to] if self.newsletter.reply_to else None,
            headers={
                "Message-ID": self.message_id(recipient),
                "List-Id": self.list_id,
                "List-Unsubscribe": f"<{url}>, <{mailto}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            connection=connection,
        )
        message.attach_alternative(
            personalise_str(self.html_body, html.escape(greeting), url), "text/html"
        )
        return message
