"""The XML sitemap: every live public page in every language."""

from wagtail.contrib.sitemaps import Sitemap
from wagtail.models import Page

from masthead.reach.hosts import on_reader_host


class AllLocalesSitemap(Sitemap):
    def items(self):
        return (
            Page.objects.live()
            .public()
            .filter(depth__gt=1)
            .order_by("path")
            .defer_streamfields()
            .specific()
        )

    def _urls(self, page, protocol, domain):
        # Wagtail writes each page's full URL on the main domain; a sitemap read on a
        # mirror or the onion address lists that host's URLs.
        urls = super()._urls(page, protocol, domain)
        for url in urls:
            url["location"] = on_reader_host(url["location"], self.request)
        return urls
