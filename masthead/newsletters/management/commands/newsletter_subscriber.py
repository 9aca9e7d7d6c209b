"""``masthead newsletter-subscriber export|erase EMAIL``: a reader's data request."""

import json

from django.core.management.base import BaseCommand, CommandError

from masthead.core.audit import AuditEntry, add_actor_argument, record_command
from masthead.core.crypto import normalise_email
from masthead.newsletters.forms import clean_address
from masthead.newsletters.subscriptions import (
    subscriber_erase,
    subscriber_export,
    subscriber_find,
)


class Command(BaseCommand):
    help = "Export (as JSON) or erase everything the newsletters keep about an email address."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["export", "erase"])
        parser.add_argument("email")
        parser.add_argument("--yes", action="store_true", help="Erase without asking.")
        add_actor_argument(parser)

    def handle(self, *args, action, email, yes=False, **options):
        try:
            email = normalise_email(clean_address(email))
        except Exception as exc:  # ValidationError: say which rule failed
            raise CommandError(" ".join(getattr(exc, "messages", [str(exc)])))
        subscriber = subscriber_find(email)
        if action == "export":
            data = subscriber_export(email)
            if data is None or subscriber is None:
                raise CommandError(f"No subscriber has the address {email}.")
            record_command(
                options, "newsletter-subscriber export", AuditEntry.Action.EXPORT,
                "subscriber", subscriber.pk,
            )
            self.stdout.write(json.dumps(data, ensure_ascii=False, indent=2))
            return
        if not yes:
            answer = input(f"Erase everything about {email}? Type 'erase' to confirm: ")
            if answer.strip() != "erase":
                raise CommandError("Nothing erased.")
        if subscriber is None or not subscriber_erase(email):
            raise CommandError(f"No subscriber has the address {email}.")
        record_command(
            options, "newsletter-subscriber erase", AuditEntry.Action.ERASE,
            "subscriber", subscriber.pk,
        )
        self.stdout.write(f"Erased {email}.")
