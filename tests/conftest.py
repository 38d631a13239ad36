"""Shared fixtures: API clients holding keys with given scopes, the admin site as a superuser,
the rows data migrations create (restored after a transactional test's flush), the tasks
services enqueue, the WeCom fake and a webhook receiver."""

import importlib
import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
from celery.app.task import Task
from django.apps import apps
from django.contrib.auth.models import User
from django.test import Client, override_settings
from rest_framework.test import APIClient

from campaigns.channels import webhook_url
from config import embedded
from core import enqueue
from core.services.api_keys import api_key_create
from devstack.wecom_fake import FakeWeCom, FakeWeComConfig
from tests.campaigns.support import CORP_ID, WECOM_SECRET, WebhookReceiver
from tests.support import client_of

_PRESET_MIGRATION = importlib.import_module("campaigns.migrations.0002_platform_preset")


def pytest_unconfigure(config: pytest.Config) -> None:
    """`make test` stops what it started: the embedded PostgreSQL, when this run started it (a
    server that was already running, for `make run` say, is left alone)."""
    if embedded.started_by_this_process:
        from django.db import connections

        connections.close_all()
        embedded.postgres_stop()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> None:
    """The test database lets a transactional test's flush TRUNCATE the audit trail, which
    core migration 0004 refuses everywhere else (the setting is this database's alone)."""
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        (name,) = cursor.fetchone()
        cursor.execute(
            f"ALTER DATABASE {connection.ops.quote_name(name)} SET crm.audit_truncate = 'on'"
        )
        cursor.execute("SET crm.audit_truncate = 'on'")


@pytest.fixture(autouse=True)
def platform_preset(request: pytest.FixtureRequest) -> None:
    """The WeCom platform limit preset exists in every test's database, as in production: a
    data migration creates it, and a transactional test's flush would remove it for the tests
    after it."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    is_transactional = marker.kwargs.get("transaction", False)
    request.getfixturevalue("transactional_db" if is_transactional else "db")
    _PRESET_MIGRATION.create_preset(apps, None)


# What the tests' webhook hosts resolve to: a public address (example.com's), never looked up.
PUBLIC_TEST_ADDRESS = "93.184.215.14"


@pytest.fixture(autouse=True)
def offline_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhook URLs are resolved when a campaign is saved and before its posts: in the tests,
    names under example.com and .example resolve to a public address and every other name
    fails, so that no test depends on the network's DNS."""

    def resolve(host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        if host == "example.com" or host.endswith((".example.com", ".example")):
            return [PUBLIC_TEST_ADDRESS]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(webhook_url, "resolve_host", resolve)


class Enqueued(NamedTuple):
    """A task a service enqueued: its name and the arguments of its message."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[Enqueued]:
    """The one seam for enqueueing: every task the services enqueue (`core.enqueue`) is
    recorded here in order, when its transaction commits, instead of being published. In a
    test inside a transaction (`django_db` without `transaction=True`) nothing commits: run
    the code under `django_capture_on_commit_callbacks(execute=True)`."""
    recorded: list[Enqueued] = []

    def record(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        recorded.append(Enqueued(task.name, args, kwargs))

    monkeypatch.setattr(enqueue, "publish", record)
    return recorded


@pytest.fixture
def api_client_with_scopes(db: None) -> Callable[..., APIClient]:
    """`api_client_with_scopes("orders:write", ...)`: a client sending a fresh key."""

    def make(*scopes: str) -> APIClient:
        _, raw_key = api_key_create(name="test", scopes=scopes)
        client = APIClient(HTTP_ACCEPT_LANGUAGE="en")  # messages asserted in English
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
        return client

    return make


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def admin_client_en(admin_user: User) -> Client:
    """The admin site as a superuser reading English (its pages are asserted in English)."""
    return client_of(admin_user)


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    """The WeCom fake over real HTTP, without its own cap, with the settings pointing at it."""
    config = FakeWeComConfig(corps={CORP_ID: WECOM_SECRET}, cap_per_receiver=None)
    with (
        FakeWeCom(config) as server,
        override_settings(
            WECOM_API_BASE_URL=server.api_base_url,
            WECOM_CORP_ID=CORP_ID,
            WECOM_SECRET=WECOM_SECRET,
        ),
    ):
        yield server


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver on loopback, which WEBHOOK_ALLOW_PRIVATE_NETWORKS lets campaigns post
    to."""
    with WebhookReceiver() as receiver, override_settings(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True):
        yield receiver
