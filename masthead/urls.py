"""Root URLs: admin, sitemaps and health outside the language prefix; reader pages inside it
(English at the root, other languages under /<code>/)."""

from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path, re_path
from two_factor.urls import urlpatterns as two_factor_urls
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls
from wagtail.documents import urls as wagtaildocs_urls

from masthead.core import staff_otp
from masthead.core import views as core_views
from masthead.newsletters import webhooks as newsletter_webhooks
from masthead.publishing.urls import sitemap_urlpatterns
from masthead.reach.urls import json_urlpatterns as mirror_list_urlpatterns

urlpatterns = [
    path("admin/", include(wagtailadmin_urls)),
    path("django-admin/", admin.site.urls),
    # Two-factor set-up and sign-in for staff who can see readers' personal data
    # (core.staff_otp). Set-up and its QR code name the newsroom, not the host, to the
    # authenticator app; they stand before the package's own routes for the same paths.
    path("account/verify/", staff_otp.verify, name="staff_otp_verify"),
    path("account/two_factor/setup/", staff_otp.SetupView.as_view()),
    path("account/two_factor/qrcode/", staff_otp.QRCodeView.as_view()),
    path("", include(two_factor_urls)),
    path("documents/", include(wagtaildocs_urls)),
    path("healthz", core_views.health, name="health"),
    path("robots.txt", core_views.robots_txt, name="robots_txt"),
    path("favicon.ico", core_views.favicon, name="favicon"),
    path("campaigns/", include("masthead.campaigns.urls")),
    # Email providers' bounce, complaint and inbound webhooks: only configured providers,
    # only authenticated (newsletters.webhooks); everything else under /anymail/ is a 404.
    path(
        "anymail/<slug:provider>/<slug:kind>/",
        newsletter_webhooks.email_webhook,
        name="email_webhook",
    ),
    *sitemap_urlpatterns,
    *mirror_list_urlpatterns,
]

if not settings.PRODUCTION or settings.MEDIA_URL.startswith("/"):
    # Uploaded images; in production a web server or object storage usually serves these.
    urlpatterns.append(
        re_path(
            rf"^{settings.MEDIA_URL.lstrip('/')}(?P<path>.*)$",
            core_views.media,
        )
    )

urlpatterns += i18n_patterns(
    path("", include("masthead.publishing.urls")),
    path("newsletter/", include("masthead.newsletters.urls")),
    path("support/", include("masthead.contributions.urls")),
    path("", include("masthead.reach.urls")),
    path("", include(wagtail_urls)),
    prefix_default_language=False,
)
