"""A new reader in real Chromium: signs up from an article page (a cached page, no cookies),
confirms from the email, reads the latest edition through the Preview link, then leaves with
one click and changes their mind — all without a CSP violation or a foreign request."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail

from masthead.newsletters.tokens import make_unsubscribe_token
from masthead.publishing.models import ArticlePage

from .conftest import subscription_of

pytestmark = pytest.mark.browser

WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def test_sign_up_confirm_preview_unsubscribe(transactional_db, demo, live_server, page):
    origin = urlsplit(live_server.url).netloc
    foreign = []
    page.on("request", lambda r: foreign.append(r.url)
            if urlsplit(r.url).netloc not in (origin, "") else None)
    page.add_init_script(WATCH_CSP)
    article = ArticlePage.objects.get(external_id="demo-002")
    page.goto(live_server.url + article.url)
    block = page.locator(".newsletter-signup")
    assert "The Friday Lantern: our free weekly newsletter" in block.locator("h2").inner_text()
    assert page.context.cookies() == []

    block.get_by_label("Your email address").fill("new.reader@example.org")
    block.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Check your inbox"
    assert page.context.cookies() == []

    confirmation = mail.outbox[-1]
    assert confirmation.to == ["new.reader@example.org"]
    path = re.search(r"https?://[^/\s]+(/newsletter/confirm/\S+/)", confirmation.body).group(1)
    page.goto(live_server.url + path)
    page.get_by_role("button", name="Yes, subscribe me").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "You are subscribed"
    assert page.locator("#masthead-subscribed").count() == 1
    assert subscription_of("new.reader@example.org").status == "confirmed"
    page.get_by_role("link", name="Read the latest edition now").click()
    page.wait_for_load_state()
    edition_url = page.url
    assert "/newsletter/friday-lantern/" in edition_url
    assert page.locator(".edition-item h2").count() >= 3

    # The Preview link in the sign-up block leads to the same edition.
    page.goto(live_server.url + article.url)
    page.locator(".newsletter-signup").get_by_role("link", name="Preview").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == page.title().split(" — ")[0]
    assert page.locator(".edition-item").count() >= 3

    token = make_unsubscribe_token(subscription_of("new.reader@example.org").pk)
    page.goto(f"{live_server.url}/newsletter/unsubscribe/{token}/")
    # Following the link changes nothing (mail scanners follow links); the button does.
    assert page.locator("h1").inner_text() == "Unsubscribe?"
    assert subscription_of("new.reader@example.org").status == "confirmed"
    page.get_by_role("button", name="Yes, unsubscribe me").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "You are unsubscribed"
    assert subscription_of("new.reader@example.org").status == "unsubscribed"
    page.get_by_role("button", name="Subscribe me again").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "You are subscribed"
    assert subscription_of("new.reader@example.org").status == "confirmed"

    assert foreign == []
    assert page.evaluate("window.__cspViolations") == []


def test_validation_message_in_the_browser(transactional_db, demo, live_server, page):
    page.goto(live_server.url + "/newsletter/")
    page.get_by_label("Your email address").fill("someone@exa mple.org")
    # Bypass the browser's own type=email check to see the server's message.
    page.evaluate("document.querySelector('#signup-email').type = 'text'")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    assert "does not look like an email address" in page.locator(".error").first.inner_text()
