"""Demo campaigns: the "Support The Lantern!" banner, the end-of-article appeal "A message from
The Lantern" (two variants, in English and Russian), and an overlay and a newsletter prompt
that ship disabled. Idempotent: campaigns that already exist (by name and language) are left
as the editors changed them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from wagtail.models import Locale

from .models import Audience, Campaign, Placement, Variant

LETTER_EN = (
    "<p>Dear reader,</p>"
    "<p>Every story on this site was reported by people who live in the valley they write "
    "about. We sat through the council meetings nobody else covered, waited at the ferry "
    "landing at dawn, and read the budget line by line so that you would not have to take "
    "anyone's word for it.</p>"
    "<p>The Lantern has no owner to please and no advertisers to keep happy. That freedom "
    "has a price: salaries, travel, lawyers when someone would rather a story stayed "
    "untold. Most of that is paid for by readers like you, a few dollars at a time.</p>"
    "<p>We will never put our journalism behind a paywall, because the people with the "
    "least are often the ones who need it most. If you can, help us keep it open for "
    "everyone.</p>"
    "<p>— The editors</p>"
)
LETTER_EN_SHORT = (
    "<p>You have just read a story that took days to report and hours to check. No one "
    "paid us to write it, and no one can pay us to drop it.</p>"
    "<p>The Lantern is independent because its readers keep it that way. A small monthly "
    "contribution lets us plan the reporting the valley needs, not just the reporting we "
    "can afford this week.</p>"
    "<p>Thank you for reading — and, if you can, for standing with us.</p>"
)
LETTER_RU = (
    "<p>Дорогие читатели!</p>"
    "<p>Каждый материал на этом сайте написан людьми, которые живут там, о чём пишут. Мы "
    "ходим на заседания, о которых больше никто не рассказывает, и читаем бюджет строка за "
    "строкой, чтобы вам не приходилось верить на слово.</p>"
    "<p>У «Фонаря» нет владельца и рекламодателей. Наша работа оплачивается читателями — "
    "понемногу, но регулярно. Если можете, помогите нам оставаться открытыми для всех.</p>"
    "<p>— Редакция</p>"
)


def _campaign(name: str, locale: Locale, variants: list[dict], **fields) -> Campaign | None:
    if Campaign.objects.filter(name=name, locale=locale).exists():
        return None
    campaign = Campaign(name=name, locale=locale, **fields)
    for sort_order, variant in enumerate(variants):
        campaign.variants.add(Variant(sort_order=sort_order, **variant))
    campaign.save()
    return campaign


@transaction.atomic
def load_demo() -> None:
    outlet = settings.MASTHEAD_OUTLET_NAME
    en = Locale.objects.get_or_create(language_code="en")[0]
    ru = Locale.objects.filter(language_code="ru").first()

    banner = _campaign(
        "Support banner",
        en,
        [{"label": "A", "heading": f"Support {outlet}!"}],
        placement=Placement.BANNER,
        priority=10,
        close_days=3,
    )
    appeal = _campaign(
        "End-of-article appeal",
        en,
        [
            {
                "label": "A: letter from the editors",
                "heading": f"A message from {outlet}",
                "body": LETTER_EN,
                "suggested_ask": "monthly, from just $2",
                "default_frequency": "monthly",
                "amounts": "2, 5, 10, 20",
            },
            {
                "label": "B: shorter letter",
                "heading": f"A message from {outlet}",
                "body": LETTER_EN_SHORT,
                "suggested_ask": "monthly, from just $2",
                "default_frequency": "monthly",
                "amounts": "2, 5, 10, 20",
            },
        ],
        placement=Placement.APPEAL,
        priority=10,
        snooze_days=7,
    )
    _campaign(
        "Overlay: before you go",
        en,
        [
            {
                "label": "A",
                "heading": f"Keep {outlet} independent",
                "body": "<p>Reporting like this exists because readers pay for it. "
                "Will you join them?</p>",
                "suggested_ask": "monthly, from just $2",
                "button_label": "Support us",
            }
        ],
        placement=Placement.OVERLAY,
        enabled=False,
        skip_first_articles=3,
        max_views_per_week=1,
        close_days=14,
    )
    _campaign(
        "Newsletter prompt",
        en,
        [
            {
                "label": "A",
                "heading": "Get our free weekly newsletter, every Friday",
                "link_url": "/newsletter/",
                "button_label": "Sign up",
            }
        ],
        placement=Placement.OVERLAY,
        enabled=False,
        audience=Audience.NON_SUBSCRIBERS,
        skip_first_articles=2,
        max_views_per_week=1,
        close_days=30,
    )
    if ru is None:
        return
    if banner is not None:
        _campaign(
            "Support banner",
            ru,
            [{"label": "A", "heading": "Поддержите «Фонарь»!"}],
            placement=Placement.BANNER,
            priority=10,
            close_days=3,
            translation_key=banner.translation_key,
        )
    if appeal is not None:
        _campaign(
            "End-of-article appeal",
            ru,
            [
                {
                    "label": "A: письмо редакции",
                    "heading": "Обращение «Фонаря»",
                    "body": LETTER_RU,
                    "suggested_ask": "ежемесячно, от $2",
                    "default_frequency": "monthly",
                    "amounts": "2, 5, 10, 20",
                }
            ],
            placement=Placement.APPEAL,
            priority=10,
            translation_key=appeal.translation_key,
        )
