"""One style for every CSV (and XLSX) the admin exports: "Title case" column headings.

A heading is English words, the first capitalised, with spaces, never a raw field name
(``Created at``, ``Amount (minor units)``, ``Donor ID``) — the style the Insights tables
already use for their CSVs and the one editors see as column titles in the admin. Headings
are fixed English strings, not Wagtail's default (the field's verbose name, translated into
each editor's admin language, so two editors' files of the same list had different headers).
Wagtail list exports get them from :func:`export_headings`; a CSV written by hand checks its
headings with :func:`is_heading`. :func:`spreadsheet_safe` defuses a text cell that a
spreadsheet would run as a formula.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

HEADING = re.compile(r"^[A-Z0-9][^_\n]*$")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_UPPER_WORDS = {"id": "ID", "url": "URL", "ip": "IP", "eta": "ETA"}


def title_case(name: str) -> str:
    """``created_at`` → ``Created at``; ``donor_id`` → ``Donor ID``; ``plan.currency`` →
    ``Plan currency``."""
    words = [w for w in re.split(r"[\s_.]+", name.strip()) if w]
    if not words:
        return "Column"
    words = [_UPPER_WORDS.get(w.lower(), w.lower()) for w in words]
    first = words[0]
    words[0] = first[:1].upper() + first[1:]
    return " ".join(words)


def is_heading(text: str) -> bool:
    return bool(HEADING.match(text))


def export_headings(fields: Sequence[str], **renames: str) -> dict[str, str]:
    """``export_headings`` for a Wagtail viewset: every field of ``list_export`` in title
    case, or the heading given in ``renames`` (checked against the same style)."""
    unknown = set(renames) - set(fields)
    if unknown:
        raise ValueError(f"renamed fields not exported: {sorted(unknown)}")
    headings = {field: renames.get(field) or title_case(field) for field in fields}
    bad = [h for h in headings.values() if not is_heading(h)]
    if bad:
        raise ValueError(f"CSV headings must be in title case: {bad}")
    return headings


def spreadsheet_safe(value):
    """A text cell a spreadsheet would read as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
