"""Reader URLs under /newsletter/ (and /<lang>/newsletter/)."""

from django.urls import path

from . import views

app_name = "newsletters"

urlpatterns = [
    path("", views.index, name="index"),
    path("latest/", views.latest, name="latest"),
    path("subscribe/", views.subscribe, name="subscribe"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("r/<int:edition>/<int:link>/", views.click, name="click"),
    path("<slug:newsletter>/", views.archive, name="archive"),
    path("<slug:newsletter>/<int:pk>-<str:slug>/", views.edition, name="edition"),
]
