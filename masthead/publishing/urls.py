"""Publishing URLs that are not Wagtail pages: feeds, search, sitemaps."""

from django.urls import path
from wagtail.contrib.sitemaps.views import sitemap

from masthead.core.pagecache import mark_public

from . import views
from .feeds import ArticleFeed, AtomArticleFeed
from .sitemaps import AllLocalesSitemap

app_name = "publishing"


def public_sitemap(request):
    return mark_public(sitemap(request, sitemaps={"pages": AllLocalesSitemap}))


sitemap_urlpatterns = [
    path("sitemap.xml", public_sitemap, name="sitemap"),
    path("news-sitemap.xml", views.news_sitemap, name="news_sitemap"),
]

urlpatterns = [
    path("feeds/rss/", ArticleFeed(), name="feed_rss"),
    path("feeds/atom/", AtomArticleFeed(), name="feed_atom"),
    path("feeds/<str:slug>/rss/", ArticleFeed(), name="section_feed_rss"),
    path("feeds/<str:slug>/atom/", AtomArticleFeed(), name="section_feed_atom"),
    path("search/", views.search, name="search"),
]
