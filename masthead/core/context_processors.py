"""Template context every reader page needs: the outlet's name, sections, the privacy page."""

from django.conf import settings
from django.utils.functional import SimpleLazyObject
from django.utils.translation import get_language


def _nav_sections():
    from wagtail.models import Locale

    from masthead.publishing.models import SectionPage

    try:
        locale = Locale.objects.get(language_code=get_language())
    except Locale.DoesNotExist:
        return []
    return list(SectionPage.objects.live().public().in_menu().filter(locale=locale))


def privacy_url() -> str:
    """The URL of the Privacy Policy in the current language, or ''."""
    from .models import NewsroomSettings

    page = NewsroomSettings.load().privacy_page
    if page is None:
        return ""
    page = page.localized
    return page.url or ""


def newsroom(request):
    return {
        "outlet_name": settings.MASTHEAD_OUTLET_NAME,
        "base_url": settings.MASTHEAD_BASE_URL,
        "nav_sections": SimpleLazyObject(_nav_sections),
        "privacy_url": SimpleLazyObject(privacy_url),
    }
