"""Request/response middleware owned by core: security headers, CSP for previews and the
URL-driven locale."""

from __future__ import annotations

from csp.constants import SELF
from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from django.conf import settings
from django.utils import translation


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
