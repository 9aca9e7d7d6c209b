"""Keeps link tokens out of logs.

Confirmation, unsubscribe (which never expire), donor manage and checkout links carry a
token in their path that is as good as the reader's password for that one thing. Access logs
and Django's request logging would otherwise keep every one of them: ``redact()`` replaces
the token path segment, and the query string of such a URL, with ``[redacted]`` wherever a
URL appears in a line (request line, path, referrer). ``RedactLinkTokens`` is the logging
filter for Django's loggers (settings.LOGGING); ``GunicornLogger`` is gunicorn's logger
class with its access-log atoms redacted (``masthead run`` passes it as
``--logger-class``).
"""

from __future__ import annotations

import logging
import re

from gunicorn.glogging import Logger as _GunicornLogger

REDACTED = "[redacted]"

# The URL prefixes (after an optional /<lang>) whose next path segment is a token.
TOKEN_PREFIXES = (
    "newsletter/confirm",
    "newsletter/unsubscribe",
    "support/checkout",
    "support/sandbox",
    "support/manage",
)
_PREFIXES = "|".join(re.escape(prefix) for prefix in TOKEN_PREFIXES)
_TOKEN_PATH = re.compile(
    rf"(?P<prefix>/(?:{_PREFIXES})/)(?P<token>[^/?#\s\"']+)(?P<rest>[^?#\s\"']*)"
    rf"(?P<query>\?[^#\s\"']*)?"
)


def _replace(match: re.Match) -> str:
    query = f"?{REDACTED}" if match.group("query") else ""
    return f"{match.group('prefix')}{REDACTED}{match.group('rest')}{query}"


def redact(text: str) -> str:
    """``text`` with every link token (and the query string of a tokened URL) replaced."""
    if "/" not in text:
        return text
    return _TOKEN_PATH.sub(_replace, text)


def has_token(path: str) -> bool:
    return bool(_TOKEN_PATH.search(path or ""))


class RedactLinkTokens(logging.Filter):
    """A logging filter that formats the record's message once, redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the formatter's problem, not ours
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


class GunicornLogger(_GunicornLogger):
    """gunicorn's logger with the request line, path, query and headers redacted."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        tokened = has_token(environ.get("PATH_INFO") or "") or has_token(
            environ.get("RAW_URI") or ""
        )
        for key, value in atoms.items():
            if isinstance(value, str):
                atoms[key] = redact(value)
        if tokened:
            for key in ("q", "{query_string}e"):
                if atoms.get(key):
                    atoms[key] = REDACTED
        return atoms
