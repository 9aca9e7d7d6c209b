"""``masthead setup``: migrate, build the site skeleton, optionally load the demo, make an admin."""

import importlib
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

DEMO_APPS = ("masthead.newsletters", "masthead.contributions", "masthead.campaigns")


class Command(BaseCommand):
    help = "Prepare the database: migrations, home pages, demo content and an admin account."

    def add_arguments(self, parser):
        parser.add_argument("--demo", action="store_true", help="Load the demo content.")
        parser.add_argument("--no-admin", action="store_true", help="Do not create an admin.")

    def handle(self, *args, demo=False, no_admin=False, **options):
        call_command("migrate", interactive=False, verbosity=0)
        from masthead.publishing.demo import ensure_site, load_demo_articles
        from masthead.publishing.models import ArticlePage

        with transaction.atomic():
            ensure_site()
        if demo:
            if not ArticlePage.objects.exists():
                report = load_demo_articles()
                self.stdout.write(f"Demo articles: {report.created} created.")
                for number, reason in report.errors:
                    self.stderr.write(f"demo line {number}: {reason}")
            for app in DEMO_APPS:
                try:
                    module = importlib.import_module(f"{app}.demo")
                except ModuleNotFoundError:
                    continue
                module.load_demo()
        if not no_admin:
            self.ensure_admin()

    def ensure_admin(self):
        User = get_user_model()
        password_file = settings.DATA_DIR / "admin-password.txt"
        if not User.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "admin@localhost", password)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        if password_file.exists():
            self.stdout.write(
                self.style.SUCCESS(
                    f"Admin: {settings.MASTHEAD_BASE_URL}/admin/  user: admin  "
                    f"password: {password_file.read_text().strip()}  (also in {password_file})"
                )
            )
