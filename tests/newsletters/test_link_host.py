"""Email links that work when the site is blocked (issue 11, item 4): a newsletter's link host
(confirm, unsubscribe incl. List-Unsubscribe, articles, web version, images), the current
mirror list in every edition and confirmation, and editions in full text."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from masthead.newsletters.rendering import MessageTemplate, Recipient, render_edition
from masthead.newsletters.tokens import make_unsubscribe_token
from masthead.reach.models import Mirror

pytestmark = pytest.mark.django_db

MIRROR = "https://lantern.cdn-mirror.example"
MAIN = "http://127.0.0.1:8000"


def parts(edition, subscription_id=41):
    rendered = render_edition(edition)
    template = MessageTemplate(
        newsletter=edition.newsletter, subject=rendered.subject, html_body=rendered.html,
        text_body=rendered.text, message_id_prefix=f"edition-{edition.pk}",
    )
    token = make_unsubscribe_token(subscription_id)
    raw = template.raw(Recipient(1, subscription_id, "ann@example.org", "Ann", token))
    message = message_from_bytes(raw.replace(b"\r\n..", b"\r\n."), policy=policy.default)
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    return message, html, text, token


def links(content: str) -> list[str]:
    return re.findall(r"https?://[^\s\"<>)]+", content)


@pytest.fixture
def mirrors(db):
    return [
        Mirror.objects.create(url=f"{MIRROR}/", kind="cdn", status="ok"),
        Mirror.objects.create(url="http://lantern2examplexxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion/",
                              kind="onion"),
        Mirror.objects.create(url="https://down.example/", kind="domain", status="failing"),
    ]


def test_an_edition_on_the_link_host_carries_the_mirror_list(newsletter, edition_factory,
                                                             mirrors, settings):
    settings.MASTHEAD_NEWSLETTER_UNSUBSCRIBE_EMAIL = ""
    newsletter.link_base_url = MIRROR + "/"
    newsletter.save()
    edition = edition_factory(newsletter)
    message, html, text, token = parts(edition)
    unsubscribe = f"{MIRROR}/newsletter/unsubscribe/{token}/"
    assert message["List-Unsubscribe"].startswith(f"<{unsubscribe}>, <mailto:")
    assert f"Unsubscribe with one click: {unsubscribe}" in text and unsubscribe in html
    for item in edition.articles():
        path = item.article.get_url_parts()[2]
        assert f'href="{MIRROR}{path}"' in html and f"{MIRROR}{path}" in text
    assert f"{MIRROR}{edition.get_absolute_url()}" in text  # the web version
    assert f'src="{MIRROR}/media/' in html  # images load from the link host
    # No link in either part points at the (blocked) main site.
    assert [url for url in links(html) + links(text) if url.startswith(MAIN)] == []
    # The mirror list, in both parts, without the failing mirror.
    for part in (html, text):
        assert "Site blocked where you are? Read us at:" in part
        assert "lantern2examplexxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion" in part
        assert "down.example" not in part
    assert "(Tor Browser)" in text


def test_no_mirrors_no_block_and_links_stay_on_the_main_site(newsletter, edition_factory):
    edition = edition_factory(newsletter)
    message, html, text, token = parts(edition)
    assert "Site blocked" not in html and "Site blocked" not in text
    assert message["List-Unsubscribe"].startswith(f"<{MAIN}/newsletter/unsubscribe/{token}/>")
    assert edition.articles()[0].article.full_url in text


def test_the_email_link_setting_is_the_default_link_host(newsletter, edition_factory,
                                                        settings):
    settings.MASTHEAD_EMAIL_LINK_BASE_URL = "https://second-domain.example"
    _message, html, text, token = parts(edition_factory(newsletter))
    assert f"https://second-domain.example/newsletter/unsubscribe/{token}/" in text
    newsletter.link_base_url = MIRROR
    newsletter.save()
    _message, html, text, token = parts(edition_factory(newsletter))
    assert f"{MIRROR}/newsletter/unsubscribe/{token}/" in text  # the newsletter's own wins


def test_the_link_host_must_be_an_http_url(newsletter):
    for bad in ("javascript:alert(1)", "ftp://mirror.example/", "not a url"):
        newsletter.link_base_url = bad
        with pytest.raises(ValidationError):
            newsletter.full_clean()
    newsletter.link_base_url = "http://lantern2examplexxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion"
    newsletter.full_clean()


def test_confirmation_and_already_subscribed_use_the_link_host(client, newsletter, site,
                                                               mirrors):
    newsletter.link_base_url = MIRROR
    newsletter.save()
    client.post("/newsletter/subscribe/", {"email": "ada@example.org"})
    [confirm] = mail.outbox
    html = confirm.alternatives[0][0]
    confirm_link = re.search(rf"{re.escape(MIRROR)}/newsletter/confirm/[^\s\"<>]+/", confirm.body)
    assert confirm_link and confirm_link.group(0) in html
    assert "Site blocked where you are? Read us at:" in confirm.body
    assert f"{MIRROR}/" in html and "lantern2example" in html
    assert not [url for url in links(confirm.body) + links(html) if url.startswith(MAIN)]
    # confirm, then ask again: the "already subscribed" note's unsubscribe link
    path = confirm_link.group(0).removeprefix(MIRROR)
    client.post(path)
    client.post("/newsletter/subscribe/", {"email": "ada@example.org"})
    already = mail.outbox[-1]
    assert "already subscribed" in already.subject
    assert f"{MIRROR}/newsletter/unsubscribe/" in already.body
    assert "Site blocked where you are?" in already.body


def test_full_text_editions_carry_whole_articles(newsletter, edition_factory):
    edition = edition_factory(newsletter, full_text_first=False)
    _message, html, text, _token = parts(edition)
    article = edition.articles()[1].article
    paragraphs = [block for block in article.body if block.block_type == "paragraph"]
    last = re.sub(r"<[^>]+>", "", str(paragraphs[-1].value.__html__()))[:60]
    assert last not in text  # teasers only

    newsletter.full_text = True
    newsletter.save()
    edition.refresh_from_db()
    _message, html, text, _token = parts(edition)
    for item in edition.articles():
        body = [b for b in item.article.body if b.block_type == "paragraph"]
        first = re.sub(r"<[^>]+>", "", str(body[0].value.__html__()))[:60]
        final = re.sub(r"<[^>]+>", "", str(body[-1].value.__html__()))[:60]
        for snippet in (first, final):
            assert snippet in text
        assert 'class="body"' in html
    assert html.count('class="body"') == len(edition.articles())
    assert "<img" in html

    newsletter.email_images = False
    newsletter.save()
    edition.refresh_from_db()
    _message, html, text, _token = parts(edition)
    assert "<img" not in html and "/media/" not in html
    assert html.count('class="body"') == len(edition.articles())


def test_the_admin_suggests_mirrors_for_the_link_host(admin_client, newsletter, mirrors):
    response = admin_client.get(f"/admin/snippets/newsletters/newsletter/edit/{newsletter.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'list="mirror-url-choices"' in html
    assert f'<option value="{MIRROR}">' in html and "For readers who cannot reach the site" in html
