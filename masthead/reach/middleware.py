"""The onion address in the request cycle: advertised by ``Onion-Location``, served over HTTP.

``ReaderHostMiddleware`` sits right before Django's ``SecurityMiddleware``. On a request to
the onion host it steps over that middleware's HTTPS redirect (an onion service is
end-to-end encrypted by Tor and has no certificate; ``SECURE_REDIRECT_EXEMPT`` only matches
paths, not hosts) while keeping its other headers, and never sends HSTS there. On every
other host it adds ``Onion-Location`` to HTML reader pages, so Tor Browser offers the onion.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.middleware.security import SecurityMiddleware

from .hosts import is_onion, onion_host

# Staff pages are not advertised on the onion: the admin is supported on the main domain.
_NOT_READER_PAGES = ("/admin/", "/django-admin/", "/account/")


class ReaderHostMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response
        # Django wraps each middleware in an exception-converting function that keeps the
        # middleware itself as ``__wrapped__``.
        self.security = getattr(get_response, "__wrapped__", get_response)
        if settings.MASTHEAD_ONION_HOST and not isinstance(self.security, SecurityMiddleware):
            raise ImproperlyConfigured(
                "ReaderHostMiddleware must come right before SecurityMiddleware in MIDDLEWARE."
            )

    def __call__(self, request):
        if is_onion(request):
            return self._onion(request)
        response = self.get_response(request)
        onion = onion_host()
        if onion and _reader_page(request, response):
            response.headers.setdefault(
                "Onion-Location", f"http://{onion}{request.get_full_path()}"
            )
        return response

    def _onion(self, request):
        security = self.security
        if not isinstance(security, SecurityMiddleware):  # no onion configured at start-up
            response = self.get_response(request)
        else:
            # SecurityMiddleware without its process_request (the HTTPS redirect).
            response = security.process_response(request, security.get_response(request))
        # A proxy in front of the onion service may claim HTTPS; HSTS on an onion would
        # still pin a name that has no certificate.
        del response["Strict-Transport-Security"]
        return response


def _reader_page(request, response) -> bool:
    return (
        request.method in ("GET", "HEAD")
        and response.status_code == 200
        and response.get("Content-Type", "").startswith("text/html")
        and not request.path.startswith(_NOT_READER_PAGES)
    )
