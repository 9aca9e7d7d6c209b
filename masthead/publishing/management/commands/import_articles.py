"""``masthead import-articles FILE.jsonl``: import articles, one JSON object per line."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from masthead.publishing.importer import import_file


class Command(BaseCommand):
    help = "Import (or re-import, by external_id) articles from a JSON Lines file."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, file: Path, no_progress: bool = False, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        with file.open("rb") as handle:
            total = sum(1 for _ in handle)
        bar = tqdm(total=total, unit="line", disable=no_progress, file=self.stderr._out)

        def report_error(number: int, reason: str) -> None:
            bar.write(f"{file}:{number}: {reason}", file=self.stderr._out)

        try:
            report = import_file(file, progress=bar.update, on_error=report_error)
        finally:
            bar.close()
        summary = (
            f"{report.created} created, {report.updated} updated, "
            f"{len(report.errors)} line(s) with errors"
        )
        if report.errors:
            # The good lines are imported; a non-zero status tells scripts to look.
            raise CommandError(summary, returncode=1)
        else:
            self.stdout.write(self.style.SUCCESS(summary))
