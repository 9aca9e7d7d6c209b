"""``masthead sandbox-event``: make a provider that simulates events (the sandbox) send a
webhook — renewal, failed renewal, refund, dispute — for demos and for trying dunning without
waiting a month. The signed request goes through the webhook endpoint's own code."""

from django.core.management.base import BaseCommand, CommandError

from masthead.contributions.models import Contribution, RecurringPlan
from masthead.contributions.providers import UnknownProvider, enabled_providers, get_provider
from masthead.contributions.views import accept_webhook


class Command(BaseCommand):
    help = "Simulate a provider event (the sandbox's), delivered through the webhook path."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=["renew", "fail-renewal", "refund", "dispute"])
        parser.add_argument("id", type=int, help="Plan id (renewals) or contribution id.")
        parser.add_argument("--period", type=int, default=2, help="Billing period number.")
        parser.add_argument("--attempt", type=int, default=1)
        parser.add_argument("--status", default="open", choices=["open", "won", "lost"])
        parser.add_argument(
            "--provider", help="Which provider (default: the first that simulates events)."
        )

    def handle(self, *args, kind, id, period, attempt, status, provider=None, **options):  # noqa: A002
        if provider:
            try:
                chosen = get_provider(provider)
            except UnknownProvider:
                raise CommandError(f"No provider {provider!r} is configured.")
        else:
            chosen = next((p for p in enabled_providers() if p.simulates_events), None)
        if chosen is None or not chosen.simulates_events:
            raise CommandError("No configured provider simulates events (the sandbox does).")
        if kind in ("renew", "fail-renewal"):
            target = RecurringPlan.objects.filter(pk=id, provider=chosen.key).first()
            if target is None:
                raise CommandError(f"No {chosen.key} plan with that id.")
        else:
            target = Contribution.objects.filter(pk=id, provider=chosen.key).first()
            if target is None or not target.payment_ref:
                raise CommandError(f"No paid {chosen.key} contribution with that id.")
        signed = chosen.simulate(kind, target, period=period, attempt=attempt, status=status)
        response = accept_webhook(chosen.key, signed.body, signed.headers)
        if response.status_code >= 400:
            raise CommandError(response.content.decode())
        self.stdout.write(self.style.SUCCESS(response.content.decode()))
