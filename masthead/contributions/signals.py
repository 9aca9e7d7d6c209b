"""Signals other apps listen to (part of the contract with campaigns).

``contribution_succeeded`` is sent once per contribution, after the transaction that first
recorded its payment commits, with ``contribution`` and ``source`` (the attribution string
posted with the checkout, e.g. ``appeal:3:7``; empty for renewals, whose attribution belongs to
the plan's first payment).
"""

from django.dispatch import Signal

contribution_succeeded = Signal()
