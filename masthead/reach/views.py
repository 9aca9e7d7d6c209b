"""Reader views: the mirror list as a page (in each language) and as ``/mirrors.json``.

Both are the same for every reader and cacheable; :func:`masthead.reach.health.check_mirrors`
rebuilds cached pages when the set of published mirrors changes, and so does saving a mirror
in the admin (``wagtail_hooks.py``).
"""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render

from masthead.core.pagecache import mark_public

from .mirrors import mirrors_json, published_mirrors
from .models import Mirror


def mirrors_page(request):
    mirrors = published_mirrors()
    web = [m for m in mirrors if not m.is_onion and m.kind != Mirror.Kind.IPFS]
    context = {
        "mirrors": mirrors,
        "web_mirrors": web,
        "onion_mirrors": [m for m in mirrors if m.is_onion],
        "ipfs_mirrors": [m for m in mirrors if m.kind == Mirror.Kind.IPFS and not m.is_onion],
    }
    return mark_public(render(request, "reach/mirrors.html", context))


def mirrors_list(request):
    response = JsonResponse(mirrors_json(), json_dumps_params={"indent": 2})
    response["Access-Control-Allow-Origin"] = "*"  # read by browser extensions and other sites
    return mark_public(response)
