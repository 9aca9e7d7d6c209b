"""No 5xx from any URL a stranger can reach (issue 8, item 4).

The routes are discovered from the URLconf, so a route added later is walked without
touching this file; only the staff-only prefixes in ``STAFF_ONLY`` are left out. Each route
is then asked, by Hypothesis, with every HTTP method and with hostile path parts, query
strings, headers and bodies: wrong types and shapes, extreme sizes and depths, bad
encodings, out-of-range numbers, next to real tokens and ids from the demo content so that
the deeper code runs too. Every answer must be below 500, and a 4xx that a person could see
in a browser (a link followed, a form posted) must say something in words.

CI runs a fixed, derandomized budget (``HYPOTHESIS_PROFILE`` unset). To hunt for new bugs,
run ``HYPOTHESIS_PROFILE=deep ./dev test tests/test_hostile_input.py`` (many more examples,
still derandomized so any failure reproduces).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import string
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import quote, urlencode

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import LocalePrefixPattern, RegexPattern, RoutePattern
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.django_db

# Staff-only URL prefixes: everything under them needs a login (admin, Django admin, the
# two-factor account pages, Wagtail documents). Everything else is walked.
STAFF_ONLY = ("admin/", "django-admin/", "account/", "documents/")

# Routes spoken to by machines (providers, ESPs, browsers' beacons, feed readers): their 4xx
# answers need not be pages for people.
MACHINE_ROUTES = ("support/webhooks/", "anymail/", "campaigns/events/")

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "6")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile(
    "deep",
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "150")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# --- the routes ------------------------------------------------------------------------------


@dataclass
class Route:
    """One URL pattern as a list of pieces: literal text, or a parameter to fill in."""

    pieces: list  # str (literal) | tuple[str, str] (converter, name) | re.Pattern | "<lang>"
    name: str
    text: str = field(default="")

    @property
    def literal_prefix(self) -> str:
        out = ""
        for piece in self.pieces:
            if piece == LANG:
                continue
            if not isinstance(piece, str):
                break
            out += piece
        return out

    @property
    def is_machine(self) -> bool:
        return self.literal_prefix.startswith(MACHINE_ROUTES)


LANG = "<lang>"
_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


def _pieces(pattern) -> list:
    if isinstance(pattern, LocalePrefixPattern):
        return [LANG]
    if isinstance(pattern, RoutePattern):
        route, pieces, position = str(pattern._route), [], 0
        for match in _PARAM.finditer(route):
            pieces.append(route[position : match.start()])
            pieces.append((match["converter"] or "str", match["name"]))
            position = match.end()
        pieces.append(route[position:])
        return [p for p in pieces if p != ""]
    if isinstance(pattern, RegexPattern):
        regex = pattern._regex
        plain = regex.lstrip("^").rstrip("$")
        if re.fullmatch(r"[\w\-./]*", plain):
            return [plain] if plain else []
        return [re.compile(regex.lstrip("^").rstrip("$").removesuffix("\\Z"))]
    raise TypeError(f"unknown URL pattern type {type(pattern)!r}")


def public_routes() -> list[Route]:
    """Every pattern of the URLconf a stranger can reach, depth first."""
    routes: list[Route] = []

    def walk(resolver: URLResolver, prefix: list) -> None:
        for entry in resolver.url_patterns:
            pieces = prefix + _pieces(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry, pieces)
            elif isinstance(entry, URLPattern):
                route = Route(pieces, entry.name or entry.lookup_str)
                if route.literal_prefix.startswith(STAFF_ONLY):
                    continue
                route.text = "".join(
                    p if isinstance(p, str) else f"<{p[1]}>" if isinstance(p, tuple)
                    else f"<re:{p.pattern}>" for p in pieces
                )
                routes.append(route)

    walk(get_resolver(), [])
    return routes


ROUTES = public_routes()


def test_the_walk_finds_the_public_surface():
    """The discovery works: the routes the issue names are all in the walk."""
    texts = {route.text for route in ROUTES}
    for expected in (
        "<lang>search/",
        "<lang>feeds/rss/",
        "sitemap.xml",
        "<lang>newsletter/subscribe/",
        "<lang>newsletter/confirm/<token>/",
        "<lang>newsletter/unsubscribe/<token>/",
        "<lang>newsletter/r/<edition>/<link>/",
        "<lang>support/checkout/",
        "<lang>support/checkout/<token>/return/",
        "<lang>support/sandbox/<token>/",
        "<lang>support/manage/<token>/",
        "<lang>support/webhooks/<provider_key>/",
        "campaigns/events/",
    ):
        assert expected in texts, sorted(texts)
    assert any(text.startswith("anymail/") for text in texts)
    assert any("<re:" in text and text.startswith("<lang>") for text in texts)  # Wagtail pages
    assert not any(text.startswith(STAFF_ONLY) for text in texts)


# --- real content to aim at ------------------------------------------------------------------


@dataclass
class Samples:
    """Real values from the demo content, so the fuzzing reaches past the 404s."""

    page_paths: list[str]
    by_name: dict[str, list[str]]
    variant_pairs: list[tuple[int, int]]


def build_samples() -> Samples:
    from masthead.campaigns.models import Variant
    from masthead.contributions import giving
    from masthead.contributions import tokens as giving_tokens
    from masthead.contributions.models import Contribution, Donor
    from masthead.newsletters import tokens
    from masthead.newsletters.models import Edition, EditionLink, Newsletter, Subscription
    from masthead.publishing.models import ArticlePage, SectionPage

    page_paths = ["", "ru/"]
    for page in list(ArticlePage.objects.live()[:3]) + list(SectionPage.objects.live()[:2]):
        url = page.get_url() or ""
        page_paths.append(url.lstrip("/"))
    editions = list(Edition.objects.all()[:2])
    for edition in editions:
        for link in (
            "https://example.org/story",
            "https://example.org/other",
        ):
            EditionLink.objects.get_or_create(edition=edition, url=link)
    links = list(EditionLink.objects.all()[:4])
    subscriptions = list(Subscription.objects.select_related("subscriber")[:2])
    contributions = list(Contribution.objects.all()[:3])
    for provider, frequency in (("sandbox", "once"), ("stripe", "monthly"), ("paypal", "once")):
        pending, _url = giving.start_contribution(
            frequency=frequency, amount=500, currency="USD", provider_key=provider,
            name="", is_public=False, message="", source="hostile",
            base_url="http://testserver",
        )  # fmt: skip
        contributions.append(pending)
    donors = list(Donor.objects.all()[:2])
    by_name = {
        "token": [tokens.make_confirm_token(s) for s in subscriptions]
        + [tokens.make_unsubscribe_token(s.pk) for s in subscriptions]
        + [giving_tokens.checkout_token(c) for c in contributions]
        + [giving_tokens.manage_token(d) for d in donors],
        "provider_key": ["sandbox", "stripe", "paypal", "btcpay", "bank"],
        "slug": [p.slug for p in SectionPage.objects.all()[:2]],
        "newsletter": [n.slug for n in Newsletter.objects.all()[:2]],
        "edition": [str(e.pk) for e in editions],
        "pk": [str(e.pk) for e in editions],
        "link": [str(link.pk) for link in links],
        # Email providers (anymail's names) and their webhook kinds.
        "provider": ["mailgun", "postmark", "sendgrid", "amazon_ses", "brevo", "mandrill",
                     "sparkpost", "resend", "mailjet", "postal", "unisender_go", "esp"],
        "kind": ["tracking", "inbound", "inbound_mime"],
    }
    by_name["slug"] += [e.slug for e in editions]
    variant_pairs = list(Variant.objects.values_list("campaign_id", "id")[:4])
    return Samples(page_paths, by_name, variant_pairs)


# --- hostile values --------------------------------------------------------------------------

ODD_NUMBERS = [
    "0", "-1", "99999999999999999999", "9223372036854775807", "9223372036854775808",
    "18446744073709551616", "1e309", "NaN", "0x10", "１２", "1" * 400,
]  # fmt: skip
ODD_TEXT = [
    "", " ", "..", "../../etc/passwd", "%00", "\x00", "null", "None", "true", "[]", "{}",
    "' OR 1=1 --", '"unterminated', "\"a\" 'b' \"", "a\"b'c", "(((", ")))", "AND OR NOT",
    "-", "+", "*", "\\", "<script>alert(1)</script>", "Приветствие", "例え", "🧨" * 20,
    "\ud800", "\u202e", "a" * 5000, "x" * 70000,
]  # fmt: skip
# Search syntax that Wagtail's query parsers and the database backends read specially.
SEARCH_ALPHABET = string.ascii_letters[:6] + "\"'()*:-+!&|^~<>@%\\/ " + "ёж"
SEARCH_WORDS = ["AND", "OR", "NOT", "title:", ":", '"', "''", "*", "-", "&", "|", "!", "()"]

text = st.text(max_size=40)
odd_text = st.one_of(st.sampled_from(ODD_TEXT), st.sampled_from(ODD_NUMBERS), text)
search_query = st.one_of(
    st.text(alphabet=SEARCH_ALPHABET, max_size=30),
    st.lists(st.one_of(st.sampled_from(SEARCH_WORDS), st.text(max_size=5)), max_size=8).map(
        " ".join
    ),
    odd_text,
)


def _utf8(value: str) -> bytes:
    """UTF-8, lone surrogates too (as their raw bytes: invalid UTF-8 on the wire)."""
    return value.encode("utf-8", "surrogatepass")


def path_value(samples: Samples, converter: str, name: str) -> st.SearchStrategy[str]:
    real = samples.by_name.get(name) or []
    hostile = [odd_text, st.sampled_from(ODD_NUMBERS)]
    if converter == "int":
        hostile.append(st.integers(min_value=0, max_value=10**30).map(str))
    if real:
        real_st = st.sampled_from(real)
        # Real values, and real values slightly damaged (a mail client's line wrap, a typo).
        hostile += [real_st, real_st, real_st.map(lambda v: v[:-1]), real_st.map(lambda v: v + "x")]
    return st.one_of(*hostile)


def encode_path(value: str) -> str:
    """Percent-encode a path part as a browser would (unicode as UTF-8; lone surrogates and
    bytes that are not UTF-8 as raw percent escapes)."""
    return quote(_utf8(value), safe="")


@st.composite
def url_path(draw, route: Route, samples: Samples) -> str:
    parts: list[str] = []
    for piece in route.pieces:
        if piece == LANG:
            parts.append(draw(st.sampled_from(["", "", "ru/"])))
        elif isinstance(piece, str):
            parts.append(piece)
        elif isinstance(piece, tuple):
            converter, name = piece
            value = draw(path_value(samples, converter, name))
            parts.append(encode_path(value))
        else:  # a regular expression (Wagtail's page route, media files)
            if "((?:" in piece.pattern:  # Wagtail's serve: real page paths, or made-up ones
                value = draw(
                    st.one_of(
                        st.sampled_from(samples.page_paths),
                        st.from_regex(piece, fullmatch=True).filter(lambda v: len(v) < 300),
                    )
                )
                parts.append(quote(_utf8(value), safe="/"))
            else:
                value = draw(st.one_of(odd_text, st.sampled_from(["../settings.py", "x/../../"])))
                parts.append(quote(_utf8(value), safe="/"))
    path = "/" + "".join(parts)
    # Bad encodings and odd shapes on top of any path, now and then.
    suffix = draw(st.sampled_from(["", "", "", "", "%ff%fe", "%", "%zz", "//", "/.", ";x=1"]))
    return path + suffix


FORM_FIELDS = [
    "email", "name", "newsletters", "newsletter", "source", "website", "language", "amount",
    "custom_amount", "currency", "frequency", "provider", "public", "message", "action",
    "plan", "token", "q", "csrfmiddlewaretoken", "events",
]  # fmt: skip
ACTIONS = ["complete", "fail", "cancel", "change", "resubscribe", "unsubscribe", "", "x"]

form_value = st.one_of(
    odd_text,
    st.sampled_from(ACTIONS),
    st.sampled_from(["once", "monthly", "annual", "USD", "EUR", "JPY", "sandbox", "stripe"]),
    st.sampled_from(["reader@example.org", "a@b", "@", "x" * 300 + "@example.org"]),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
)
form_body = st.lists(
    st.tuples(st.one_of(st.sampled_from(FORM_FIELDS), text), form_value), max_size=12
).map(lambda pairs: urlencode([(_utf8(k), _utf8(v)) for k, v in pairs]).encode("ascii"))

json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@st.composite
def events_json(draw, samples: Samples) -> bytes:
    """The counter endpoint's own shape, with any value of any type in any slot."""
    pairs = samples.variant_pairs or [(1, 1)]
    slot = st.one_of(
        json_value,
        st.sampled_from([c for c, _v in pairs] + [v for _c, v in pairs]),
        st.sampled_from(
            [10**20, -1, 0, 2**63, 2**64, 1.5, "1", "１", " 1", "99999999999999999999"]
        ),
        st.sampled_from(["impression", "click", "dismiss", "conversion", ""]),
    )
    event = st.dictionaries(
        st.sampled_from(["campaign", "variant", "event", "x"]), slot, max_size=4
    )
    events = st.one_of(st.lists(event, max_size=6), json_value)
    document = draw(
        st.one_of(
            st.fixed_dictionaries({"events": events}),
            json_value,
            st.lists(st.fixed_dictionaries({"events": events}), max_size=2),
        )
    )
    return json.dumps(document, allow_nan=True).encode()


def deep_json(depth: int, opener: str, closer: str, prefix: str = "", suffix: str = "") -> bytes:
    return (prefix + opener * depth + closer * depth + suffix).encode()


DEEP = [
    # Deeper than any parser's recursion limit, yet small enough to pass size checks (8 KB).
    deep_json(3_000, "[", "]"),
    deep_json(1_500, '{"a":', "}", suffix="").replace(b'{"a":}', b'{"a":1}'),
    deep_json(2_000, "[", "]", '{"events":', "}"),
    deep_json(1_000, '{"events":[', "]}"),
    # Very deep: 100,000 levels.
    deep_json(100_000, "[", "]"),
    deep_json(100_000, "[", ""),  # unclosed
]
HUGE = [
    b"email=" + b"a" * 3_000_000,
    b'{"events": [' + b'{"campaign": 1, "variant": 1, "event": "impression"},' * 60_000 + b"{}]}",
    b"&".join(b"f%d=1" % n for n in range(5_000)),  # more fields than Django takes
]


@st.composite
def body_and_type(draw, route: Route, samples: Samples) -> tuple[bytes, str | None]:
    # Each route gets mostly the kind of body it expects, and some of every other kind.
    if route.is_machine:
        kinds = ["json", "events", "events", "deep", "deep", "bytes", "form", "huge", "none"]
    else:
        kinds = ["form", "form", "form", "none", "multipart", "json", "bytes", "huge", "deep"]
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        body, content_type = b"", None
    elif kind == "form":
        body, content_type = draw(form_body), "application/x-www-form-urlencoded"
    elif kind == "json":
        body, content_type = json.dumps(draw(json_value)).encode(), "application/json"
    elif kind == "events":
        body, content_type = draw(events_json(samples)), "application/json"
    elif kind == "deep":
        body, content_type = draw(st.sampled_from(DEEP)), "application/json"
    elif kind == "huge":
        body = draw(st.sampled_from(HUGE))
        content_type = "application/json" if body.startswith(b"{") else (
            "application/x-www-form-urlencoded"
        )
    elif kind == "bytes":
        body = draw(
            st.one_of(st.binary(max_size=200), st.sampled_from([b"\xff\xfe\x00", b"email=%ff\xff"]))
        )
        content_type = draw(
            st.sampled_from(["application/x-www-form-urlencoded", "application/json"])
        )
    else:
        boundary = "b0undary"
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n"
            f"{draw(odd_text)}\r\n--{boundary}--\r\n"
        ).encode("utf-8", "surrogatepass")
        content_type = f"multipart/form-data; boundary={boundary}"
    # Now and then the Content-Type lies or is malformed.
    content_type = draw(
        st.one_of(
            st.just(content_type),
            st.just(content_type),
            st.just(content_type),
            st.sampled_from(
                [
                    "multipart/form-data",
                    "multipart/form-data; boundary=",
                    'multipart/form-data; boundary="',
                    "application/json; charset=nope",
                    "application/x-www-form-urlencoded; charset=utf-16",
                    "application/x-www-form-urlencoded; charset=",
                    "text/plain",
                    ";;;",
                    "é/ü",
                ]
            ),
        )
    )
    return body, content_type


SIGNATURE_HEADERS = [
    "Stripe-Signature", "Paypal-Transmission-Id", "Paypal-Transmission-Sig",
    "Paypal-Transmission-Time", "Paypal-Cert-Url", "Paypal-Auth-Algo", "Btcpay-Sig",
    "Authorization", "X-Mailgun-Signature", "X-Postmark-Signature",
    "X-Twilio-Email-Event-Webhook-Signature",
]  # fmt: skip
OTHER_HEADERS = [
    "Accept", "Accept-Language", "Cookie", "Origin", "Referer", "Sec-Fetch-Site",
    "X-Forwarded-For", "X-Forwarded-Proto", "X-Requested-With", "User-Agent", "If-None-Match",
    "If-Modified-Since", "Range", "Host", "X-Forwarded-Host",
]  # fmt: skip
ODD_HEADER_VALUES = [
    "", "t=", "t=abc,v1=", "t=99999999999999999999,v1=00", "t=-1,v1=zz,v0=", ",,,,", "=",
    "sha256=", "sha256=zz", "Basic", "Basic !!!", "Basic " + "QQ==" * 3, "Bearer ",
    "Digest a=\"", "SHA256withRSA", "https://evil.example/cert.pem", "file:///etc/passwd",
    "2024-13-45T99:99:99Z", "null", "sessionid=x; csrftoken=\x7f", "bytes=999999999999-",
    "1.2.3.4, , ::1, garbage", "unknown", "[::1]:80, 10.0.0.1", "http://evil.example",
    "cross-site", "x" * 6000,
    "http://[", "http://[::1", "https://a:b@[x]/", "http://testserver:99999999999", "//",
    "testserver", "testserver:99999999999", "[::1", "evil.example", "a b", "testserver.",
]  # fmt: skip
# Header values reach Django as latin-1 text (that is how WSGI hands over raw bytes).
latin1_text = st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")).map(
    lambda b: b.decode("latin-1")
)
header_value = st.one_of(
    st.sampled_from(ODD_HEADER_VALUES),
    latin1_text,
    # UTF-8 text as a server hands it over: its bytes read as latin-1.
    odd_text.map(lambda v: v.encode("utf-8", "surrogatepass").decode("latin-1")).map(
        lambda v: v.replace("\r", "").replace("\n", "")
    ),
)
headers_st = st.dictionaries(
    st.sampled_from(SIGNATURE_HEADERS + OTHER_HEADERS), header_value, max_size=5
)


@st.composite
def query_string(draw, route: Route) -> str:
    keys = st.one_of(
        st.sampled_from(
            ["q", "page", "amount", "currency", "frequency", "token", "next", "p", "PayerID",
             "subscription_id", "ba_token", "session_id", "provider", "source"]
        ),
        text,
    )
    values = search_query if route.text.endswith("search/") else odd_text
    pairs = draw(st.lists(st.tuples(keys, values), max_size=4))
    encoded = urlencode([(_utf8(k), _utf8(v)) for k, v in pairs])
    raw = draw(st.sampled_from(["", "", "", "&&==&", "q=%ff%fe", "%zz=%", "q=" + "a" * 9000]))
    return "&".join(part for part in (encoded, raw) if part)


@dataclass
class HostileRequest:
    method: str
    path: str
    query: str
    body: bytes
    content_type: str | None
    headers: dict[str, str]
    content_length: str | None

    def __repr__(self) -> str:  # keep Hypothesis' falsifying example readable
        body = self.body if len(self.body) < 300 else self.body[:300] + b"..."
        return (
            f"{self.method} {self.path}?{self.query[:300]} content_type={self.content_type!r} "
            f"content_length={self.content_length!r} headers={self.headers!r} body={body!r}"
        )


@st.composite
def hostile_request(draw, route: Route, samples: Samples) -> HostileRequest:
    # Mostly the methods that reach the views' code; the others now and then (the plain sweep
    # tries each of them on every route).
    method = draw(st.sampled_from(["POST"] * 4 + ["GET"] * 3 + list(METHODS)))
    body, content_type = draw(body_and_type(route, samples))
    # Content-Length lies: numbers only (gunicorn refuses anything else before Django).
    content_length = draw(
        st.one_of(
            st.none(),
            st.none(),
            st.none(),
            st.sampled_from(["0", "1", "-1", "99999999999999999999", str(len(body) + 10)]),
        )
    )
    return HostileRequest(
        method=method,
        path=draw(url_path(route, samples)),
        query=draw(query_string(route)),
        body=body,
        content_type=content_type,
        headers=draw(headers_st),
        content_length=content_length,
    )


# --- sending and judging ---------------------------------------------------------------------


class EOFStream:
    """wsgi.input as a real socket behaves: short reads at the end, never an error."""

    def __init__(self, data: bytes) -> None:
        import io

        self._stream = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._stream.readline(size)


_senders = itertools.count(1)


def send(client: Client, request: HostileRequest):
    # Each request from its own address, as strangers' are: the per-address rate limits must
    # not hide the code behind them (and clearing the caches between requests costs more).
    n = next(_senders)
    extra: dict[str, str | EOFStream] = {
        "wsgi.input": EOFStream(request.body),
        "REMOTE_ADDR": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
    }
    if request.content_type is not None:
        extra["CONTENT_TYPE"] = request.content_type
    extra["CONTENT_LENGTH"] = (
        request.content_length if request.content_length is not None else str(len(request.body))
    )
    for name, value in request.headers.items():
        extra["HTTP_" + name.upper().replace("-", "_")] = value
    return client.generic(
        request.method,
        request.path + ("?" + request.query if request.query else ""),
        data=b"",
        **extra,
    )


_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)


def words_in(response) -> str:
    if getattr(response, "streaming", False):
        return "streamed"
    body = response.content.decode(response.charset or "utf-8", "replace")
    if "json" in response.get("Content-Type", ""):
        return body
    return " ".join(unescape(_TAGS.sub(" ", body)).split())


def a_person_could_see(route: Route, request: HostileRequest) -> bool:
    """A link followed or a form posted in a browser (not a machine endpoint, not HEAD)."""
    if route.is_machine:
        return False
    if request.method == "GET":
        return True
    form_types = ("application/x-www-form-urlencoded", "multipart/form-data")
    return request.method == "POST" and (request.content_type or "").startswith(form_types)


def check(route: Route, request: HostileRequest, response) -> None:
    assert response.status_code < 500, (
        f"{response.status_code} from {route.text} for {request!r}\n"
        f"{words_in(response)[:500]}"
    )
    if 400 <= response.status_code < 500 and a_person_could_see(route, request):
        said = words_in(response)
        assert re.search(r"\w{2,}", said), (
            f"{response.status_code} from {route.text} with no words for a person: "
            f"{request!r}"
        )


# --- the tests -------------------------------------------------------------------------------


def provider_settings(stripe, paypal) -> dict:
    """Every payment provider configured (against local stand-ins), tasks run at once."""
    return {
        "TASKS": {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}},
        "MASTHEAD_PAYMENT_PROVIDERS": {
            "sandbox": {"BACKEND": "masthead.contributions.providers.sandbox.SandboxProvider"},
            "stripe": {"BACKEND": "masthead.contributions.providers.stripe.StripeProvider"},
            "paypal": {"BACKEND": "masthead.contributions.providers.paypal.PayPalProvider"},
        },
        "STRIPE_SECRET_KEY": stripe.secret_key,
        "STRIPE_WEBHOOK_SECRET": "whsec_hostile",
        "STRIPE_API_BASE": stripe.url,
        "PAYPAL_CLIENT_ID": paypal.client_id,
        "PAYPAL_CLIENT_SECRET": paypal.secret,
        "PAYPAL_WEBHOOK_ID": "WH-hostile",
        "PAYPAL_API_BASE": paypal.url,
        "PAYPAL_PRODUCT_ID": "",
        "MASTHEAD_NEWSLETTER_CLICK_COUNTS": True,
        "MASTHEAD_BASE_URL": "http://testserver",
        "MASTHEAD_BEHIND_PROXY": True,  # X-Forwarded-For, hostile ones too, is read
    }


@pytest.fixture(scope="module")
def hostile_world(django_db_setup, django_db_blocker):
    """The site as a stranger finds it: demo content, every payment provider configured,
    pending checkouts at each. Built once for the module inside a transaction rolled back at
    its end (each test runs in a savepoint within it): per route it would cost minutes."""
    import importlib

    from django.db import transaction
    from django.test import override_settings

    from masthead.core.management.commands.setup import DEMO_APPS
    from masthead.publishing.demo import ensure_site, load_demo_articles
    from tests.contributions.standins import PayPalStandIn, StripeStandIn

    stripe, paypal = StripeStandIn(), PayPalStandIn()
    overrides = override_settings(**provider_settings(stripe, paypal))
    overrides.enable()
    try:
        with django_db_blocker.unblock():
            outer = transaction.atomic()
            outer.__enter__()
            try:
                ensure_site()
                report = load_demo_articles()
                assert not report.errors, report.errors
                for app in DEMO_APPS:
                    try:
                        module = importlib.import_module(f"{app}.demo")
                    except ModuleNotFoundError:
                        continue
                    module.load_demo()
                yield build_samples()
            finally:
                transaction.set_rollback(True)
                outer.__exit__(None, None, None)
    finally:
        overrides.disable()
        stripe.close()
        paypal.close()


@pytest.fixture
def world(hostile_world, db):
    return hostile_world


def _client() -> Client:
    return Client(raise_request_exception=False)


def plain_path(route: Route, samples: Samples) -> str:
    """The route filled with real values (or a plain ``1``), in English."""
    parts = []
    for piece in route.pieces:
        if piece == LANG:
            continue
        if isinstance(piece, str):
            parts.append(piece)
        elif isinstance(piece, tuple):
            parts.append(quote((samples.by_name.get(piece[1]) or ["1"])[0], safe=""))
        elif "((?:" in piece.pattern:
            parts.append(samples.page_paths[-1])
        else:
            parts.append("missing.jpg")
    return "/" + "".join(parts)


# Hostile requests every route gets in every run, whatever Hypothesis draws: the shapes that
# have answered 500 somewhere before, so CI's small budget still catches their return.
CATALOGUE = [
    ("POST", deep_json(3_000, "[", "]"), "application/json", {}, None),
    ("POST", deep_json(2_000, "[", "]", '{"events":', "}"), "application/json", {}, None),
    ("POST", b'{"events": [{"campaign": 1, "variant": 1, "event": {}}]}', "application/json",
     {}, None),
    ("POST", b'{"events": [{"campaign": [], "variant": 1e400, "event": []}]}',
     "application/json", {"Origin": "http://["}, None),
    ("POST", b'{"events": "x", "id": [], "type": {}, "data": 1}', "application/json", {}, None),
    ("POST", b"email=%ff\xff&newsletters=\xfe", "application/x-www-form-urlencoded", {}, None),
    ("POST", b"--x\r\n", "multipart/form-data", {}, None),
    ("POST", b"--x\r\n", 'multipart/form-data; boundary="', {}, None),
    ("POST", HUGE[0], "application/x-www-form-urlencoded", {}, None),
    ("POST", HUGE[2], "application/x-www-form-urlencoded", {}, None),
    ("POST", b"{}", "application/json", {}, "99999999999999999999"),
    ("POST", b"email=a%40b.org&amount=1", "application/x-www-form-urlencoded", {}, "-1"),
    ("POST", b'{"id": "evt_1", "type": "checkout.session.completed"}', "application/json",
     {"Stripe-Signature": "t=99999999999999999999,v1=zz,v0=", "Paypal-Transmission-Id": "\xff",
      "Paypal-Transmission-Time": "2024-13-45T99:99:99Z", "Paypal-Cert-Url": "file:///etc/passwd",
      "Paypal-Transmission-Sig": "!!!", "Paypal-Auth-Algo": "SHA256withRSA",
      "Btcpay-Sig": "sha256=zz", "Authorization": "Basic !!!"}, None),
    ("POST", b"", "application/json", {"Stripe-Signature": "t=,v1=", "Authorization": "Bearer "},
     None),
    # NUL: PostgreSQL refuses it in text and JSON (\u0000) columns.
    ("POST", b"email=a%00%40b.org&name=%00&message=%00&source=%00&q=%00&action=%00&plan=%00",
     "application/x-www-form-urlencoded", {}, None),
    ("POST", b'{"id": "evt\\u0000", "type": "\\u0000", "data": {"object": {"id": "\\u0000"}}}',
     "application/json", {}, None),
    ("GET", b"", None, {"Cookie": "sessionid=\x7f; csrftoken=\xff", "Range": "bytes=9-1"}, None),
    ("POST", b"q=%22a%27+OR+(", "text/plain; charset=nope", {"Accept-Language": "\xff"}, None),
]  # fmt: skip
CATALOGUE_QUERIES = ['q="a\' OR (', "q=%ff%fe&page=-1", "amount=1e309&currency=%00"]


@pytest.mark.parametrize("route", ROUTES, ids=[route.text for route in ROUTES])
def test_no_5xx_from_any_public_url(world, route):
    """Every public route: each method plainly, the catalogue of hostile requests, then
    Hypothesis' hostile requests of every kind."""
    client = _client()
    path = plain_path(route, world)
    for method in METHODS:
        request = HostileRequest(method, path, "", b"", None, {}, None)
        check(route, request, send(client, request))
    for number, (method, body, content_type, headers, length) in enumerate(CATALOGUE):
        query = CATALOGUE_QUERIES[number % len(CATALOGUE_QUERIES)]
        request = HostileRequest(method, path, query, body, content_type, headers, length)
        check(route, request, send(client, request))

    @PROFILE
    @given(request=hostile_request(route, world))
    def hostile(request: HostileRequest) -> None:
        check(route, request, send(client, request))

    hostile()


def test_a_wrong_method_on_a_form_address_says_so(client):
    """The empty 405 Django gives a GET of a form's address becomes a page with words, in
    the reader's language, keeping its status and Allow header."""
    response = client.get("/newsletter/subscribe/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "This address takes forms only" in response.content.decode()
    assert '<html lang="ru"' in client.get("/ru/support/checkout/").content.decode()
    assert client.head("/support/checkout/").content == b""


@pytest.mark.parametrize(
    "query",
    ["\"a' OR (", "ferry\"", "'ferry", "(ferry", "ferry*", "^ferry", "ferry's", "title:ferry",
     "NEAR(ferry island)", "ferry -", "\"\"\"", "'''", "\\ferry\\"],
)  # fmt: skip
def test_search_with_odd_quoting_finds_the_words(world, query):
    """Search syntax in a reader's query is read as words, over a real index (the database
    backend's FTS5 answered an unbalanced quote with a syntax error: a 500)."""
    from masthead.publishing.models import ArticlePage
    from masthead.publishing.views import search_words

    response = _client().get("/search/", {"q": query})
    assert response.status_code == 200
    if search_words(query).split()[:1] == ["ferry"]:
        ferry = ArticlePage.objects.get(external_id="demo-001")
        assert ferry.url in response.content.decode()


def test_return_from_a_provider_switched_off_since_checkout(world):
    """A reader back from a provider the operator has since removed sees the thank-you page,
    not a 500."""
    from masthead.contributions import tokens
    from masthead.contributions.models import Contribution

    contribution = Contribution.objects.filter(paid_at__isnull=True).first()
    Contribution.objects.filter(pk=contribution.pk).update(provider="retired")
    token = tokens.checkout_token(contribution)
    response = _client().get(f"/support/checkout/{token}/return/", {"token": "x"})
    assert response.status_code == 302
    assert response["Location"].endswith(f"/support/checkout/{token}/thanks/")
    assert _client().get(response["Location"]).status_code == 200
