"""``masthead reconcile-contributions``: check stuck pending payments and overdue renewals
with their providers now.

The scheduler runs the same reconciliation every ten minutes; this is for operators.
"""

from django.core.management.base import BaseCommand
from tqdm import tqdm

from masthead.contributions.tasks import reconcile


class Command(BaseCommand):
    help = (
        "Ask providers about pending payments and overdue renewals, and retry provider "
        "events that failed."
    )

    def handle(self, *args, **options):
        report = reconcile(
            progress=lambda items: tqdm(items, desc="Checking with providers", unit="record")
        )
        self.stdout.write(
            self.style.SUCCESS(
                "Checked {checked} payments and {plans checked} plans, updated {updated}, "
                "abandoned {abandoned}, retried events {retried}.".format(**report)
            )
        )
