"""The routes :mod:`masthead.core.lean` serves without the reader middleware: payment and
email webhooks, at the same paths as in ``masthead.urls`` (default language, no prefix)."""

from django.urls import path

from masthead.contributions import views as contribution_views
from masthead.newsletters import webhooks as newsletter_webhooks

urlpatterns = [
    path("support/webhooks/<slug:provider_key>/", contribution_views.webhook),
    path("anymail/<slug:provider>/<slug:kind>/", newsletter_webhooks.email_webhook),
]
