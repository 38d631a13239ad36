"""The PostgreSQL cache (used when CACHE_URL is unset): one statement per write, and expired
rows of other keys dropped as it writes."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.cache import PostgresCache

pytestmark = pytest.mark.django_db

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def table_cache() -> PostgresCache:
    return PostgresCache("crm_cache", {"KEY_PREFIX": "cache-test"})


def stored_keys() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT cache_key FROM crm_cache WHERE cache_key LIKE 'cache-test%%'")
        return sorted(row[0] for row in cursor.fetchall())


def test_a_write_is_one_statement_and_overwrites(table_cache: PostgresCache) -> None:
    table_cache.set("count", [1.0], 60)
    with CaptureQueriesContext(connection) as captured:
        table_cache.set("count", [2.0, 1.0], 60)
    assert len(captured) == 1
    assert table_cache.get("count") == [2.0, 1.0]
    assert stored_keys() == ["cache-test:1:count"]


def test_a_write_drops_expired_rows_of_other_keys(table_cache: PostgresCache) -> None:
    with time_machine.travel(START, tick=False) as clock:
        table_cache.set("short", 1, 10)
        table_cache.set("long", 2, 600)
        clock.shift(timedelta(seconds=11))
        table_cache.set("new", 3, 60)
        assert stored_keys() == ["cache-test:1:long", "cache-test:1:new"]
        assert table_cache.get("short") is None
        assert (table_cache.get("long"), table_cache.get("new")) == (2, 3)
