"""Core views: health check, robots.txt and media files."""

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.views.static import serve

from masthead.reach.hosts import reader_base_url

from .pagecache import mark_public


def health(request):
    """Liveness and database reachability, for load balancers and uptime checks."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return JsonResponse({"status": "ok"})
    except Exception:  # noqa: BLE001 - any database failure means "not healthy"
        return JsonResponse({"status": "database unavailable"}, status=503)


def robots_txt(request):
    # A mirror's robots.txt names the mirror's own sitemaps (the sitemap protocol wants the
    # sitemap on the host it describes); their pages' canonical links name the main domain.
    base = reader_base_url(request)
    body = (
        "User-agent: *\nDisallow: /admin/\nDisallow: /django-admin/\nDisallow: /search/\n"
        f"Sitemap: {base}/sitemap.xml\nSitemap: {base}/news-sitemap.xml\n"
    )
    return mark_public(HttpResponse(body, content_type="text/plain; charset=utf-8"))


def favicon(request):
    """Browsers ask for /favicon.ico on their own; send them to the real icon."""
    response = HttpResponsePermanentRedirect(static("masthead/img/favicon.svg"))
    return mark_public(response)


def media(request, path):
    response = serve(request, path, document_root=settings.MEDIA_ROOT)
    response["Cache-Control"] = "public, max-age=86400"
    return response
