"""Shared fixtures: the demo site, a subprocess environment for workers, and Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright + live_server + ORM

CHROMIUM = os.environ.get("MASTHEAD_CHROMIUM", "/usr/bin/chromium")


# --- Parallel runs (pytest-xdist) -----------------------------------------------------------


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config, specs):
    """Give each xdist worker a data folder of its own (test database, outbox, media, cache).

    masthead.settings makes a temporary MASTHEAD_DATA_DIR when testing and puts it in the
    environment so that the processes a test starts share it; the workers xdist starts would
    inherit the controller's folder the same way. When the folder is that one (not one the
    caller chose), drop it from the environment: each worker then makes its own. PostgreSQL
    test databases and the SQLite file get pytest-django's per-worker suffix (``_gw0``).
    """
    made = settings.DATA_DIR
    if os.environ.get("MASTHEAD_DATA_DIR") == str(made) and made.name.startswith(
        "masthead-test-"
    ):
        del os.environ["MASTHEAD_DATA_DIR"]
        try:
            made.rmdir()  # the controller runs no test: its folder is still empty
        except OSError:
            pass


@pytest.fixture
def site(db):
    """The site skeleton: home pages in English and Russian, the Privacy Policy."""
    from masthead.publishing.demo import ensure_site

    return ensure_site()


@pytest.fixture
def demo(site):
    """The demo site with its articles (and whatever demo content the apps add)."""
    from masthead.core.management.commands.setup import DEMO_APPS
    from masthead.publishing.demo import load_demo_articles
    from masthead.publishing.models import ArticlePage

    if not ArticlePage.objects.exists():
        report = load_demo_articles()
        assert not report.errors, report.errors
    import importlib

    for app in DEMO_APPS:
        try:
            module = importlib.import_module(f"{app}.demo")
        except ModuleNotFoundError:
            continue
        module.load_demo()
    return site


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import caches

    caches["default"].clear()
    caches["state"].clear()  # rate limits, counters, scheduler locks, page-cache generation
    yield


def database_url_for_tests() -> str:
    """A DATABASE_URL that points a subprocess (worker, server) at the test database."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or 'localhost'}{port}/{db['NAME']}"


_SERIALIZED_CONTENTS: dict[str, str] = {}


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """pytest-django's database setup, keeping the serialized contents it made."""
    from django.db import connections

    for alias in connections:
        contents = getattr(connections[alias], "_test_serialized_contents", None)
        if contents is not None:
            _SERIALIZED_CONTENTS[alias] = contents
            # Also on the wrapper's class: Django's connections are context-local, and once
            # Playwright's sync API runs (greenlets) a test's teardown may see a fresh
            # connection object. Without the contents there, the teardown flush runs
            # post_migrate, which re-creates content types under new ids, and the next
            # serialized test's restore collides with them (seen on PostgreSQL: a threaded
            # transactional test, then two live-server tests).
            type(connections[alias])._test_serialized_contents = contents


@pytest.fixture
def _serialized_contents_here(django_db_setup):
    """Hand the serialized contents to the connection this test will use.

    Django's connections are context-local; once Playwright's sync API has started (it runs
    on greenlets), later tests see fresh connection objects without the contents the setup
    stored, so their serialized rollback silently did nothing.
    """
    from django.db import connections

    for alias, contents in _SERIALIZED_CONTENTS.items():
        connections[alias]._test_serialized_contents = contents


@pytest.fixture
def transactional_db(_serialized_contents_here, django_db_serialized_rollback, transactional_db):
    """pytest-django's transactional_db, always with serialized rollback.

    A transactional test ends by flushing the database, which also deletes what the
    migrations created (Wagtail's root page, collections, locales); serialized rollback
    restores it for the next test. It must be all or nothing: a plain flush re-creates
    content types with new ids, which the next serialized restore then collides with.
    (``django_db_serialized_rollback`` comes first so that pytest-django sees it; live_server
    tests request this fixture too.)
    """
    return transactional_db


@pytest.fixture
def subprocess_env(transactional_db) -> dict[str, str]:
    """Environment for a ``masthead`` subprocess that shares this test's database and data."""
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url_for_tests()
    env["MASTHEAD_DATA_DIR"] = str(settings.DATA_DIR)
    env["MASTHEAD_TESTING"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


# --- Chromium through Playwright ------------------------------------------------------------


def _chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not _chromium_available():
        if os.environ.get("CI"):
            pytest.fail(f"CI=true but Chromium is missing at {CHROMIUM}: browser tests must run")
        pytest.skip(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": "en-GB", "service_workers": "block"}


# --- Staff sign-in ---------------------------------------------------------------------------


def sign_in_verified(client, user):
    """Sign ``user`` in with a confirmed TOTP device verified for the session.

    Staff who can see donor data (superusers included) must pass two-factor authentication
    before the admin lets them in (masthead.core.staff_otp).
    """
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=user, name="test phone", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


@pytest.fixture
def admin_client(db, client, admin_user):
    """pytest-django's admin_client, signed in with two-factor authentication verified."""
    sign_in_verified(client, admin_user)
    return client


def pytest_collection_modifyitems(config, items):
    """A transactional test must restore what it flushes (see ``transactional_db`` above):
    a test that flushes without serialized rollback breaks every serialized test after it,
    far from the cause, so refuse it here by name. (A ``live_server`` test that reaches the
    database first through ``db`` — e.g. the ``site`` fixture — is transactional without
    the override above: give it ``transactional_db`` or the marker.)"""
    for item in items:
        names = getattr(item, "fixturenames", ())
        marker = item.get_closest_marker("django_db")
        kwargs = marker.kwargs if marker is not None else {}
        transaction = kwargs.get("transaction", bool(marker and marker.args and marker.args[0]))
        transactional = transaction or "transactional_db" in names or "live_server" in names
        serialized = kwargs.get("serialized_rollback", False) or (
            "django_db_serialized_rollback" in names
        )
        if transactional and not serialized:
            message = (
                f"{item.nodeid}: a transactional test needs serialized rollback: use the "
                "transactional_db fixture or @pytest.mark.django_db(transaction=True, "
                "serialized_rollback=True); a plain flush re-creates content types that the "
                "next serialized restore collides with"
            )
            if hasattr(config, "workerinput"):
                # An xdist worker: its UsageError would reach the controller as a bare
                # internal error without this message. A failed collection report is shown
                # with its text, and stops the run before any test starts.
                from _pytest.reports import CollectReport

                config.hook.pytest_collectreport(
                    report=CollectReport(item.nodeid, "failed", message, [])
                )
                items.clear()
                return
            raise pytest.UsageError(message)
