"""``masthead donor-erase EMAIL``: anonymise a donor, keeping the financial record."""

from django.core.management.base import BaseCommand, CommandError

from masthead.contributions.models import Donor
from masthead.contributions.privacy import erase_donor
from masthead.contributions.providers import ProviderError
from masthead.core.audit import AuditEntry, add_actor_argument, command_actor, record_command
from masthead.core.crypto import email_index


class Command(BaseCommand):
    help = (
        "Erase a donor's personal data (email, name, public names, messages); their live "
        "plans are cancelled at the provider first. Contributions stay, anonymous."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        add_actor_argument(parser)

    def handle(self, *args, email: str, yes: bool = False, **options):
        donor = Donor.objects.filter(email_index=email_index(email)).first()
        if donor is None:
            raise CommandError("No donor with that email address.")
        live = donor.plans.filter(status__in=["active", "past_due"]).count()
        if not yes:
            answer = input(
                f"Erase donor #{donor.pk} ({donor.contributions.count()} contributions, "
                f"{live} live plans to cancel)? Type 'erase': "
            )
            if answer.strip() != "erase":
                raise CommandError("Nothing erased.")
        try:
            erase_donor(donor, actor=command_actor(options))
        except ProviderError as exc:
            raise CommandError(f"Could not cancel a plan at the provider: {exc}. Nothing erased.")
        record_command(options, "donor-erase", AuditEntry.Action.ERASE, "donor", donor.pk)
        self.stdout.write(self.style.SUCCESS(f"Donor #{donor.pk} erased."))
