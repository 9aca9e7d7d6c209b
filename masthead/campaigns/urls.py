"""Campaign URLs outside the language prefix: the aggregate counter endpoint."""

from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("events/", views.events, name="events"),
]
