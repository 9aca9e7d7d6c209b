"""The audit log of staff access to readers' personal data (as Zulip's ``RealmAuditLog``).

Every time a member of staff exports, erases or opens a donor's or a subscriber's decrypted
details — in the Wagtail admin or with a management command — the app that shows them calls
:func:`record_access` (or :func:`record_admin_view` from a view), which writes one
:class:`AuditEntry`: who, what they did, to which kind of record and its id, when, and where
(the admin view's URL name or the command). An entry never holds the email address or any other
personal detail in clear, only the record's id. A list page that shows many addresses writes one
entry per page view with the number of records shown, not one per row.

Entries are written once and never changed: ``save()`` refuses an update and ``delete()``
refuses to delete. Superusers read them under Settings → Access log in the Wagtail admin
(``wagtail_hooks.py``), which has no add, edit or delete views; the Django admin does not
register the model. Core imports no app: apps call this module.
"""

from __future__ import annotations

import getpass

from django.conf import settings
from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.utils import timezone


class AuditEntry(models.Model):
    class Action(models.TextChoices):
        VIEW = "view", "viewed"
        EXPORT = "export", "exported"
        ERASE = "erase", "erased"

    class Via(models.TextChoices):
        ADMIN = "admin", "admin"
        COMMAND = "command", "command"

    at = models.DateTimeField("when", default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="user account",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,  # the entry outlives the account; actor_name keeps who
        related_name="+",
    )
    actor_name = models.CharField(
        "actor",
        max_length=150,
        help_text="The staff member's username, or who ran the command.",
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    subject_type = models.CharField("record", max_length=30)
    subject_id = models.BigIntegerField(
        "record id", null=True, blank=True, help_text="Empty for a list of several records."
    )
    count = models.PositiveIntegerField(default=1, help_text="Records shown or touched.")
    via = models.CharField(max_length=10, choices=Via.choices)
    where = models.CharField(max_length=150, help_text="Admin view or management command.")
    detail = models.CharField(max_length=200, blank=True)

    # Not reader pages or content: nothing here for Wagtail's reference index.
    wagtail_reference_index_ignore = True

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = "access log entry"
        verbose_name_plural = "access log entries"
        indexes = [models.Index(fields=["subject_type", "subject_id"])]

    def __str__(self) -> str:
        record = f"{self.subject_type} #{self.subject_id}" if self.subject_id else (
            f"{self.count} {self.subject_type} records"
        )
        return f"{self.actor_name} {self.get_action_display()} {record} ({self.at:%Y-%m-%d %H:%M})"

    def save(self, *args, **kwargs):
        if self.pk is not None or kwargs.get("force_update"):
            raise PermissionError("Access log entries are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Access log entries are never deleted.")

    @admin.display(description="when", ordering="at")
    def when(self) -> str:
        """The exact local time, to the second (a log is read for exact times)."""
        return timezone.localtime(self.at).strftime("%Y-%m-%d %H:%M:%S")

    @property
    def subject(self) -> str:
        if self.subject_id is not None:
            return f"{self.subject_type} #{self.subject_id}"
        return f"{self.count} × {self.subject_type}"


def record_access(
    actor,
    action: str,
    subject_type: str,
    subject_id: int | None = None,
    *,
    via: str = AuditEntry.Via.ADMIN,
    where: str = "",
    count: int = 1,
    detail: str = "",
) -> AuditEntry:
    """Write one entry. ``actor`` is a user, or a name (who ran a command); ``subject_type``
    names the kind of record ("donor", "subscriber"), ``subject_id`` its id — never an email."""
    user = actor if getattr(actor, "pk", None) is not None else None
    name = user.get_username() if user is not None else str(actor or "unknown")
    return AuditEntry.objects.create(
        actor=user,
        actor_name=name[:150],
        action=AuditEntry.Action(action),
        subject_type=subject_type,
        subject_id=subject_id,
        count=count,
        via=AuditEntry.Via(via),
        where=where[:150],
        detail=detail[:200],
    )


def record_admin_view(
    request: HttpRequest,
    subject_type: str,
    subject_id: int | None = None,
    *,
    action: str = AuditEntry.Action.VIEW,
    count: int = 1,
    detail: str = "",
) -> AuditEntry:
    """Record that the signed-in staff member saw (or exported, erased) records in the admin;
    ``where`` is the view's URL name."""
    match = getattr(request, "resolver_match", None)
    where = match.view_name if match is not None else request.path
    return record_access(
        request.user,
        action,
        subject_type,
        subject_id,
        via=AuditEntry.Via.ADMIN,
        where=where,
        count=count,
        detail=detail,
    )


def add_actor_argument(parser) -> None:
    """Give a management command ``--actor`` (default: the operating-system user)."""
    parser.add_argument(
        "--actor",
        help="Who is running this, for the access log (default: the logged-in system user).",
    )


def command_actor(options: dict) -> str:
    """Who ran a command: ``--actor``, else the operating-system user."""
    if options.get("actor"):
        return options["actor"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "unknown"


def record_command(
    options: dict,
    command: str,
    action: str,
    subject_type: str,
    subject_id: int | None,
    *,
    detail: str = "",
) -> AuditEntry:
    """Record an access made by a management command (``command``: its name)."""
    return record_access(
        command_actor(options),
        action,
        subject_type,
        subject_id,
        via=AuditEntry.Via.COMMAND,
        where=command,
        detail=detail,
    )
