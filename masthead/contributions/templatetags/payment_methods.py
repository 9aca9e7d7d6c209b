"""``{% payment_methods %}``: the configured payment methods as marks, with what each costs
the reader in privacy (the partial ``contributions/includes/methods.html``), for the give
page and the appeal. The data is :func:`~masthead.contributions.options.load_giving_options`'s
methods, in the active language."""

from __future__ import annotations

from django import template

register = template.Library()


@register.inclusion_tag("contributions/includes/methods.html")
def payment_methods(methods=None, heading: bool = True) -> dict:
    if methods is None:
        from ..options import load_giving_options

        methods = load_giving_options().methods
    rows = []
    for m in methods:
        get = m.get if isinstance(m, dict) else lambda k, m=m: getattr(m, k, "")
        rows.append(
            {
                "key": get("key"),
                "name": get("name"),
                "marks": get("marks") or (),
                "note": get("note"),
            }
        )
    return {"methods": rows, "heading": heading}
