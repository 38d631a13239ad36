"""Helpers shared by tests of every app."""

from django.db import connection


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
