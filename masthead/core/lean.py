"""A lean request path for machine-to-machine POSTs: the payment and email webhooks.

Providers post webhooks by the thousand and read nothing but the status code, so their
requests skip what reader and staff requests need — sessions, CSRF, language, CSP, the page
cache, Wagtail's routing, authentication and two-factor checks — and the resolution of
every reader URL. :class:`LeanDispatcher` (the WSGI application, ``masthead.wsgi``) sends a
POST whose path matches ``settings.MASTHEAD_LEAN_PATHS`` to a handler with only
``settings.MASTHEAD_LEAN_MIDDLEWARE`` (the onion host's exemption and ``SecurityMiddleware``)
and a URLconf of those routes alone (``settings.MASTHEAD_LEAN_URLCONF``);
everything else goes to the ordinary handler. The views are the same functions either way
(and the test client, which always takes the full path, exercises them too). While a view
runs, ``reverse()`` uses the whole URLconf, so links in anything it sends still resolve.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.urls import set_urlconf
from django.utils.module_loading import import_string


class LeanHandler(WSGIHandler):
    """Django's WSGI handler with ``MASTHEAD_LEAN_MIDDLEWARE`` and the lean URLconf."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = [self._whole_urlconf_for_the_view]
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(settings.MASTHEAD_LEAN_MIDDLEWARE):
            handler = convert_exception_to_response(import_string(path)(handler))
        self._middleware_chain = handler

    def get_response(self, request):
        request.urlconf = settings.MASTHEAD_LEAN_URLCONF
        return super().get_response(request)

    @staticmethod
    def _whole_urlconf_for_the_view(request, view, args, kwargs):
        set_urlconf(None)  # resolved: reverse() inside the view sees every route
        return None


class LeanDispatcher:
    """WSGI: lean paths (POST only) to :class:`LeanHandler`, the rest to ``application``."""

    def __init__(self, application):
        self.application = application
        self.lean = LeanHandler()
        self.pattern = re.compile("|".join(f"(?:{p})" for p in settings.MASTHEAD_LEAN_PATHS))

    def __call__(self, environ, start_response):
        if (
            settings.MASTHEAD_LEAN_PATHS
            and environ.get("REQUEST_METHOD") == "POST"
            and self.pattern.fullmatch(environ.get("PATH_INFO", ""))
        ):
            return self.lean(environ, start_response)
        return self.application(environ, start_response)
