"""Helpers shared by tests of every app: the test database's URL for a subprocess, a browser
logged in to the admin site, and the sessions waiting for a lock."""

from django.contrib.auth.models import User
from django.db import connection
from django.test import Client


def subprocess_database_url() -> str:
    """The test database as a DATABASE_URL, for a subprocess (a Celery worker, a second web
    process) to reach the database this test writes to."""
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    # The embedded server is reached by its socket folder, given as the `host` option.
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host") or ""
    if host.startswith("/"):
        return f"postgres://{user}{password}@/{db['NAME']}?host={host}"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


def client_of(user: User) -> Client:
    """A browser logged in as `user`, reading English (the pages are asserted in English)."""
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def locked_waiters() -> int:
    """Sessions of this database waiting for a lock, read from pg_stat_activity on the
    caller's connection."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = cursor.fetchone()
        return int(row[0]) if row else 0
