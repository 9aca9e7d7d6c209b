"""Reader URLs: /mirrors/ (and /<lang>/mirrors/) inside the language prefix; the
language-free /mirrors.json is in ``json_urlpatterns``, included at the root."""

from django.urls import path

from . import views

app_name = "reach"

urlpatterns = [
    path("mirrors/", views.mirrors_page, name="mirrors"),
]

json_urlpatterns = [
    path("mirrors.json", views.mirrors_list, name="mirrors_json"),
]
