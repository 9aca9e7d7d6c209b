"""WSGI entry point (gunicorn masthead.wsgi): webhooks take the lean path
(:mod:`masthead.core.lean`), everything else Django's ordinary handler."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "masthead.settings")
_django = get_wsgi_application()

from masthead.core.lean import LeanDispatcher  # noqa: E402 - needs the settings configured

application = LeanDispatcher(_django)
