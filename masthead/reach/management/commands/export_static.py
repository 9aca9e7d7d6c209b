"""``masthead export-static DIR``: the public site as files any static host can serve."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from masthead.reach.export import export_static


class Command(BaseCommand):
    help = (
        "Write the public site (every language, pages, newsletter archive, feeds, sitemaps, "
        "images, CSS/JS and an offline search index) into DIR with relative links."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", metavar="DIR")
        parser.add_argument(
            "--base-url",
            help="Where the copy will be served (feeds and sitemaps name it). "
            "Default: MASTHEAD_BASE_URL.",
        )
        parser.add_argument(
            "--live-url",
            help="A live host the copy's forms post to (default: MASTHEAD_STATIC_FORMS_URL; "
            "without one the forms give way to the email alternative).",
        )
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="Re-render only what publishing changed since the last export into DIR.",
        )
        parser.add_argument(
            "--archive", metavar="FILE", help="Also write the copy as one .tar.gz or .zip."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, directory, base_url, live_url, incremental, archive, **options):
        if archive and not archive.endswith((".tar.gz", ".tgz", ".zip")):
            raise CommandError("--archive must end in .tar.gz, .tgz or .zip")
        try:
            report = export_static(
                directory,
                base_url=base_url,
                live_url=live_url,
                incremental=incremental,
                archive=archive,
                progress=not options["no_progress"] and options["verbosity"] > 0,
            )
        except ValueError as error:
            raise CommandError(str(error))
        kind = "full" if report.full else "incremental"
        self.stdout.write(
            f"{kind} export to {report.directory}: {len(report.written)} files written, "
            f"{report.unchanged} unchanged, {len(report.removed)} removed; "
            f"{report.files} files, {report.bytes / 1e6:.1f} MB in {report.seconds:.1f} s"
        )
        if report.archive:
            self.stdout.write(f"archive: {report.archive}")
        for missing in report.missing:
            self.stderr.write(f"not exported: {missing}")
