"""The site's skeleton (home pages, locales, the Privacy Policy) and the demo articles."""

from __future__ import annotations

import json
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from wagtail.models import Collection, Locale, Page, Site

from masthead.core.models import NewsroomSettings

from .importer import home_for, import_file
from .models import HomePage, StandardPage

DEMO_DIR = Path(__file__).resolve().parent / "demo"

PRIVACY_EN = (
    "<p>We collect as little about you as we can. Reading our site sets no cookies and loads "
    "nothing from other companies.</p><h2>Newsletter</h2><p>If you subscribe, we keep your "
    "email address, encrypted, and the time and wording of your consent. Every edition has a "
    "one-click unsubscribe link.</p><h2>Contributions</h2><p>If you support us, our payment "
    "provider processes your card or account; we keep your email address (encrypted) and the "
    "record of your payments. Ask us and we will export or erase your data.</p>"
)
PRIVACY_RU = (
    "<p>Мы собираем о вас как можно меньше. Чтение сайта не оставляет cookie и ничего не "
    "загружает с чужих серверов.</p><p>Если вы подписались на рассылку или поддержали нас, "
    "мы храним ваш адрес в зашифрованном виде и по запросу удалим его.</p>"
)


def _tree_root() -> Page:
    """Wagtail's root page (and root collection), re-created if a flushed database lost them.

    Wagtail's migrations create both; a database emptied by ``flush`` (as transactional tests
    do) has neither, and nothing in Wagtail works without them.
    """
    if not Collection.objects.filter(depth=1).exists():
        Collection.add_root(name="Root")
    root = Page.get_first_root_node()
    if root is None:
        ContentType.objects.clear_cache()  # a flush re-created the content types
        root = Page.add_root(
            instance=Page(
                title="Root",
                slug="root",
                content_type=ContentType.objects.get_for_model(Page),
                locale=Locale.get_default(),
            )
        )
    return root


def ensure_site() -> HomePage:
    """The default-language home page as the site's root, and a home per language."""
    for code in ("en", "ru"):
        Locale.objects.get_or_create(language_code=code)
    home = HomePage.objects.filter(locale__language_code="en").first()
    if home is None:
        root = _tree_root()
        # Wagtail's placeholder "Welcome" page (a bare Page) makes way for the real home.
        for placeholder in root.get_children().filter(content_type__model="page"):
            if not placeholder.get_children().exists():
                placeholder.delete()
        home = HomePage(
            title="The Lantern",
            slug="home",
            intro="Independent news from the Orlin valley, funded by our readers.",
            locale=Locale.objects.get(language_code="en"),
        )
        root.add_child(instance=home)
        home.save_revision().publish()
        site = Site.objects.filter(is_default_site=True).first() or Site(is_default_site=True)
        base = urlsplit(settings.MASTHEAD_BASE_URL)
        site.hostname = base.hostname or "localhost"
        site.port = base.port or (443 if base.scheme == "https" else 80)
        site.root_page = home
        site.site_name = settings.MASTHEAD_OUTLET_NAME
        site.save()
    ru_home = home_for(Locale.objects.get(language_code="ru"))
    if not ru_home.live:
        ru_home.title = "Фонарь"
        ru_home.intro = "Независимые новости долины Орлин на деньги читателей."
        ru_home.save_revision().publish()
    ensure_privacy_page(home)
    return home


def ensure_privacy_page(home: HomePage) -> StandardPage:
    page = StandardPage.objects.child_of(home).filter(slug="privacy").first()
    if page is None:
        page = StandardPage(title="Privacy Policy", slug="privacy", body=PRIVACY_EN)
        home.add_child(instance=page)
        page.save_revision().publish()
        ru = page.copy_for_translation(Locale.objects.get(language_code="ru"), copy_parents=True)
        ru.title = "Политика конфиденциальности"
        ru.body = PRIVACY_RU
        ru.save_revision().publish()
    settings_obj = NewsroomSettings.load()
    if settings_obj.privacy_page_id is None:
        settings_obj.privacy_page = page
        settings_obj.save()
    return page


def load_demo_articles(progress=None):
    """Import the demo articles with publication times relative to now."""
    now = timezone.now()
    source = DEMO_DIR / "articles.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "articles.jsonl"
        with source.open(encoding="utf-8") as src, target.open("w", encoding="utf-8") as dst:
            for line in src:
                data = json.loads(line)
                age = data.pop("age_hours", 0)
                data["published_at"] = (now - timedelta(hours=age)).isoformat()
                image = data.get("lead_image")
                if image:
                    image["path"] = str(DEMO_DIR / image["path"])
                dst.write(json.dumps(data, ensure_ascii=False) + "\n")
        return import_file(target, progress=progress)
