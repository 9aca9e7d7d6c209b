"""Campaign URLs outside the language prefix: the aggregate counter endpoint and the
appeal's form (checked, then on to the checkout)."""

from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("events/", views.events, name="events"),
    path("appeal/", views.appeal_checkout, name="appeal_checkout"),
]
