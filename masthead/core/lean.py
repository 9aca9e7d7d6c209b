"""A lean request path for machine-to-machine POSTs: the payment and email webhooks.

Providers post webhooks by the thousand and read nothing but the status code, so their
requests skip what reader and staff requests need — sessions, CSRF, language, CSP, the page
cache, Wagtail's routing, authentication and two-factor checks — and the resolution of
every reader URL. :class:`LeanDispatcher` (the WSGI application, ``masthead.wsgi``) sends a
POST whose path a route of ``settings.MASTHEAD_LEAN_URLCONF`` matches (the webhooks,
``masthead/lean_urls.py``: the one list of them) to a handler with only
``settings.MASTHEAD_LEAN_MIDDLEWARE`` (the onion host's exemption and ``SecurityMiddleware``)
and that URLconf; everything else goes to the ordinary handler (an empty
``MASTHEAD_LEAN_URLCONF``: everything). The views are the same functions either way
(and the test client, which always takes the full path, exercises them too). While a view
runs, ``reverse()`` uses the whole URLconf, so links in anything it sends still resolve.
"""

from __future__ import annotations

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.urls import Resolver404, get_resolver, set_urlconf
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
    """WSGI: POSTs the lean URLconf routes to :class:`LeanHandler`, the rest to
    ``application``."""

    def __init__(self, application):
        self.application = application
        self.lean = LeanHandler()
        urlconf = settings.MASTHEAD_LEAN_URLCONF
        self.routes = get_resolver(urlconf) if urlconf else None

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "POST" and self._lean(environ.get("PATH_INFO", "")):
            return self.lean(environ, start_response)
        return self.application(environ, start_response)

    def _lean(self, path: str) -> bool:
        if self.routes is None:
            return False
        try:
            self.routes.resolve(path)
        except Resolver404:
            return False
        return True
