"""The outlet's name in the reader's language.

``MASTHEAD_OUTLET_NAME`` is the name; ``MASTHEAD_OUTLET_NAMES`` maps a language code to the
name readers of that language know ("ru" → «Фонарь»). Read from settings, never the database,
so the stand-alone error pages can say it too.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import get_language


def outlet_name(language: str | None = None) -> str:
    """The outlet's name in ``language`` (default: the active language)."""
    code = (language or get_language() or "").lower()
    names = getattr(settings, "MASTHEAD_OUTLET_NAMES", {}) or {}
    return names.get(code) or names.get(code.split("-")[0]) or settings.MASTHEAD_OUTLET_NAME
