"""Contribution URLs, under /support/ (namespace ``contributions``, part of the contract)."""

from django.urls import path

from . import transfer_views, views

app_name = "contributions"

urlpatterns = [
    path("", views.give, name="give"),
    path("checkout/", views.checkout, name="checkout"),
    path("checkout/<str:token>/thanks/", views.thanks, name="thanks"),
    path("checkout/<str:token>/cancelled/", views.cancelled, name="cancelled"),
    path("checkout/<str:token>/return/", views.checkout_return, name="return"),
    # This site's own checkout page, for providers that host it here (the sandbox's).
    path("sandbox/<str:token>/", views.hosted_checkout, name="hosted_checkout"),
    path("webhooks/<slug:provider_key>/", views.webhook, name="webhook"),
    path("checkout/<str:token>/transfer/", transfer_views.transfer_pledge, name="transfer"),
    path("pay/<str:token>/", transfer_views.pay_period, name="pay_period"),
    path("manage/", views.manage_request, name="manage_request"),
    path("manage/<str:token>/", views.manage, name="manage"),
]
