"""The aggregate counter endpoint readers' browsers report campaign events to.

``POST /campaigns/events/`` with ``{"events": [{"campaign": 1, "variant": 2, "event":
"impression"}, …]}`` (sent by ``campaigns.js`` with ``navigator.sendBeacon``). The view only
validates: size, JSON, shape, that every variant belongs to its campaign, the sender's
hourly budget. A batch is taken whole or refused whole with a 4xx that says why; counting
itself is :func:`masthead.campaigns.counters.count_events`. No cookie is read or set and
nothing about the sender is stored.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .counters import EVENTS, count_events, within_rate_limit
from .models import Variant

MAX_BODY = 8192
MAX_EVENTS = 50


def _error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _as_id(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**63 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def _parse(body: bytes) -> tuple[list[tuple[int, int, str]] | None, str]:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, "The body is not JSON."
    except RecursionError:  # the parser's own limit: arrays or objects nested ~1,000 deep
        return None, "The body is nested too deeply."
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list) or not events:
        return None, 'Expected {"events": [...]} with at least one event.'
    if len(events) > MAX_EVENTS:
        return None, f"At most {MAX_EVENTS} events per request."
    parsed = []
    for number, item in enumerate(events, start=1):
        if not isinstance(item, dict):
            return None, f"Event {number} is not an object."
        campaign, variant = _as_id(item.get("campaign")), _as_id(item.get("variant"))
        event = item.get("event")
        if campaign is None or variant is None:
            return None, f"Event {number} needs numeric campaign and variant ids."
        if not isinstance(event, str) or event not in EVENTS:
            return None, f"Event {number}: event must be one of {', '.join(EVENTS)}."
        parsed.append((campaign, variant, event))
    return parsed, ""


def _cross_site(request: HttpRequest) -> bool:
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        try:
            netloc = urlsplit(origin).netloc
        except ValueError:  # e.g. "http://[": not an origin any browser sends
            return True
        return netloc != request.get_host()
    return False


@csrf_exempt  # posted from cached, cookie-free pages; abuse is bounded by the rate limit
@never_cache
@require_POST
def events(request: HttpRequest) -> HttpResponse:
    """Take a batch of campaign events whole (204), or refuse it whole with a clear 4xx."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error("Bad Content-Length.")
    if length > MAX_BODY:
        return _error(f"The body is larger than {MAX_BODY} bytes.", 413)
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _error(f"The body is larger than {MAX_BODY} bytes.", 413)
    if _cross_site(request):
        return _error("Events are accepted from this site's own pages only.", 403)
    parsed, problem = _parse(body)
    if parsed is None:
        return _error(problem)
    pairs = {(campaign, variant) for campaign, variant, _event in parsed}
    known = set(
        Variant.objects.filter(id__in={v for _c, v in pairs}).values_list("campaign_id", "id")
    )
    unknown = sorted(pairs - known)
    if unknown:
        campaign, variant = unknown[0]
        return _error(f"Unknown campaign {campaign} or variant {variant}.", 404)
    if not within_rate_limit(request, len(parsed)):
        response = _error("Too many events from this address; try again later.", 429)
        response["Retry-After"] = "3600"
        return response
    count_events((variant, event) for _campaign, variant, event in parsed)
    return HttpResponse(status=204)



@csrf_exempt  # a form on a cached page, like the checkout it leads to
@require_POST
def appeal_checkout(request: HttpRequest) -> HttpResponse:
    """The appeal's form: an amount the checkout would refuse goes back to the appeal on the
    article, at the anchor of the message that says why (303); anything else goes on to the
    checkout with the same POST (307), which validates everything again."""
    from django.http import HttpResponseRedirect
    from django.urls import reverse

    from .appeal_check import amount_problem, return_anchor

    back = return_anchor(request.POST.get("return_to", ""), request.get_host())
    problem = amount_problem(request.POST) if back else None
    if problem:
        path, prefix = back
        response = HttpResponseRedirect(f"{path}#{prefix}-error-{problem}")
        response.status_code = 303
    else:
        response = HttpResponseRedirect(reverse("contributions:checkout"))
        response.status_code = 307  # the browser posts the same form to the checkout
    response["Cache-Control"] = "no-store, private, max-age=0"
    return response
