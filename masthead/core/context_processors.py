"""Template context every reader page needs: the outlet's name, sections, the privacy page.

The section list and the privacy link are lazy, and read the active locale, the settings row
and the view restrictions through :mod:`masthead.publishing.per_request`, so a page that also
needs them (campaigns, structured data) does not query for them again.
"""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from masthead.core.outlet import outlet_name
from masthead.reach.hosts import reader_base_url

from . import fragments


def _nav_sections(request: HttpRequest | None = None) -> list:
    from masthead.publishing.models import SectionPage
    from masthead.publishing.per_request import active_locale, public

    locale = active_locale(request)
    if locale is None:
        return []
    return list(public(SectionPage.objects.live(), request).in_menu().filter(locale=locale))


def privacy_url(request: HttpRequest | None = None) -> str:
    """The URL of the Privacy Policy in the current language, or ''."""
    from masthead.publishing.per_request import active_locale, newsroom_settings

    page = newsroom_settings(request).privacy_page
    if page is None:
        return ""
    # ``page.localized``, with the locale this request already looked up.
    locale = active_locale(request)
    if locale is not None and locale.pk != page.locale_id:
        translation = page.get_translation_or_none(locale)
        if translation is not None and translation.live:
            page = translation
    return page.get_url(request) or ""


def newsroom(request: HttpRequest) -> dict:
    return {
        "outlet_name": outlet_name(),
        # The host the reader came in on: a mirror's pages link to the mirror.
        "base_url": reader_base_url(request),
        # Shared by every page of a generation (masthead.core.fragments).
        "nav_sections": SimpleLazyObject(
            lambda: fragments.cached(request, "nav-sections", lambda: _nav_sections(request))
        ),
        "privacy_url": SimpleLazyObject(
            lambda: fragments.cached(request, "privacy-url", lambda: privacy_url(request))
        ),
    }
