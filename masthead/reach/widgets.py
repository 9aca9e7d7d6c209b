"""An admin text field that suggests the newsroom's mirrors (an HTML ``<datalist>``) and
still takes any URL — for the host a newsletter's links use."""

from __future__ import annotations

from django import forms
from django.utils.html import format_html, format_html_join


class MirrorURLInput(forms.URLInput):
    def __init__(self, attrs=None):
        super().__init__({"list": "mirror-url-choices", **(attrs or {})})

    def render(self, name, value, attrs=None, renderer=None):
        from .models import Mirror

        field = super().render(name, value, attrs, renderer)
        urls = Mirror.objects.filter(active=True).values_list("url", flat=True)
        options = format_html_join("", '<option value="{}">', ((url.rstrip("/"),) for url in urls))
        return format_html('{}<datalist id="mirror-url-choices">{}</datalist>', field, options)
