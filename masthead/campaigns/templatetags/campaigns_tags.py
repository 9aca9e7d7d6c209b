"""The campaign placements reader pages include: the support banner and the appeal."""

from django import template

register = template.Library()


@register.inclusion_tag("campaigns/banner.html", takes_context=True)
def support_banner(context):
    return {"request": context.get("request"), "outlet_name": context.get("outlet_name")}


@register.inclusion_tag("campaigns/appeal.html", takes_context=True)
def appeal(context, page=None):
    return {"request": context.get("request"), "outlet_name": context.get("outlet_name"), "page": page}
