"""Helpers shared by tests of every app: the test database's URL for a subprocess, a browser
logged in to the admin site and what an admin form would post, work run on threads of its own
against the database, the sessions waiting for a lock, and the data of a page's charts."""

import json
import re
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

T = TypeVar("T")


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


def form_data(page: Any, **fields: Any) -> dict[str, Any]:
    """What the page's form would post unchanged, with `fields` changed (inline rows by their
    prefixed names)."""
    form = page.context["adminform"].form
    data: dict[str, Any] = {}
    for name in form.fields:
        value = form[name].value()
        if value is not None:  # absent: empty
            data[name] = value
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(
            {
                f"{formset.prefix}-TOTAL_FORMS": str(formset.total_form_count()),
                f"{formset.prefix}-INITIAL_FORMS": str(formset.initial_form_count()),
            }
        )
        for row in formset.forms:
            for name in row.fields:
                value = row[name].value()
                if value is not None and value is not False:
                    data[row.add_prefix(name)] = value
    data.update(fields)
    return {name: value for name, value in data.items() if value is not None}


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


def on_own_connection(work: Callable[[], T]) -> Callable[[], T]:
    """`work` for a thread of its own: it runs on that thread's database connection, which is
    closed after it (a test database cannot be dropped while one is left open)."""

    def run() -> T:
        try:
            return work()
        finally:
            connection.close()

    return run


def run_together(*works: Callable[[], object]) -> list[BaseException]:
    """Run `works` at once, each on a thread and a database connection of its own, released
    together by a barrier; answer what they raised. Needs a transactional test."""
    barrier = threading.Barrier(len(works))
    errors: list[BaseException] = []

    def run(work: Callable[[], object]) -> None:
        try:
            barrier.wait()
            work()
        except BaseException as error:  # reported after the join
            errors.append(error)

    threads = [threading.Thread(target=on_own_connection(partial(run, work))) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def json_script_data(page: Any, element_id: str) -> Any:
    """The data a page gives its charts in the json_script element `element_id`."""
    content = page.content.decode()
    found = re.search(
        rf'<script id="{re.escape(element_id)}" type="application/json">(.*?)</script>',
        content,
        flags=re.S,
    )
    assert found is not None, f"no json_script element {element_id}"
    return json.loads(found.group(1))
