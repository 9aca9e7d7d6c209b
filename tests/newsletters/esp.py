"""A stand-in email service provider for the tests: django-anymail's own test backend, with
one address the provider rejects and one that fails with a 503 the first time."""

from anymail.backends.test import EmailBackend
from anymail.exceptions import AnymailAPIError
from anymail.message import AnymailRecipientStatus

REJECTED = "reader1@example.org"
FLAKY = "reader2@example.org"
_failed_once: set[str] = set()


class FlakyESPBackend(EmailBackend):
    def post_to_esp(self, payload, message):
        to = message.to[0]
        if to == REJECTED:
            return {"recipient_status": {to: AnymailRecipientStatus(None, "rejected")}}
        if to == FLAKY and to not in _failed_once:
            _failed_once.add(to)
            raise AnymailAPIError("503 Service Unavailable: try again later")
        return super().post_to_esp(payload, message)
