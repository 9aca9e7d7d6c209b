"""Demo newsletters: "The Friday Lantern" (English, Fridays 09:00) and a Russian weekly, a
few demo subscribers, one sent edition each (so the sign-up block's Preview link works) and a
draft for next Friday for the editor to finish and send."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from masthead.core.crypto import email_index
from masthead.publishing.models import ArticlePage

from .delivery import delivery_run, delivery_start
from .models import Edition, EditionArticle, Newsletter, Subscriber, Subscription

NEWSLETTERS = [
    {
        "slug": "friday-lantern",
        "name": "The Friday Lantern",
        "language": "en",
        "description": (
            "Hand-picked news, features and analysis from our reporters. Arrives every Friday."
        ),
        "greeting": "Hello {name},",
        "greeting_without_name": "Hello,",
    },
    {
        "slug": "fonar-po-pyatnitsam",
        "name": "Фонарь по пятницам",
        "language": "ru",
        "description": "Главное за неделю, отобранное редакцией. Приходит по пятницам.",
        "greeting": "Здравствуйте, {name}!",
        "greeting_without_name": "Здравствуйте!",
    },
]

DEMO_READERS = [("reader.one@example.org", "Anna"), ("reader.two@example.org", ""),
                ("reader.three@example.org", "Tomas")]

INTRO = {
    "en": (
        "<p>Good morning. This week the river froze early, the council opened its books and a "
        "printers' cooperative saved the valley's last letterpress. Here is what our reporters "
        "found.</p>"
    ),
    "ru": "<p>Доброе утро. Вот главное, что наши журналисты узнали за эту неделю.</p>",
}


def _articles(language: str, count: int) -> list[ArticlePage]:
    return list(
        ArticlePage.objects.live()
        .filter(locale__language_code=language)
        .order_by("-published_at")[:count]
    )


def _edition(newsletter: Newsletter, subject: str, preheader: str, articles, full_text_first):
    edition = Edition(
        newsletter=newsletter, subject=subject, preheader=preheader,
        intro=INTRO[newsletter.language],
    )
    edition.save()
    for order, article in enumerate(articles):
        EditionArticle.objects.create(
            edition=edition, article=article, sort_order=order,
            full_text=full_text_first and order == 0,
        )
    return edition


def load_demo() -> None:
    newsletters = {}
    for order, data in enumerate(NEWSLETTERS):
        newsletter, _ = Newsletter.objects.get_or_create(
            slug=data["slug"],
            defaults={**data, "is_default": True, "sort_order": order, "send_weekday": 4,
                      "timezone": "Europe/London" if data["language"] == "en"
                      else "Europe/Moscow"},
        )
        newsletters[data["language"]] = newsletter
    english = newsletters["en"]
    if Edition.objects.filter(newsletter__in=newsletters.values()).exists():
        return
    with transaction.atomic():
        now = timezone.now()
        for address, name in DEMO_READERS:
            subscriber, _ = Subscriber.objects.get_or_create(
                email_index=email_index(address), defaults={"email": address, "name": name}
            )
            Subscription.objects.get_or_create(
                subscriber=subscriber,
                newsletter=english,
                defaults={"status": Subscription.Status.CONFIRMED, "confirmed_at": now},
            )
    for language, newsletter in newsletters.items():
        articles = _articles(language, 4)
        if not articles:
            continue
        subject = (
            "Ice on the river, a council's open books and the last letterpress"
            if language == "en" else "Лёд на реке и открытые контракты"
        )
        sent = _edition(newsletter, subject, articles[0].standfirst[:200], articles, True)
        delivery = delivery_start(sent, enqueue=False)
        delivery_run(delivery.pk)
        # Shown as last week's issue: sent (and scheduled) a day ago, consistently.
        Edition.objects.filter(pk=sent.pk).update(
            sent_at=now - timedelta(days=1), scheduled_at=now - timedelta(days=1)
        )
    # A draft for the coming Friday, for the editor to finish, preview and send.
    if (articles := _articles("en", 6)[2:5]):
        draft = _edition(english, "Next Friday: what we are working on", "", articles, False)
        draft.scheduled_at = None
        draft.save()
