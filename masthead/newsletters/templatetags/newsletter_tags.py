"""The newsletter sign-up block that reader pages include."""

from django import template

register = template.Library()


@register.inclusion_tag("newsletters/signup_block.html", takes_context=True)
def newsletter_signup(context):
    return {"request": context.get("request"), "privacy_url": context.get("privacy_url")}
