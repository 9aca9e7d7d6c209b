"""Request/response middleware owned by core: security headers, CSP for previews, the
URL-driven locale and words for empty error answers."""

from __future__ import annotations

from csp.constants import SELF
from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _


class SecurityHeadersMiddleware:
    """Adds the headers Django's SecurityMiddleware does not: Permissions-Policy."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", settings.MASTHEAD_PERMISSIONS_POLICY)
        return response


class PathLocaleMiddleware:
    """Activates the language named by the URL prefix (``/ru/…``), else the default.

    Unlike Django's LocaleMiddleware it never looks at cookies or Accept-Language and never
    adds ``Vary: Accept-Language``: one URL is one page for every reader, so every reader page
    stays cacheable by a CDN.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.codes = {code for code, _name in settings.LANGUAGES}
        load_urlconf_in_default_language()

    def __call__(self, request):
        first = request.path_info.lstrip("/").split("/", 1)[0]
        language = first if first in self.codes else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = language
        try:
            response = self.get_response(request)
        finally:
            translation.deactivate()
        response.headers.setdefault("Content-Language", language)
        return response


def load_urlconf_in_default_language() -> None:
    """Import the URLconf now, under the default language, before any request activates one.

    Django imports the URLconf on the first request a process resolves, and Wagtail builds
    its admin views then: the viewsets' list columns (``LocaleColumn``'s "Locale") and edit
    form classes (a snippet chooser's "Choose newsletter") evaluate their labels at that
    moment and keep them for the life of the process. Left to the first request, a worker
    whose first visitor read ``/ru/…`` showed the English admin in Russian until restarted.
    """
    from django.urls import get_resolver

    with translation.override(settings.LANGUAGE_CODE):
        get_resolver().url_patterns  # noqa: B018  (the import is the point)


def reset_language(**kwargs) -> None:
    """``request_finished``: no language outlives the request that activated it.

    PathLocaleMiddleware deactivates on the way out; this also covers a response closed
    after it (streaming) and any code that activated a language without restoring it, so
    the next request on this thread starts from the default.
    """
    translation.deactivate()


class EmptyErrorPageMiddleware:
    """Gives an empty 4xx answer a short page in the reader's language.

    Django answers a wrong method (``require_POST`` and friends) with an empty 405, so a reader
    who presses Enter in the address bar of a form's address, or follows an old link to it,
    sees a blank page. Answers with a body (every view's own 4xx, JSON errors) and HEAD
    requests are left as they are; the status and headers (``Allow``) are kept.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            400 <= response.status_code < 500
            and request.method != "HEAD"
            and not response.streaming
            and not response.content
        ):
            if response.status_code == 405:
                title = _("This address takes forms only")
                message = _(
                    "This address receives forms sent from the site's pages and cannot be "
                    "opened as a page. Go back to the page you came from and try again."
                )
            else:
                title = _("This request could not be handled")
                message = _(
                    "The site could not handle this request (error %(status)d). Go back to the "
                    "page you came from and try again."
                ) % {"status": response.status_code}
            response.content = render_to_string(
                "4xx.html", {"title": title, "message": message}, request=request
            )
            response["Content-Type"] = "text/html; charset=utf-8"
            # CommonMiddleware (inside this one) already wrote "Content-Length: 0": a real
            # browser would read no body at all (the test client does not care).
            response["Content-Length"] = str(len(response.content))
        return response


class CSPMiddleware(BaseCSPMiddleware):
    """django-csp's middleware, letting the admin frame a page it previews.

    Reader pages may not be framed at all (``frame-ancestors 'none'``), but Wagtail renders a
    preview by running a simulated request for the page through this same middleware stack
    and shows the result in a same-origin frame of its editor.
    """

    def get_policy_parts(self, request, response, report_only=False):
        parts = super().get_policy_parts(request, response, report_only)
        if getattr(request, "is_preview", False):
            parts.replace = {**(parts.replace or {}), "frame-ancestors": [SELF]}
        return parts
