"""The ApiKey model moved from crm to core by state only: an existing database keeps its table,
its keys and the content type their permissions point at."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core.models import ApiKey
from core.services.api_keys import api_key_authenticate, api_key_create


def _migrate(targets: list[tuple[str, str | None]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    ContentType.objects.clear_cache()


@pytest.mark.django_db(transaction=True)
def test_an_existing_database_keeps_its_keys_and_their_permissions() -> None:
    _api_key, raw_key = api_key_create(name="shop", scopes=["orders:read"])
    _migrate([("core", None)])  # back to before the move: crm owns ApiKey again
    content_type = ContentType.objects.get(model="apikey")
    assert content_type.app_label == "crm"
    permission_ids = set(
        Permission.objects.filter(content_type=content_type).values_list("id", flat=True)
    )
    assert permission_ids  # add/change/delete/view, created when the test database was set up

    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    content_type = ContentType.objects.get(model="apikey")
    assert content_type.app_label == "core"
    assert ContentType.objects.get_for_model(ApiKey).pk == content_type.pk
    assert permission_ids == set(
        Permission.objects.filter(content_type=content_type).values_list("id", flat=True)
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM crm_apikey")
        assert cursor.fetchone() == (1,)
    api_key = api_key_authenticate(raw_key)
    assert api_key is not None and api_key.name == "shop"
