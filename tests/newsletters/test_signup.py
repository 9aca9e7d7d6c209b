"""Sign-up through HTTP: double opt-in, consent records, privacy of re-subscribing, abuse
resistance (honeypot, rate limits, validation) and the expiry of unconfirmed sign-ups."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from masthead.core.crypto import email_index
from masthead.newsletters.models import ConsentRecord, Subscriber, Subscription
from masthead.newsletters.subscriptions import expire_unconfirmed

from .conftest import subscription_of

pytestmark = pytest.mark.django_db

URL = "/newsletter/subscribe/"


def confirm_link(message) -> str:
    return re.search(r"http://[^\s]+/newsletter/confirm/[^\s]+/", message.body).group(0)


def path_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def test_signup_confirm_records_consent_and_encrypts_the_address(client, newsletter, site):
    response = client.post(URL, {"email": "Ada@Example.org", "source": "article"})
    assert response.status_code == 200
    assert "Check your inbox" in response.content.decode()
    assert not response.cookies
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ada@example.org"]
    assert "Confirm your subscription" in message.subject
    subscription = Subscription.objects.get()
    assert subscription.status == Subscription.Status.PENDING
    # Encrypted at rest: the table holds neither the address nor its lower-case form.
    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM newsletters_subscriber")
        stored = cursor.fetchone()[0]
    assert "ada@example.org" not in stored.lower()
    assert Subscriber.objects.get().email == "ada@example.org"
    requested = ConsentRecord.objects.get(action="requested")
    assert requested.newsletter == newsletter and requested.policy_version
    assert "privacy" in requested.policy_version

    link = path_of(confirm_link(message))
    page = client.get(link)  # a link scanner's GET confirms nothing
    assert page.status_code == 200 and "Yes, subscribe me" in page.content.decode()
    assert Subscription.objects.get().status == Subscription.Status.PENDING
    done = client.post(link)
    assert done.status_code == 200
    assert '<div id="masthead-subscribed" hidden></div>' in done.content.decode()
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.CONFIRMED and subscription.confirmed_at
    confirmed = ConsentRecord.objects.get(action="confirmed")
    assert confirmed.policy_version == requested.policy_version
    assert confirmed.at >= requested.at
    assert client.post(link).status_code == 200  # idempotent


def test_resubscribing_never_duplicates_nor_reveals(client, newsletter, site):
    first = client.post(URL, {"email": "bo@example.org"})
    Subscription.objects.update(status=Subscription.Status.CONFIRMED, confirmed_at=timezone.now())
    again = client.post(URL, {"email": " BO@example.org "})
    fresh = client.post(URL, {"email": "cy@example.org"})

    def strip(response):
        html = response.content.decode().lower()
        return html.replace("bo@example.org", "X").replace("cy@example.org", "X")

    assert strip(first) == strip(again) == strip(fresh)
    assert first.status_code == again.status_code == 200
    assert Subscriber.objects.filter(email_index=email_index("bo@example.org")).count() == 1
    assert subscription_of("bo@example.org")  # exactly one
    # The owner of the address learns it, by email: nobody else does.
    assert "already subscribed" in mail.outbox[1].subject
    assert subscription_of("bo@example.org").status == "confirmed"


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "Please enter your email address."),
        ("a" * 250 + "@example.org", "at most 254 characters"),
        ("no-at-sign.example.org", "one @ between"),
        ("two@@example.org", "one @ between"),
        ("x" * 65 + "@example.org", "before the @ is too long"),
        ("bad@exa mple.org", "does not look like an email address"),
        ("victim@example.org\r\nBcc: everyone@example.org", "line breaks"),
        ("<script>alert(1)</script>@example.org", "does not look like an email address"),
        ("имя@example.org", "does not look like an email address"),
    ],
)
def test_invalid_addresses_get_a_clear_message(client, newsletter, email, message):
    response = client.post(URL, {"email": email})
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html.replace("&#x27;", "'")
    assert "<script>alert(1)</script>" not in html
    assert not Subscriber.objects.exists() and not mail.outbox


def test_unknown_newsletter_is_refused(client, newsletter):
    response = client.post(URL, {"email": "a@example.org", "newsletter": "no-such-thing"})
    assert response.status_code == 400
    assert "Please choose a newsletter from the list." in response.content.decode()


def test_reader_picks_the_newsletter(client, newsletter, russian_newsletter, site):
    client.post(URL, {"email": "a@example.org", "newsletter": ["fonar", "friday-lantern"]})
    assert set(Subscription.objects.values_list("newsletter__slug", flat=True)) == {
        "fonar", "friday-lantern"}
    assert len(mail.outbox) == 2
    # Without a choice, the page language's default newsletter.
    client.post("/ru/newsletter/subscribe/", {"email": "b@example.org"})
    assert subscription_of("b@example.org").newsletter == russian_newsletter
    assert mail.outbox[-1].subject == "Подтвердите подписку на «Фонарь по пятницам»"
    assert "Ссылка действует 7 дней." in mail.outbox[-1].body


def test_honeypot_looks_like_success_and_stores_nothing(client, newsletter):
    response = client.post(URL, {"email": "bot@example.org", "website": "http://spam.example"})
    assert response.status_code == 200 and "Check your inbox" in response.content.decode()
    assert not Subscriber.objects.exists() and not mail.outbox


def test_rate_limits_per_ip_and_per_address(client, newsletter, settings, site):
    settings.MASTHEAD_NEWSLETTER_SIGNUPS_PER_IP = 5
    settings.MASTHEAD_NEWSLETTER_SIGNUPS_PER_ADDRESS = 2
    for _ in range(4):
        assert client.post(URL, {"email": "same@example.org"}).status_code == 200
    assert len(mail.outbox) == 2  # the address gets at most 2 emails an hour
    assert client.post(URL, {"email": "other@example.org"}).status_code == 200
    blocked = client.post(URL, {"email": "third@example.org"})
    assert blocked.status_code == 429
    assert "Too many sign-ups" in blocked.content.decode()
    other_ip = client.post(URL, {"email": "third@example.org"}, REMOTE_ADDR="192.0.2.9")
    assert other_ip.status_code == 200


def test_expired_or_forged_confirmation_links(client, newsletter, site, settings):
    client.post(URL, {"email": "late@example.org"})
    link = path_of(confirm_link(mail.outbox[0]))
    forged = link[:-3] + ("A/" if link[-2] != "A" else "B/")
    assert client.post(forged).status_code == 400
    assert client.get("/newsletter/confirm/garbage/").status_code == 400
    settings.MASTHEAD_NEWSLETTER_CONFIRM_DAYS = 0
    response = client.post(link)
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert Subscription.objects.get().status == Subscription.Status.PENDING


def test_unconfirmed_signups_expire(newsletter, client, site):
    for address in ("old@example.org", "lapsed@example.org", "new@example.org"):
        client.post(URL, {"email": address})
    long_ago = timezone.now() - timedelta(days=8)
    Subscription.objects.filter(subscriber__email_index=email_index("old@example.org")).update(
        requested_at=long_ago)
    Subscription.objects.filter(subscriber__email_index=email_index("lapsed@example.org")).update(
        requested_at=long_ago, confirmed_at=long_ago - timedelta(days=100))
    assert expire_unconfirmed() == 2
    assert not Subscriber.objects.filter(email_index=email_index("old@example.org")).exists()
    lapsed = subscription_of("lapsed@example.org")
    assert lapsed.status == Subscription.Status.UNSUBSCRIBED
    assert subscription_of("new@example.org").status == "pending"


def test_cleanup_runs_as_a_periodic_job():
    from masthead.core.scheduler import JOBS

    assert "newsletters.expire_unconfirmed" in JOBS
    assert "newsletters.send_due_and_recover" in JOBS


def test_signup_block_on_the_article_page(demo, client):
    from masthead.publishing.models import ArticlePage

    article = ArticlePage.objects.filter(locale__language_code="en").first()
    response = client.get(article.url)
    html = response.content.decode()
    block = html[html.index('class="newsletter-signup"'):]
    block = block[:block.index("</aside>")]
    assert "The Friday Lantern: our free weekly newsletter" in block
    assert 'action="/newsletter/subscribe/"' in block and 'type="email"' in block
    assert 'href="/newsletter/latest/"' in block
    assert 'href="/privacy/"' in block and "Privacy Policy" in block
    assert not response.cookies
    russian = ArticlePage.objects.filter(locale__language_code="ru").first()
    ru_html = client.get(russian.url).content.decode()
    assert "«Фонарь по пятницам»: наша бесплатная еженедельная рассылка" in ru_html
    assert 'href="/ru/newsletter/latest/"' in ru_html and ">Посмотреть</a>" in ru_html


def test_form_on_a_cached_page_works_without_cookies(demo, client):
    from masthead.publishing.models import ArticlePage

    article = ArticlePage.objects.filter(locale__language_code="en").first()
    client.get(article.url)
    assert client.get(article.url)["X-Masthead-Cache"] == "hit"
    client.cookies.clear()
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post(URL, {"email": "cached@example.org"}).status_code == 200
