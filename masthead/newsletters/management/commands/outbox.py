"""``masthead outbox``: read the local outbox (data/outbox) from the terminal.

Lists the newest messages; ``masthead outbox 1`` prints the newest one (subject, to, and the
text body with its links), so a new user can follow a confirmation link without a mail client.
"""

from django.core.management.base import BaseCommand, CommandError

from masthead.core.mail import outbox_dir, read_outbox


def text_body(message) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


class Command(BaseCommand):
    help = "List the newest messages in the local outbox, or print one of them."

    def add_arguments(self, parser):
        parser.add_argument("number", nargs="?", type=int, help="Print message N (1 = newest).")
        parser.add_argument("--limit", type=int, default=10, help="How many to list.")
        parser.add_argument("--to", help="Only messages to this address.")

    def handle(self, *args, number=None, limit=10, to=None, **options):
        wanted = max(limit, number or 0)
        messages = read_outbox(limit=None if to else wanted)
        if to:
            messages = [(p, m) for p, m in messages if to.lower() in str(m.get("To", "")).lower()]
        messages = messages[:wanted]
        if not messages:
            self.stdout.write(f"The outbox ({outbox_dir()}) is empty.")
            return
        if number is None:
            for index, (_path, message) in enumerate(messages, start=1):
                date, to = message.get("Date", "")[:25], message.get("To", "")[:40]
                self.stdout.write(f"{index:>3}  {date:<25}  {to:<40}  {message.get('Subject', '')}")
            self.stdout.write("Print one with: masthead outbox N")
            return
        if not 1 <= number <= len(messages):
            raise CommandError(f"There are {len(messages)} messages: choose 1 to {len(messages)}.")
        path, message = messages[number - 1]
        self.stdout.write(f"File:    {path}")
        for header in ("Date", "From", "To", "Subject", "List-Unsubscribe"):
            if message.get(header):
                self.stdout.write(f"{header + ':':<9}{message[header]}")
        self.stdout.write("")
        self.stdout.write(text_body(message))
