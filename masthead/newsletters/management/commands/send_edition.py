"""``masthead send-edition ID``: send an edition from the command line, with a progress bar.

By default the send runs here, in this process (the same crash-safe ledger as the worker:
interrupt it and run the command again to continue). ``--enqueue`` hands it to the task
workers instead; ``--test-to`` sends a test copy only.
"""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from masthead.newsletters.delivery import (
    DeliveryError,
    delivery_progress,
    delivery_run,
    delivery_start,
    enqueue_workers,
    send_test,
)
from masthead.newsletters.forms import clean_address
from masthead.newsletters.models import Delivery, Edition


class Command(BaseCommand):
    help = "Send (or resume sending) an edition to its newsletter's confirmed subscribers."

    def add_arguments(self, parser):
        parser.add_argument("edition", type=int, help="The edition's id (see the admin).")
        parser.add_argument("--enqueue", action="store_true", help="Let the workers send it.")
        parser.add_argument("--test-to", nargs="+", metavar="ADDRESS", help="Send a test only.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, edition, enqueue=False, test_to=None, no_progress=False, **options):
        try:
            found = Edition.objects.select_related("newsletter").get(pk=edition)
        except Edition.DoesNotExist:
            raise CommandError(f"There is no edition {edition}.")
        if test_to:
            try:
                addresses = [clean_address(a) for a in test_to]
            except Exception as exc:  # ValidationError: say which rule failed
                raise CommandError(" ".join(getattr(exc, "messages", [str(exc)])))
            count = send_test(found, addresses)
            self.stdout.write(f"Test of “{found}” sent to {count} address(es).")
            return
        delivery = Delivery.objects.filter(edition=found).first()
        if delivery is None:
            try:
                delivery = delivery_start(found, enqueue=enqueue)
            except DeliveryError as exc:
                raise CommandError(str(exc))
        elif delivery.status == Delivery.Status.DONE:
            raise CommandError(f"“{found}” was sent already ({delivery.total} recipients).")
        if enqueue:
            if delivery.status == Delivery.Status.SENDING and delivery.started_at:
                enqueue_workers(delivery.pk)
            self.stdout.write(f"Delivery {delivery.pk} of “{found}” is queued for the workers.")
            return
        if delivery.status == Delivery.Status.PAUSED:
            raise CommandError("This delivery is paused: resume it in the admin first.")
        state = delivery_progress(delivery)
        done = state["sent"] + state["failed"] + state["skipped"]
        bar = tqdm(
            total=delivery.total,
            initial=done,
            unit="msg",
            desc=found.subject[:30],
            disable=no_progress,
            file=self.stderr._out,
        )

        def progress(counts):
            bar.update(counts.get("sent", 0) + counts.get("failed", 0) + counts.get("skipped", 0))

        report = delivery_run(delivery.pk, progress=progress)
        bar.close()
        final = delivery_progress(Delivery.objects.get(pk=delivery.pk))
        self.stdout.write(
            f"{final['sent']} sent, {final['failed']} failed, {final['skipped']} skipped, "
            f"{final['remaining']} remaining"
            + (" — finished." if report.finished else " — not finished (run again to go on).")
        )
