"""Contribution reader views (to be deepened by the contributions issue)."""

from django.http import HttpResponse


def give(request):
    return HttpResponse("Support us")
