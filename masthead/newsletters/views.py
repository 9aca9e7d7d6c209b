"""Newsletter reader views (to be deepened by the newsletter issue)."""

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


def index(request):
    return HttpResponse("Newsletter")


def latest(request):
    return HttpResponse("Latest edition")


@csrf_exempt
@require_POST
def subscribe(request):
    return HttpResponse("Thanks")
