"""Wagtail's routing of a reader URL to its page, and the Site lookup, kept per process for
the current publication generation (see :mod:`masthead.core.fragments`).

Wagtail finds the Site (one query) and walks the tree from the site root one query per
level, then loads the specific page, on every request. :class:`RouteCacheMiddleware`
remembers, per generation, language, origin and path, which Site answered and which live
page the path led to, and hands both to Wagtail on the request (``_wagtail_site`` and
``_wagtail_route_for_request``, the attributes Wagtail itself caches them in), so
``wagtail.views.serve`` skips straight to serving. Everything that moves, publishes,
unpublishes or deletes a page raises the generation; Site changes do too (see
``apps.py``). Only pages found are remembered: a flood of unknown URLs cannot push them out.

The remembered page instance is shared by the requests of one generation, read-only: page
views never write to their page. Wagtail's view restrictions are still checked on every
request (its ``before_serve_page`` hook), and editors (a session) and previews are routed
afresh.
"""

from __future__ import annotations

from django.core.exceptions import DisallowedHost
from wagtail import views as wagtail_views
from wagtail.models import Page, Site

from masthead.core import fragments


class RouteCacheMiddleware:
    """Fills Wagtail's per-request site and page route from this process's memory."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if view_func is not wagtail_views.serve or request.method not in ("GET", "HEAD"):
            return None
        if fragments.request_generation(request) is None:
            return None
        try:
            request.get_host()  # only hosts Django accepts are remembered
        except DisallowedHost:
            return None
        site = fragments.cached(request, "site", lambda: Site.find_for_request(request))
        request._wagtail_site = site
        if site is None:
            return None
        # What Wagtail routes: the path after any language prefix (i18n_patterns).
        path = view_args[0] if view_args else view_kwargs.get("path", "")
        route = fragments.cached(
            request, "route", lambda: Page.route_for_request(request, path),
            vary=(path,), keep=lambda found: found is not None,
        )
        if route is not None:
            request._wagtail_route_for_request = route
        return None
