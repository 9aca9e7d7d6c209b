"""The newsletter sign-up block that reader pages include (``{% newsletter_signup %}``)."""

from django import template
from django.utils.translation import get_language

from ..models import Newsletter

register = template.Library()


@register.inclusion_tag("newsletters/signup_block.html", takes_context=True)
def newsletter_signup(context, source: str = "article"):
    """Email field, button, Preview link and consent line for the page language's default
    newsletter. The same for every reader, so the page stays cacheable."""
    return {
        "request": context.get("request"),
        "privacy_url": context.get("privacy_url"),
        "newsletter": Newsletter.objects.default_for(get_language()),
        "source": source,
    }
