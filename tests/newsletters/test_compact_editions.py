"""Compact non-Latin editions (issue 12, item 6): Cyrillic bodies go 8bit to a server that
offers 8BITMIME (``MAIL FROM … BODY=8BITMIME``), base64 to one that does not, never
quoted-printable's six bytes a letter; what arrives decodes back to the same text."""

from __future__ import annotations

import binascii
import re
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from masthead.newsletters.delivery import delivery_run, delivery_start
from masthead.newsletters.models import Delivery
from masthead.newsletters.rendering import (
    GREETING,
    UNSUBSCRIBE,
    MessageTemplate,
    Recipient,
    greeting_text,
    personalise_str,
    render_edition,
)

from .conftest import RecordingHandler, add_subscribers, free_port

pytestmark = pytest.mark.django_db

CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
LATIN = "abvgdeejzijklmnoprstufhccssyyyeuaABVGDEEJZIJKLMNOPRSTUFHCCSSYYYEUA"
TO_LATIN = str.maketrans(CYRILLIC, LATIN)


def template_of(newsletter, subject, html_body, text_body):
    return MessageTemplate(newsletter=newsletter, subject=subject, html_body=html_body,
                           text_body=text_body, message_id_prefix="edition-1")


def unflow(text: str) -> str:
    """Undo format=flowed (RFC 3676, DelSp=no): join soft-broken lines, unstuff spaces."""
    lines, out, current = text.replace("\r\n", "\n").split("\n"), [], ""
    for line in lines:
        line = line[1:] if line.startswith(" ") else line
        current += line
        if not line.endswith(" ") or line == "-- ":
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return "\n".join(out)


def parts(raw: bytes):
    message = message_from_bytes(raw.replace(b"\r\n..", b"\r\n."), policy=policy.default)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    return message, text, html


def expected(template, recipient):
    greeting = greeting_text(template.newsletter, recipient.name)
    url = template.unsubscribe_url(recipient.token)
    import html as html_lib

    return (personalise_str(template.text_body, greeting, url),
            personalise_str(template.html_body, html_lib.escape(greeting), url))


def same_words(a: str, b: str) -> bool:
    return re.sub(r"\s+", " ", a).strip() == re.sub(r"\s+", " ", b).strip()


@pytest.fixture
def russian(russian_newsletter, edition_factory):
    russian_newsletter.full_text = True  # whole articles: long paragraphs, lines to wrap
    russian_newsletter.save()
    edition = edition_factory(russian_newsletter, subject="Лёд на реке и открытые контракты")
    # An introduction of one long paragraph: a line far over SMTP's 998 octets in UTF-8.
    edition.intro = "<p>" + "Лёд на реке Орлин встал на две недели раньше обычного. " * 40 + "</p>"
    edition.save()
    rendered = render_edition(edition)
    assert sum(ch in CYRILLIC for ch in rendered.text) > 2000  # a real Russian edition
    assert max(len(line.encode()) for line in rendered.text.splitlines()) > 998
    return rendered


def test_the_russian_edition_is_at_most_1_4_times_the_english_one_of_the_same_length(
        russian, newsletter):
    ru = template_of(russian.newsletter, russian.subject, russian.html, russian.text)
    # The English edition of the same length: the same edition, letter for letter in Latin.
    en = template_of(newsletter, russian.subject.translate(TO_LATIN),
                     russian.html.translate(TO_LATIN), russian.text.translate(TO_LATIN))
    assert len(en.text_body) == len(ru.text_body) and len(en.html_body) == len(ru.html_body)
    reader = Recipient(1, 7, "ivan@example.org", "Иван", "tok")
    ru_8bit, en_8bit = len(ru.raw(reader, eightbit=True)), len(en.raw(reader, eightbit=True))
    assert ru_8bit <= 1.4 * en_8bit, (ru_8bit, en_8bit)
    # Without 8BITMIME: base64, well under what quoted-printable made of the same edition.
    ru_7bit = len(ru.raw(reader, eightbit=False))
    qp = sum(len(binascii.b2a_qp(body.encode(), istext=True))
             for body in (ru.text_body, ru.html_body))
    assert ru_7bit < 0.7 * qp, (ru_7bit, qp)
    ru_parts = [p.encoding for p in ru.parts[True]]
    assert ru_parts == ["8bit", "8bit"] and ru.needs_8bitmime
    assert [p.encoding for p in ru.parts[False]] == ["base64", "base64"]
    # English stays quoted-printable-free too: 7bit when it is plain ASCII.
    assert {p.encoding for p in en.parts[False]} <= {"7bit", "quoted-printable"}


@pytest.mark.parametrize("eightbit", [True, False])
def test_compact_messages_decode_back_to_the_same_text(russian, eightbit):
    template = template_of(russian.newsletter, russian.subject, russian.html, russian.text)
    reader = Recipient(1, 7, "ivan@example.org", "Иван" * 25, "t" * 80)
    raw = template.raw(reader, eightbit=eightbit)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert b"=D0=" not in raw  # no quoted-printable Cyrillic anywhere
    message, text, html = parts(raw)
    want_text, want_html = expected(template, reader)
    got_text = text.get_content()
    if text.get_param("format") == "flowed":
        got_text = unflow(got_text)
    assert got_text.replace("\r\n", "\n") == want_text.replace("\r\n", "\n")
    # HTML: the same, except that over-long lines were broken at spaces between words.
    assert same_words(html.get_content(), want_html)
    assert html.get_content().count(template.unsubscribe_url("t" * 80)) == 1
    assert message["Subject"] == "Лёд на реке и открытые контракты"


class NoEightBitHandler(RecordingHandler):
    """A server that does not offer 8BITMIME."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        responses = await super().handle_EHLO(server, session, envelope, hostname, responses)
        return [r for r in responses if "8BITMIME" not in r]


class BodyRecordingHandler(RecordingHandler):
    """Records the MAIL FROM parameters of each transaction too."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mail_options: list[list[str]] = []

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        with self.lock:
            self.mail_options.append(list(mail_options))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"


@pytest.mark.parametrize("offers_8bit", [True, False])
def test_the_pipelined_sender_sends_8bit_only_to_servers_that_offer_it(
        russian_newsletter, edition_factory, settings, offers_8bit):
    handler = BodyRecordingHandler() if offers_8bit else NoEightBitHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER = False, ""
        add_subscribers(russian_newsletter, 5, names=True)
        delivery = delivery_start(edition_factory(russian_newsletter), enqueue=False)
        report = delivery_run(delivery.pk)
    finally:
        controller.stop()
    assert report.sent == 5 and report.finished
    template = MessageTemplate.for_delivery(Delivery.objects.get(pk=delivery.pk))
    for _, data in handler.messages:
        message, text, html = parts(data.replace(b"\r\n.", b"\r\n.."))  # aiosmtpd unstuffed
        want = "8bit" if offers_8bit else "base64"
        assert text["Content-Transfer-Encoding"] == want
        assert html["Content-Transfer-Encoding"] == want
        content = text.get_content()
        content = unflow(content) if text.get_param("format") == "flowed" else content
        assert "Здравствуйте, Name" in content
        assert UNSUBSCRIBE not in content and GREETING not in html.get_content()
        assert template.unsub_prefix in html.get_content()
    if offers_8bit:
        assert handler.mail_options and all(o == ["BODY=8BITMIME"] for o in handler.mail_options)
