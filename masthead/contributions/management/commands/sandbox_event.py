"""``masthead sandbox-event``: make the sandbox provider send a webhook (renewal, failed
renewal, refund, dispute) — for demos and for trying dunning without waiting a month."""

from django.core.management.base import BaseCommand, CommandError

from masthead.contributions.models import Contribution, RecurringPlan
from masthead.contributions.providers import UnknownProvider, get_provider
from masthead.contributions.providers.sandbox import SandboxProvider


class Command(BaseCommand):
    help = "Simulate a sandbox provider event, delivered through the normal webhook path."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=["renew", "fail-renewal", "refund", "dispute"])
        parser.add_argument("id", type=int, help="Plan id (renewals) or contribution id.")
        parser.add_argument("--period", type=int, default=2, help="Billing period number.")
        parser.add_argument("--attempt", type=int, default=1)
        parser.add_argument("--status", default="open", choices=["open", "won", "lost"])

    def handle(self, *args, kind, id, period, attempt, status, **options):  # noqa: A002
        try:
            provider = get_provider("sandbox")
        except UnknownProvider:
            provider = None
        if not isinstance(provider, SandboxProvider):
            raise CommandError("The sandbox provider is not configured.")
        if kind in ("renew", "fail-renewal"):
            plan = RecurringPlan.objects.filter(pk=id, provider=provider.key).first()
            if plan is None:
                raise CommandError("No sandbox plan with that id.")
            event = provider.renew(plan, succeed=kind == "renew", period=period, attempt=attempt)
        else:
            contribution = Contribution.objects.filter(pk=id, provider=provider.key).first()
            if contribution is None or not contribution.payment_ref:
                raise CommandError("No paid sandbox contribution with that id.")
            if kind == "refund":
                event = provider.refund(contribution)
            else:
                event = provider.dispute(contribution, status)
        self.stdout.write(self.style.SUCCESS(f"{event.event_type}: {event.status}"))
