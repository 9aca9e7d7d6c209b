"""Masthead's one settings module.

Everything an operator changes comes from environment variables (documented in
docs/operating.md); every variable has a safe embedded default so that a fresh checkout runs
the demo with SQLite, the database task worker, a local email outbox and the sandbox payment
provider. ``MASTHEAD_ENV=production`` switches on the production hardening and refuses to
start without the secrets a real deployment needs.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


PACKAGE_DIR = Path(__file__).resolve().parent
BASE_DIR = PACKAGE_DIR.parent
MASTHEAD_ENV = env("MASTHEAD_ENV", "development")
PRODUCTION = MASTHEAD_ENV == "production"
TESTING = env_bool("MASTHEAD_TESTING") or "pytest" in sys.modules
if TESTING and not env("MASTHEAD_DATA_DIR"):
    # Each test run gets its own data folder (test database, outbox, media); processes the
    # tests start (workers) inherit it through the environment.
    os.environ["MASTHEAD_DATA_DIR"] = tempfile.mkdtemp(prefix="masthead-test-")
    os.environ["MASTHEAD_TESTING"] = "1"
DATA_DIR = Path(env("MASTHEAD_DATA_DIR", str(Path.cwd() / "data"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
DEBUG = env_bool("MASTHEAD_DEBUG", False) and not PRODUCTION


def _secret_key() -> str:
    key = env("SECRET_KEY")
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when MASTHEAD_ENV=production")
    # Development and demo: a random key kept in the data folder, never in the repository.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
# Keys that used to sign links (unsubscribe, manage-my-support) stay valid while listed here.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# The public address of the site, used in emails, feeds and structured data.
MASTHEAD_BASE_URL = env("MASTHEAD_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
WAGTAILADMIN_BASE_URL = MASTHEAD_BASE_URL
# Other hosts that serve the whole site for readers who cannot reach the main domain: CDN
# or second domains, and an onion address (masthead.reach.hosts, docs/reach.md). Reader
# pages there link to the host itself; they join ALLOWED_HOSTS here. Forms post to the same
# origin, so CSRF_TRUSTED_ORIGINS needs nothing for them.
MASTHEAD_MIRROR_HOSTS = env_list("MASTHEAD_MIRROR_HOSTS")
MASTHEAD_ONION_HOST = env("MASTHEAD_ONION_HOST").strip()


def _hostname(value: str) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(value if "//" in value else "//" + value).hostname or "").lower()


ALLOWED_HOSTS += [
    host
    for host in map(_hostname, [*MASTHEAD_MIRROR_HOSTS, MASTHEAD_ONION_HOST])
    if host and host not in ALLOWED_HOSTS
]

INSTALLED_APPS = [
    "masthead.core",
    "masthead.publishing",
    "masthead.newsletters",
    "masthead.contributions",
    "masthead.campaigns",
    "masthead.reach",
    "masthead.insights",
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.contrib.settings",
    "wagtail.contrib.sitemaps",
    "wagtail.contrib.simple_translation",
    "wagtail.contrib.frontend_cache",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail.locales",
    "wagtail",
    "modelcluster",
    "taggit",
    "django_otp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_totp",
    "two_factor",
    "django_tasks",
    "django_tasks_db",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.sitemaps",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "csp",
]

MIDDLEWARE = [
    # Onion-Location on the main domain; no HTTPS redirect or HSTS on the onion address.
    # It must come right before SecurityMiddleware, which it steps over for the onion host.
    "masthead.reach.middleware.ReaderHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "masthead.core.middleware.SecurityHeadersMiddleware",
    "masthead.core.pagecache.PageCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "masthead.core.middleware.PathLocaleMiddleware",
    "masthead.core.middleware.EmptyErrorPageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "masthead.core.staff_otp.StaffTwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "masthead.core.middleware.CSPMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
    # Wagtail's site lookup and routing, remembered per publication generation.
    "masthead.publishing.routing.RouteCacheMiddleware",
]

ROOT_URLCONF = "masthead.urls"
# POSTs to the routes of this URLconf (the webhooks) skip the reader middleware and are
# resolved against it alone (masthead.core.lean); "" sends every request the ordinary way.
MASTHEAD_LEAN_URLCONF = "masthead.lean_urls"
MASTHEAD_LEAN_MIDDLEWARE = [
    "masthead.reach.middleware.ReaderHostMiddleware",  # as in MIDDLEWARE: the onion host
    "django.middleware.security.SecurityMiddleware",
]
WSGI_APPLICATION = "masthead.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "wagtail.contrib.settings.context_processors.settings",
                "masthead.core.context_processors.newsroom",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------

SQLITE_PATH = DATA_DIR / "masthead.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{SQLITE_PATH}"),
        # Connections kept a minute: a connection per request would cost more than a
        # webhook's whole work (tests keep Django's default of one per request).
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0 if TESTING else 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and scheduler write at once: WAL lets readers run beside the one writer,
    # IMMEDIATE takes the write lock at BEGIN (so no deadlocked upgrade from a read lock),
    # and writers queue for it (masthead.core.sqlite: a lock the next writer gets the moment
    # it is released, instead of SQLite's sleeping busy handler); the timeout bounds the wait,
    # after which a writer fails "database is locked".
    DATABASES["default"]["ENGINE"] = "masthead.core.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": (
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=NORMAL;"
            "PRAGMA busy_timeout=30000;"
            "PRAGMA foreign_keys=ON;"
        ),
    }
    # Tests use a file (not :memory:) so that worker processes can share it.
    DATABASES["default"]["TEST"] = {
        "NAME": env("MASTHEAD_TEST_SQLITE", str(DATA_DIR / "test.sqlite3")),
    }
else:
    # Unique per test run, so that several runs can share one PostgreSQL server.
    test_db = env("MASTHEAD_TEST_DATABASE_NAME") or (
        f"test_masthead_{os.getpid()}" if TESTING else ""
    )
    if test_db:
        os.environ.setdefault("MASTHEAD_TEST_DATABASE_NAME", test_db)
        DATABASES["default"]["TEST"] = {"NAME": test_db}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------

REDIS_URL = env("REDIS_URL")
CACHE_URL = env("CACHE_URL", REDIS_URL)
# The state store (masthead.core.state): the page-cache generation, rate limits, campaign
# counters, scheduler locks. On Redis it should be one that never evicts
# (maxmemory-policy noeviction), which MASTHEAD_STATE_URL can point at.
MASTHEAD_STATE_URL = env("MASTHEAD_STATE_URL") or (
    CACHE_URL if CACHE_URL.startswith(("redis://", "rediss://", "unix://")) else REDIS_URL
)
# Upper bound of the embedded cache's folder (pages, renditions); the oldest stored entries
# make room. The state store is not bounded: it holds only small, expiring or few keys.
MASTHEAD_CACHE_SIZE_MB = env_int("MASTHEAD_CACHE_SIZE_MB", 512)


def _redis(url: str, prefix: str) -> dict:
    return {
        "BACKEND": "masthead.core.cache_backends.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": prefix,
    }


def _diskcache(folder: Path, prefix: str, **options) -> dict:
    # diskcache: SQLite + files, safe across the web processes, the worker and the scheduler
    # on one machine; atomic add/incr; bounded without scanning the folder.
    return {
        "BACKEND": "masthead.core.cache_backends.DiskCache",
        "LOCATION": str(folder),
        "KEY_PREFIX": prefix,
        "TIMEOUT": 300,
        "SHARDS": options.pop("shards", 8),
        "DATABASE_TIMEOUT": options.pop("database_timeout", 0.1),
        "OPTIONS": options,
    }


if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    _default_cache = _redis(CACHE_URL, "masthead")
else:
    # (Tests use it too, in the test run's own data folder: worker processes they start
    # share it, as they would in production.)
    _default_cache = _diskcache(
        DATA_DIR / "cache",
        "masthead",
        size_limit=MASTHEAD_CACHE_SIZE_MB * 1024 * 1024,
        # Reads do not write: an entry's age is when it was stored.
        eviction_policy="least-recently-stored",
    )
if MASTHEAD_STATE_URL:
    _state_cache = _redis(MASTHEAD_STATE_URL, "masthead-state")
else:
    _state_cache = _diskcache(
        DATA_DIR / "state",
        "masthead-state",
        # One shard: add_and_incr locks the key's shard, and the store is small.
        shards=1,
        database_timeout=1.0,
        eviction_policy="none",
    )
CACHES = {"default": _default_cache, "state": _state_cache}

# Full-page cache for anonymous readers (masthead.core.pagecache).
MASTHEAD_PAGE_CACHE = env_bool("MASTHEAD_PAGE_CACHE", True)
MASTHEAD_PAGE_CACHE_SECONDS = env_int("MASTHEAD_PAGE_CACHE_SECONDS", 600)
# What a CDN or browser may keep: browsers briefly, shared caches longer.
MASTHEAD_BROWSER_MAX_AGE = env_int("MASTHEAD_BROWSER_MAX_AGE", 60)
MASTHEAD_CDN_MAX_AGE = env_int("MASTHEAD_CDN_MAX_AGE", 300)

# --- Tasks ----------------------------------------------------------------------------------

MASTHEAD_TASKS = env("MASTHEAD_TASKS", "db")
if MASTHEAD_TASKS == "rq":
    if not REDIS_URL:
        raise ImproperlyConfigured("MASTHEAD_TASKS=rq needs REDIS_URL")
    INSTALLED_APPS.append("django_rq")
    RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600}}
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
elif MASTHEAD_TASKS == "immediate":
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
else:
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# --- Email ----------------------------------------------------------------------------------

EMAIL_BACKEND = env("EMAIL_BACKEND", "masthead.core.mail.OutboxBackend")
MASTHEAD_OUTBOX_DIR = Path(env("MASTHEAD_OUTBOX_DIR", str(DATA_DIR / "outbox")))
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "The Lantern <newsroom@localhost>")
SERVER_EMAIL = env("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
# django-anymail: every ANYMAIL_<NAME> variable becomes ANYMAIL["<NAME>"].
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in os.environ.items()
    if key.startswith("ANYMAIL_")
}
# Email providers whose bounce/complaint/inbound webhooks are served (newsletters.webhooks):
# e.g. "postmark" or "mailgun,amazon_ses"; by default the ESP of an anymail EMAIL_BACKEND;
# "none" for no webhooks. Each needs ANYMAIL_WEBHOOK_SECRET or its signing key.
_anymail_esp = (
    EMAIL_BACKEND.split(".")[2]
    if EMAIL_BACKEND.startswith("anymail.backends.") and EMAIL_BACKEND.count(".") == 3
    else ""
)
MASTHEAD_EMAIL_WEBHOOK_PROVIDERS = [
    name.lower()
    for name in env_list("MASTHEAD_EMAIL_WEBHOOK_PROVIDERS")
    or ([_anymail_esp] if _anymail_esp not in ("", "test", "console") else [])
    if name.lower() != "none"
]
MASTHEAD_EMAIL_WEBHOOK_MAX_BYTES = env_int("MASTHEAD_EMAIL_WEBHOOK_MAX_BYTES", 1_000_000)
MASTHEAD_EMAIL_WEBHOOK_TOLERANCE_SECONDS = env_int(
    "MASTHEAD_EMAIL_WEBHOOK_TOLERANCE_SECONDS", 900
)

# --- Auth, i18n, static ---------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "wagtailadmin_login"
LOGIN_REDIRECT_URL = "wagtailadmin_home"  # where two-factor set-up returns (and its Cancel)

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский")]
WAGTAIL_I18N_ENABLED = True
WAGTAIL_CONTENT_LANGUAGES = LANGUAGES
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(DATA_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_MAX_AGE = 3600 if not PRODUCTION else 31536000

# --- Wagtail --------------------------------------------------------------------------------

WAGTAIL_SITE_NAME = env("MASTHEAD_OUTLET_NAME", "The Lantern")
WAGTAILIMAGES_IMAGE_MODEL = "publishing.NewsImage"
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
WAGTAILADMIN_RICH_TEXT_EDITORS = {
    "default": {"WIDGET": "wagtail.admin.rich_text.DraftailRichTextArea"}
}
WAGTAIL_ENABLE_UPDATE_CHECK = False
# Staff avatars from Gravatar would send a hash of each editor's email to a third party.
WAGTAIL_GRAVATAR_PROVIDER_URL = None
WAGTAILFRONTENDCACHE = {}
if env("MASTHEAD_CDN_PURGE_URL"):
    # Any HTTP PURGE-capable cache in front: the shipped nginx config (deploy/nginx/, one
    # PURGE per cached encoding), Varnish, Fastly-style.
    WAGTAILFRONTENDCACHE["cdn"] = {
        "BACKEND": "masthead.core.frontcache.PurgeBackend",
        "LOCATION": env("MASTHEAD_CDN_PURGE_URL"),
    }
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000

# --- Security -------------------------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# No page is framed, not even by the site itself; Wagtail's preview views (the only frames)
# set SAMEORIGIN on their own responses.
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
MASTHEAD_PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), usb=(), interest-cohort=(), browsing-topics=(), payment=(self)"
)
# Origins a checkout form may hand the reader to (the form-action CSP directive applies to
# redirects after a form submission too). Payment providers add theirs.
MASTHEAD_FORM_ACTION_ORIGINS = env_list(
    "MASTHEAD_FORM_ACTION_ORIGINS",
    "https://checkout.stripe.com,https://www.paypal.com,https://www.sandbox.paypal.com",
)
CONTENT_SECURITY_POLICY = {
    # Wagtail's and Django's admins use inline scripts and styles; they are staff-only.
    "EXCLUDE_URL_PREFIXES": ["/admin/", "/django-admin/", "/account/"],
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "media-src": [SELF],
        "frame-src": [NONE],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF, *MASTHEAD_FORM_ACTION_ORIGINS],
        "frame-ancestors": [NONE],
    },
}

# Behind our own reverse proxy: rate limits count the first X-Forwarded-For address
# (masthead.core.ratelimit), and in production the proxy's scheme and host are trusted.
MASTHEAD_BEHIND_PROXY = env_bool("MASTHEAD_BEHIND_PROXY")

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if MASTHEAD_BEHIND_PROXY:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
        USE_X_FORWARDED_HOST = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # Link tokens (confirm, unsubscribe, manage, checkout) never reach a log line.
    "filters": {"redact_link_tokens": {"()": "masthead.core.logredact.RedactLinkTokens"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_link_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR", "filters": ["redact_link_tokens"]},
        "django.server": {
            "handlers": ["console"], "propagate": False, "filters": ["redact_link_tokens"]
        },
        "django.security": {"filters": ["redact_link_tokens"]},
        "django.security.DisallowedHost": {"level": "ERROR"},
        "wagtail": {"level": env("WAGTAIL_LOG_LEVEL", "WARNING")},
    },
}

# --- Masthead -------------------------------------------------------------------------------

MASTHEAD_OUTLET_NAME = WAGTAIL_SITE_NAME
# The outlet's name in other languages, "ru=Фонарь,uk=Ліхтар" (masthead.core.outlet); the
# demo's default name comes with its Russian one.
MASTHEAD_OUTLET_NAMES = {
    code.strip(): name.strip()
    for code, _sep, name in (
        item.partition("=")
        for item in env_list(
            "MASTHEAD_OUTLET_NAMES", "" if env("MASTHEAD_OUTLET_NAME") else "ru=Фонарь"
        )
    )
    if code.strip() and name.strip()
}
# Key for personal data encrypted at rest (donor and subscriber emails). A urlsafe base64
# Fernet key, or several separated by commas (the first encrypts, all decrypt: rotation).
MASTHEAD_DATA_KEYS = env("MASTHEAD_DATA_KEYS")

# --- contributions ---
# Payment providers readers may choose, in display order; each key maps to a backend class
# chosen by dotted path (override with MASTHEAD_PAYMENT_BACKEND_<KEY>). Stripe and PayPal
# need their credentials; the sandbox moves no money and is the embedded default.
_PAYMENT_BACKENDS = {
    "sandbox": "masthead.contributions.providers.sandbox.SandboxProvider",
    "stripe": "masthead.contributions.providers.stripe.StripeProvider",
    "paypal": "masthead.contributions.providers.paypal.PayPalProvider",
    "btcpay": "masthead.contributions.providers.btcpay.BTCPayProvider",
    "banktransfer": "masthead.contributions.providers.banktransfer.BankTransferProvider",
}
MASTHEAD_PAYMENT_PROVIDERS = {
    key: {
        "BACKEND": env(
            f"MASTHEAD_PAYMENT_BACKEND_{key.upper()}",
            _PAYMENT_BACKENDS.get(key, ""),
        ),
    }
    for key in env_list("MASTHEAD_PAYMENT_PROVIDERS", "sandbox")
}
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env("STRIPE_API_BASE")  # a local stand-in in tests; empty = Stripe's own
PAYPAL_CLIENT_ID = env("PAYPAL_CLIENT_ID")
PAYPAL_CLIENT_SECRET = env("PAYPAL_CLIENT_SECRET")
PAYPAL_WEBHOOK_ID = env("PAYPAL_WEBHOOK_ID")
PAYPAL_LIVE = env_bool("PAYPAL_LIVE", False)
PAYPAL_API_BASE = env("PAYPAL_API_BASE")  # a local stand-in in tests; empty = PayPal's own
PAYPAL_PRODUCT_ID = env("PAYPAL_PRODUCT_ID")  # catalog product for plans (created if empty)
# Stripe Checkout's payment method types ("card,sepa_debit,…"; wallets come with card).
MASTHEAD_STRIPE_PAYMENT_METHODS = env_list("MASTHEAD_STRIPE_PAYMENT_METHODS", "card")
# BTCPay Server (Greenfield API): the server, the store, an API key that may create and view
# invoices, and the store webhook's secret (docs/contributions.md). Off unless listed above.
BTCPAY_URL = env("BTCPAY_URL")
BTCPAY_STORE_ID = env("BTCPAY_STORE_ID")
BTCPAY_API_KEY = env("BTCPAY_API_KEY")
BTCPAY_WEBHOOK_SECRET = env("BTCPAY_WEBHOOK_SECRET")
# Minutes a BTCPay checkout invoice stays payable (sent with each invoice; BTCPay's default
# is 15). A pending BTCPay checkout is given up a day after that.
BTCPAY_INVOICE_EXPIRY_MINUTES = env_int("BTCPAY_INVOICE_EXPIRY_MINUTES", 15)
# Days a bank-transfer pledge waits for its transfer before it counts as abandoned.
MASTHEAD_BANK_TRANSFER_PLEDGE_DAYS = env_int("MASTHEAD_BANK_TRANSFER_PLEDGE_DAYS", 30)
# Pay-by-link plans (BTCPay, bank transfer): days a period's link stays payable before the
# period counts as a failed attempt (dunning as for cards, MASTHEAD_DUNNING_MAX_TRIES).
MASTHEAD_PAY_BY_LINK_DAYS = env_int("MASTHEAD_PAY_BY_LINK_DAYS", 7)
# Accepted currencies and the smallest contribution in each, in minor units ("USD:200,…").
MASTHEAD_CURRENCIES = env_list("MASTHEAD_CURRENCIES", "USD,EUR,GBP")
MASTHEAD_DEFAULT_CURRENCY = env("MASTHEAD_DEFAULT_CURRENCY", MASTHEAD_CURRENCIES[0])
MASTHEAD_MINIMUM_AMOUNTS = {
    code: int(minor)
    for code, _, minor in (
        item.partition(":")
        for item in env_list(
            "MASTHEAD_MINIMUM_AMOUNTS",
            # Default: $2, €2, £2 for those of the three that are accepted, so that narrowing
            # MASTHEAD_CURRENCIES alone is a working configuration.
            ",".join(f"{c}:200" for c in ("USD", "EUR", "GBP") if c in MASTHEAD_CURRENCIES),
        )
    )
}
MASTHEAD_MAXIMUM_AMOUNT = env_int("MASTHEAD_MAXIMUM_AMOUNT", 1_000_000)  # minor units
# Failed renewal attempts before a recurring plan is cancelled (the plan is past due before).
MASTHEAD_DUNNING_MAX_TRIES = env_int("MASTHEAD_DUNNING_MAX_TRIES", 3)
# Donor safety: receipts from a neutral sender with a neutral subject (no outlet name).
MASTHEAD_RECEIPT_NEUTRAL = env_bool("MASTHEAD_RECEIPT_NEUTRAL", False)
MASTHEAD_RECEIPT_NEUTRAL_FROM = env("MASTHEAD_RECEIPT_NEUTRAL_FROM", "Receipts <noreply@localhost>")
MASTHEAD_RECEIPT_NEUTRAL_SUBJECT = env("MASTHEAD_RECEIPT_NEUTRAL_SUBJECT", "Your receipt")
# ... and what providers show (product names, descriptions, card statement suffix).
MASTHEAD_NEUTRAL_PRODUCT_NAME = env("MASTHEAD_NEUTRAL_PRODUCT_NAME", "Online services")
MASTHEAD_NEUTRAL_STATEMENT_DESCRIPTOR = env("MASTHEAD_NEUTRAL_STATEMENT_DESCRIPTOR", "SERVICES")
MASTHEAD_MANAGE_LINK_MAX_AGE = env_int("MASTHEAD_MANAGE_LINK_MAX_AGE", 3 * 24 * 3600)
# Webhooks older than this (seconds) are refused as replays.
MASTHEAD_WEBHOOK_TOLERANCE = env_int("MASTHEAD_WEBHOOK_TOLERANCE", 300)
# Webhook events are stored by the request and applied by the worker: events per transaction,
# how long a batch's transaction may last (on SQLite it holds the one write lock), the pause
# between batches (the webhook requests waiting for that lock go first), seconds one worker
# run may take before it hands over to the next, and how long a wake-up flag lasts (a lost
# wake-up is retried after this; the scheduler also sweeps every minute).
MASTHEAD_WEBHOOK_APPLY_BATCH = env_int("MASTHEAD_WEBHOOK_APPLY_BATCH", 50)
MASTHEAD_WEBHOOK_APPLY_TRANSACTION_MS = env_int("MASTHEAD_WEBHOOK_APPLY_TRANSACTION_MS", 20)
MASTHEAD_WEBHOOK_APPLY_PAUSE_MS = env_int("MASTHEAD_WEBHOOK_APPLY_PAUSE_MS", 1)
MASTHEAD_WEBHOOK_APPLY_SECONDS = env_int("MASTHEAD_WEBHOOK_APPLY_SECONDS", 30)
MASTHEAD_WEBHOOK_WAKE_SECONDS = env_int("MASTHEAD_WEBHOOK_WAKE_SECONDS", 60)
# Pending payments older than this (seconds) are checked with their provider.
MASTHEAD_RECONCILE_AFTER = env_int("MASTHEAD_RECONCILE_AFTER", 30 * 60)
# A plan whose renewal is this late (seconds past its due date) is re-checked with its provider.
MASTHEAD_RENEWAL_GRACE = env_int("MASTHEAD_RENEWAL_GRACE", 3 * 24 * 3600)
# Checkouts one address may start per hour (each creates a provider session); 0 = no limit.
MASTHEAD_CHECKOUTS_PER_IP = env_int("MASTHEAD_CHECKOUTS_PER_IP", 60)
# Staff who can see readers' personal data (donors, subscribers) must use two-factor
# authentication in the admins (masthead.core.staff_otp). Always on in production; other apps'
# admin tests run without it (the tests of two-factor itself switch it on).
MASTHEAD_STAFF_TWO_FACTOR = PRODUCTION or env_bool("MASTHEAD_STAFF_TWO_FACTOR", not TESTING)
# The name authenticator apps show above the staff account: the newsroom's, not the host's.
OTP_TOTP_ISSUER = env("MASTHEAD_TWO_FACTOR_ISSUER", MASTHEAD_OUTLET_NAME)

# --- campaigns ---
# Days a browser counts as a supporter after contributing there (per frequency): campaigns for
# non-supporters are not shown to it meanwhile. Only a date is kept, in its localStorage.
MASTHEAD_CAMPAIGNS_SUPPORTER_DAYS = {
    "once": env_int("MASTHEAD_CAMPAIGNS_SUPPORTER_DAYS_ONCE", 90),
    "monthly": env_int("MASTHEAD_CAMPAIGNS_SUPPORTER_DAYS_MONTHLY", 400),
    "annual": env_int("MASTHEAD_CAMPAIGNS_SUPPORTER_DAYS_ANNUAL", 400),
}
# Days a browser that confirmed a newsletter sign-up is spared newsletter prompts.
MASTHEAD_CAMPAIGNS_SUBSCRIBER_DAYS = env_int("MASTHEAD_CAMPAIGNS_SUBSCRIBER_DAYS", 365)
# Campaign events (impressions, clicks, dismissals) one address may report per hour.
MASTHEAD_CAMPAIGNS_EVENTS_PER_HOUR = env_int("MASTHEAD_CAMPAIGNS_EVENTS_PER_HOUR", 600)

# --- newsletters ---
# Delivery engine (docs/newsletters.md): messages a second per delivery (0 = no limit), SMTP
# connections per worker, worker tasks per delivery, ledger rows claimed at once, how long a
# claim or a silent worker is trusted before its rows are taken over, retries.
MASTHEAD_NEWSLETTER_RATE = float(env("MASTHEAD_NEWSLETTER_RATE", "0"))
MASTHEAD_NEWSLETTER_CONNECTIONS = env_int("MASTHEAD_NEWSLETTER_CONNECTIONS", 2)
MASTHEAD_NEWSLETTER_PARALLEL = env_int("MASTHEAD_NEWSLETTER_PARALLEL", 1)
MASTHEAD_NEWSLETTER_BATCH = env_int("MASTHEAD_NEWSLETTER_BATCH", 1000)
MASTHEAD_NEWSLETTER_LEASE_SECONDS = env_int("MASTHEAD_NEWSLETTER_LEASE_SECONDS", 60)
MASTHEAD_NEWSLETTER_MAX_ATTEMPTS = env_int("MASTHEAD_NEWSLETTER_MAX_ATTEMPTS", 5)
MASTHEAD_NEWSLETTER_RETRY_SECONDS = env_int("MASTHEAD_NEWSLETTER_RETRY_SECONDS", 60)
# How often the scheduler starts due editions and recovers stalled deliveries.
MASTHEAD_NEWSLETTER_TICK_SECONDS = env_int("MASTHEAD_NEWSLETTER_TICK_SECONDS", 30)
# "auto": the hand-written pipelining SMTP sender when EMAIL_BACKEND is Django's SMTP backend,
# else the configured backend (anymail, outbox); or force "smtp" / "backend".
MASTHEAD_NEWSLETTER_SENDER = env("MASTHEAD_NEWSLETTER_SENDER", "auto")
MASTHEAD_NEWSLETTER_PIPELINING = env_bool("MASTHEAD_NEWSLETTER_PIPELINING", True)
# DKIM for editions sent over self-hosted SMTP (newsletters/dkim.py): a PEM RSA or Ed25519
# private key (or a file holding it), the selector of its DNS record, and the signing domain
# (default: the newsletter sender's). No key: no signature.
MASTHEAD_DKIM_PRIVATE_KEY = env("MASTHEAD_DKIM_PRIVATE_KEY")
MASTHEAD_DKIM_PRIVATE_KEY_FILE = env("MASTHEAD_DKIM_PRIVATE_KEY_FILE")
MASTHEAD_DKIM_SELECTOR = env("MASTHEAD_DKIM_SELECTOR")
MASTHEAD_DKIM_DOMAIN = env("MASTHEAD_DKIM_DOMAIN")
# Editions through an ESP (anymail) in batches of this many recipients, one API call each,
# for ESPs whose batch API personalises on the fly (newsletters/batching.py); 0: one call
# per recipient.
MASTHEAD_NEWSLETTER_ESP_BATCH = env_int("MASTHEAD_NEWSLETTER_ESP_BATCH", 500)
MASTHEAD_NEWSLETTER_UNSUBSCRIBE_EMAIL = env("MASTHEAD_NEWSLETTER_UNSUBSCRIBE_EMAIL")
# Sign-up: days a confirmation link lives (unconfirmed sign-ups are then deleted), limits.
MASTHEAD_NEWSLETTER_CONFIRM_DAYS = env_int("MASTHEAD_NEWSLETTER_CONFIRM_DAYS", 7)
MASTHEAD_NEWSLETTER_SIGNUPS_PER_IP = env_int("MASTHEAD_NEWSLETTER_SIGNUPS_PER_IP", 20)
MASTHEAD_NEWSLETTER_SIGNUPS_PER_ADDRESS = env_int("MASTHEAD_NEWSLETTER_SIGNUPS_PER_ADDRESS", 3)
MASTHEAD_NEWSLETTER_SOFT_BOUNCE_LIMIT = env_int("MASTHEAD_NEWSLETTER_SOFT_BOUNCE_LIMIT", 3)
# Which Privacy Policy consent refers to; blank: the privacy page's current revision.
MASTHEAD_PRIVACY_POLICY_VERSION = env("MASTHEAD_PRIVACY_POLICY_VERSION")
# Off by default: no open or click tracking. On: the HTML part's links count clicks per link
# and edition (aggregate only, nothing per reader), shown on the edition's send page.
MASTHEAD_NEWSLETTER_CLICK_COUNTS = env_bool("MASTHEAD_NEWSLETTER_CLICK_COUNTS", False)

# --- reach: the static copy (masthead export-static; docs/reach.md, docs/operating.md) ---
# Where forms on the static copy post (a live host readers can reach, e.g. a mirror);
# empty: the copy shows the email alternative instead of the sign-up and appeal forms.
MASTHEAD_STATIC_FORMS_URL = env("MASTHEAD_STATIC_FORMS_URL").rstrip("/")
# The address readers write to for the newsletter, named on the copy when it has no forms.
MASTHEAD_REACH_SUBSCRIBE_EMAIL = env("MASTHEAD_REACH_SUBSCRIBE_EMAIL")
# Email as a way in (docs/reach.md): mail to the subscribe address above starts a sign-up
# confirmed by replying; mail to the auto-reply address gets the latest edition in full and
# the mirror list. Both arrive through an ESP's inbound webhook. Replies an hour: per sender
# (keyed hash of the address) and per sender domain.
MASTHEAD_REACH_AUTOREPLY_EMAIL = env("MASTHEAD_REACH_AUTOREPLY_EMAIL")
MASTHEAD_REACH_EMAIL_REPLIES_PER_SENDER = env_int("MASTHEAD_REACH_EMAIL_REPLIES_PER_SENDER", 3)
MASTHEAD_REACH_EMAIL_REPLIES_PER_DOMAIN = env_int("MASTHEAD_REACH_EMAIL_REPLIES_PER_DOMAIN", 200)
# When set, the scheduler keeps a static copy in this directory up to date (incremental),
# every MASTHEAD_STATIC_EXPORT_SECONDS, for the base URL it will be served at.
MASTHEAD_STATIC_EXPORT_DIR = env("MASTHEAD_STATIC_EXPORT_DIR")
MASTHEAD_STATIC_EXPORT_BASE_URL = env("MASTHEAD_STATIC_EXPORT_BASE_URL").rstrip("/")
MASTHEAD_STATIC_EXPORT_SECONDS = env_int("MASTHEAD_STATIC_EXPORT_SECONDS", 900)

# --- reach: mirrors the newsroom manages, and email links (docs/reach.md) ---
# The host links in transactional email (confirmations, receipts, manage links) point at —
# a mirror readers can open when the main domain is blocked; blank: MASTHEAD_BASE_URL.
# A newsletter may set its own (its "link host" in the admin).
MASTHEAD_EMAIL_LINK_BASE_URL = env("MASTHEAD_EMAIL_LINK_BASE_URL").strip().rstrip("/")
# Mirror health checks: how often, how long one check may take, and the Tor SOCKS proxy
# (e.g. socks5h://127.0.0.1:9050) onion mirrors are checked through; without it onion
# mirrors stay "unknown — not checked".
MASTHEAD_MIRROR_CHECK_SECONDS = env_int("MASTHEAD_MIRROR_CHECK_SECONDS", 600)
MASTHEAD_MIRROR_CHECK_TIMEOUT = float(env("MASTHEAD_MIRROR_CHECK_TIMEOUT", "10"))
MASTHEAD_TOR_SOCKS_PROXY = env("MASTHEAD_TOR_SOCKS_PROXY")
