"""Purging the shipped nginx front cache (deploy/nginx/masthead.conf) from Wagtail's purge hook.

The front cache keeps one copy of a reader page per encoding it was asked for (brotli, gzip,
identity), under the key ``"$host$request_uri $masthead_enc"``; its loopback-only purge
listener deletes the entry whose key the PURGE request computes to, the encoding coming from
the request's ``Accept-Encoding``. :class:`PurgeBackend` is Wagtail's ``HTTPBackend`` that
sends one PURGE per encoding, so a publication leaves none of the three copies behind, and
takes a 404 ("that copy was not cached") as success rather than an error to log.

Settings use it for ``MASTHEAD_CDN_PURGE_URL``; for another cache that purges every variant of
a URL at once (Varnish with ``Vary``), the two extra requests are harmless.
"""

from __future__ import annotations

import logging
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit
from urllib.request import urlopen

from wagtail.contrib.frontend_cache.backends import HTTPBackend
from wagtail.contrib.frontend_cache.backends.http import PurgeRequest

log = logging.getLogger("wagtail.frontendcache")

# What the front cache's map turns a reader's Accept-Encoding into (its cache variants).
ENCODINGS = ("br", "gzip", "identity")


class PurgeBackend(HTTPBackend):
    """Wagtail's HTTP PURGE backend, one request per cached encoding of the URL."""

    timeout = 5

    def purge(self, url: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        target = urlunsplit([self.cache_scheme, self.cache_netloc, parts.path, parts.query, ""])
        for encoding in ENCODINGS:
            request = PurgeRequest(
                url=target, headers={"Host": host, "Accept-Encoding": encoding}
            )
            try:
                urlopen(request, timeout=self.timeout).close()  # noqa: S310 (configured URL)
            except HTTPError as error:
                if error.code != 404:  # 404: this encoding was not cached
                    log.error("Couldn't purge %s (%s) from the front cache: HTTP %d",
                              url, encoding, error.code)
            except (URLError, OSError) as error:
                log.error("Couldn't purge %s (%s) from the front cache: %s",
                          url, encoding, getattr(error, "reason", error))
