"""``masthead donor-export EMAIL``: everything held about a donor, as JSON (data requests)."""

import json

from django.core.management.base import BaseCommand, CommandError

from masthead.contributions.models import Donor
from masthead.contributions.privacy import export_donor
from masthead.core.audit import AuditEntry, add_actor_argument, record_command
from masthead.core.crypto import email_index


class Command(BaseCommand):
    help = "Print (or write) all data held about the donor with this email address, as JSON."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--output", "-o", help="Write to this file instead of stdout.")
        add_actor_argument(parser)

    def handle(self, *args, email: str, output: str | None = None, **options):
        donor = Donor.objects.filter(email_index=email_index(email)).first()
        if donor is None:
            raise CommandError("No donor with that email address.")
        text = json.dumps(export_donor(donor), indent=2, ensure_ascii=False)
        record_command(options, "donor-export", AuditEntry.Action.EXPORT, "donor", donor.pk)
        if output:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
            self.stdout.write(self.style.SUCCESS(f"Written to {output}"))
        else:
            self.stdout.write(text)
