"""``manage.py import_bank_statement FILE [--actor USERNAME]``: record the bank transfers of
a statement CSV (reference, amount, currency, date) and list the lines that need a look.

The same rules as the admin's import (:mod:`masthead.contributions.statements`): matched by
reference only, a match recorded once (re-importing records nothing twice), mismatched and
unmatched lines listed, never guessed. Exit status 1 when some lines need a look.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from masthead.contributions import statements


class Command(BaseCommand):
    help = "Record the bank transfers of a statement CSV (reference, amount, currency, date)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the statement, CSV with a header line")
        parser.add_argument("--actor", default="", help="the staff username to record it as")

    def handle(self, *args, **options):
        actor = None
        if options["actor"]:
            actor = get_user_model().objects.filter(username=options["actor"]).first()
            if actor is None:
                raise CommandError(f"No user named {options['actor']!r}.")
        try:
            with open(options["file"], "rb") as handle:
                data = handle.read(statements.MAX_LINES * 512)
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}") from exc
        try:
            report = statements.import_statement(
                data,
                actor=actor,
                progress=lambda lines: tqdm(
                    lines, desc="transfers", unit="line", file=self.stderr._out
                ),
            )
        except statements.StatementError as exc:
            raise CommandError(str(exc)) from exc
        counts = ", ".join(f"{n} {outcome}" for outcome, n in report.counts.items())
        self.stdout.write(counts)
        for line in report.to_look_at:
            self.stdout.write(
                f"line {line.number}: {line.outcome}: {line.raw_reference!r} "
                f"{line.amount_label} {line.date_text} — {line.detail}"
            )
        if report.to_look_at:
            raise SystemExit(1)
