"""Periodic newsletter jobs, run by ``masthead scheduler`` (see masthead.core.scheduler)."""

from django.conf import settings

from masthead.core.scheduler import every

from .delivery import recover_stalled, start_due_editions
from .subscriptions import expire_unconfirmed
from .webhooks import prune_webhook_deliveries


@every(settings.MASTHEAD_NEWSLETTER_TICK_SECONDS, name="newsletters.send_due_and_recover")
def send_due_and_recover() -> None:
    """Start scheduled editions that are due; re-enqueue deliveries whose worker died."""
    start_due_editions()
    recover_stalled()


@every(3600, name="newsletters.expire_unconfirmed")
def expire_unconfirmed_signups() -> None:
    """Delete sign-ups whose confirmation link has expired."""
    expire_unconfirmed()


@every(3600, name="newsletters.prune_webhook_deliveries")
def prune_email_webhook_deliveries() -> None:
    """Forget signed email-webhook deliveries older than the replay window."""
    prune_webhook_deliveries()
