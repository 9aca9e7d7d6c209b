"""What readers are told about mirrors: the list for the /mirrors/ page and for email, the
bypass-censorship ``mirrors.json``, and the host email links point at.

Emails call :func:`email_mirror_links` once per send (an edition is rendered once; a
transactional email once) and include ``reach/email/mirrors.html`` / ``.txt`` with it; the
block is empty when there are no mirrors.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

from .hosts import mirror_origins
from .models import Mirror


def published_mirrors() -> list[Mirror]:
    """The mirrors readers see: the admin's list (active, not failing), and the hosts the
    operator set by environment (``MASTHEAD_MIRROR_HOSTS``, ``MASTHEAD_ONION_HOST``) that the
    list does not name already — they serve this very site, so they are vouched for."""
    mirrors = list(Mirror.objects.published())
    listed = {mirror.host for mirror in mirrors}
    for origin in mirror_origins():
        host = urlsplit(origin).hostname or ""
        if host and host not in listed:
            kind = Mirror.Kind.ONION if host.endswith(".onion") else Mirror.Kind.DOMAIN
            mirror = Mirror(url=f"{origin}/", kind=kind, status=Mirror.Status.UNKNOWN)
            mirror.updated_at = mirror.created_at  # (auto_now fills it only on save)
            mirrors.append(mirror)
            listed.add(host)
    return mirrors


def email_link_base(newsletter=None) -> str:
    """The base URL (no trailing slash) of links in an email: the newsletter's own link host
    when it has one, else ``MASTHEAD_EMAIL_LINK_BASE_URL`` (default ``MASTHEAD_BASE_URL``)."""
    base = (
        getattr(newsletter, "link_base_url", "")
        or settings.MASTHEAD_EMAIL_LINK_BASE_URL
        or settings.MASTHEAD_BASE_URL
    )
    return base.rstrip("/")


def rebase(content: str, base: str) -> str:
    """Point links at the main site's address in ``content`` at ``base`` instead."""
    main = settings.MASTHEAD_BASE_URL.rstrip("/")
    if not base or base == main:
        return content
    return content.replace(main + "/", base + "/")


def email_mirror_links() -> list[dict]:
    """The mirror links an email carries: [{"url", "kind", "label"}], onion last."""
    mirrors = sorted(published_mirrors(), key=lambda mirror: (mirror.is_onion, mirror.url))
    return [
        {"url": mirror.url, "kind": mirror.kind, "onion": mirror.is_onion,
         "label": mirror.get_kind_display()}
        for mirror in mirrors
    ]


def main_domain() -> str:
    host = urlsplit(settings.MASTHEAD_BASE_URL).hostname or "localhost"
    return host.removeprefix("www.")


# The bypass-censorship extension's list (OpenTechFund bypass-otf_proxy, app/mirror_sites.py
# and bcapp repo_utilities.py): version "2.0" with typed ``available_alternatives``; the v1
# keys are kept beside them because older readers of the list look only at those.
# Full URLs throughout: the list's converter (``convert_process``) keeps a value that has a
# scheme as it is, and an onion served over plain HTTP needs its "http://".
_ALTERNATIVE_TYPE = {
    Mirror.Kind.DOMAIN: "mirror",
    Mirror.Kind.CDN: "proxy",
    Mirror.Kind.STATIC: "mirror",
    Mirror.Kind.IPFS: "ipfs_node",
    Mirror.Kind.ONION: "eotk",
}


def _stamp(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if moment else ""


def mirrors_json() -> dict:
    mirrors = published_mirrors()
    alternatives = []
    for mirror in mirrors:
        alternatives.append({
            "proto": "tor" if mirror.is_onion else urlsplit(mirror.url).scheme,
            "type": "eotk" if mirror.is_onion else _ALTERNATIVE_TYPE[mirror.kind],
            "created_at": _stamp(mirror.created_at),
            "updated_at": _stamp(mirror.last_seen or mirror.updated_at),
            "url": mirror.url,
        })
    return {
        "version": "2.0",
        "sites": [{
            "main_domain": main_domain(),
            "available_alternatives": alternatives,
            "available_mirrors": [
                m.url for m in mirrors if not m.is_onion and m.kind != Mirror.Kind.IPFS
            ],
            "available_onions": [m.url for m in mirrors if m.is_onion],
            "available_ipfs_nodes": [m.url for m in mirrors if m.kind == Mirror.Kind.IPFS],
        }],
    }
