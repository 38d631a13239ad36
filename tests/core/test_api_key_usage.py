"""API key use per key per hour: counted in the shared cache as requests arrive (no table of
its own written per request), folded into ApiKeyUsage by the scheduled task with absolute
counts, so that a repeated fold never counts twice; shown in the API key admin."""

import os
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from redis.exceptions import RedisError

from core.models import ApiKey, ApiKeyUsage
from core.services.api_key_usage import api_key_usage_fold, api_key_use_count, hour_of
from core.services.api_keys import api_key_authenticate, api_key_create
from core.tasks import api_key_usage_fold_task
from tests.support import client_of

pytestmark = pytest.mark.django_db

# The Redis the tests' broker runs on (counters under a prefix of their own; nothing is emptied).
_BROKER = os.environ.get("CELERY_BROKER_URL", "")
REDIS_URL = _BROKER if _BROKER.startswith("redis://") else "redis://127.0.0.1:6379/0"
NOW = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
HOUR = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def _key(name: str = "erp") -> ApiKey:
    api_key, _raw = api_key_create(name=name, scopes=["orders:read"])
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=NOW)
    return api_key


def _usage() -> list[tuple[str, datetime, int]]:
    return list(
        ApiKeyUsage.objects.order_by("api_key__name", "hour").values_list(
            "api_key__name", "hour", "request_count"
        )
    )


def test_hours_are_truncated_in_utc() -> None:
    assert hour_of(datetime(2026, 12, 5, 18, 59, 59, tzinfo=UTC)) == datetime(
        2026, 12, 5, 18, 0, tzinfo=UTC
    )


def test_counts_fold_per_key_and_hour() -> None:
    erp, shop = _key("erp"), _key("shop")
    for _ in range(3):
        api_key_use_count(api_key_id=erp.pk, now=NOW)
    api_key_use_count(api_key_id=erp.pk, now=NOW - timedelta(hours=1))
    api_key_use_count(api_key_id=shop.pk, now=NOW)

    assert api_key_usage_fold(now=NOW) == 3
    assert _usage() == [
        ("erp", HOUR - timedelta(hours=1), 1),
        ("erp", HOUR, 3),
        ("shop", HOUR, 1),
    ]


def test_a_second_fold_never_counts_twice_and_a_later_one_adds_only_what_came() -> None:
    erp = _key()
    for _ in range(2):
        api_key_use_count(api_key_id=erp.pk, now=NOW)
    api_key_usage_fold(now=NOW)
    api_key_usage_fold(now=NOW)
    assert _usage() == [("erp", HOUR, 2)]

    api_key_use_count(api_key_id=erp.pk, now=NOW + timedelta(minutes=5))
    api_key_usage_fold(now=NOW + timedelta(minutes=5))
    api_key_usage_fold(now=NOW + timedelta(minutes=10))
    assert _usage() == [("erp", HOUR, 3)]


def test_a_fold_never_lowers_a_stored_count() -> None:
    """A counter lost from the cache (evicted, a Redis restart) leaves the stored hour alone."""
    erp = _key()
    ApiKeyUsage.objects.create(api_key=erp, hour=HOUR, request_count=40)
    api_key_use_count(api_key_id=erp.pk, now=NOW)
    api_key_usage_fold(now=NOW)
    assert _usage() == [("erp", HOUR, 40)]


def test_authentication_counts_each_request_without_writing_a_usage_row() -> None:
    api_key, raw_key = api_key_create(name="erp", scopes=["orders:read"])
    with CaptureQueriesContext(connection) as queries:
        for _ in range(4):
            assert api_key_authenticate(raw_key) is not None
    assert not any("core_apikeyusage" in q["sql"] for q in queries.captured_queries)
    assert ApiKeyUsage.objects.count() == 0
    assert api_key_usage_fold_task.run() == 1
    assert list(ApiKeyUsage.objects.values_list("api_key_id", "request_count")) == [(api_key.pk, 4)]


def test_a_refused_key_counts_nothing() -> None:
    api_key, raw_key = api_key_create(name="erp", scopes=["orders:read"])
    prefix = raw_key.partition(".")[0]
    assert api_key_authenticate(f"{prefix}.wrong") is None
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
    assert api_key_usage_fold(now=timezone.now()) == 0


def test_api_requests_are_counted(api_client_with_scopes) -> None:
    client = api_client_with_scopes("orders:read")
    for _ in range(3):
        assert client.get("/api/v1/orders").status_code == 200
    api_key_usage_fold(now=timezone.now())
    assert list(ApiKeyUsage.objects.values_list("request_count", flat=True)) == [3]


def test_the_key_admin_shows_the_last_days_requests(admin_user) -> None:
    erp = _key("erp")
    _key("idle")
    now = timezone.now()
    ApiKeyUsage.objects.create(api_key=erp, hour=hour_of(now), request_count=1200)
    ApiKeyUsage.objects.create(
        api_key=erp, hour=hour_of(now) - timedelta(hours=5), request_count=34
    )
    ApiKeyUsage.objects.create(
        api_key=erp, hour=hour_of(now) - timedelta(hours=30), request_count=9
    )
    page = client_of(admin_user).get(reverse("admin:core_apikey_changelist"))
    assert page.status_code == 200
    rows = {key.name: key.requests_last_day for key in page.context["cl"].result_list}
    assert rows == {"erp": 1234, "idle": None}
    assert "1,234" in page.content.decode()


def test_the_usage_admin_is_read_only(admin_user) -> None:
    erp = _key()
    usage = ApiKeyUsage.objects.create(api_key=erp, hour=HOUR, request_count=5)
    client = client_of(admin_user)
    assert client.get(reverse("admin:core_apikeyusage_changelist")).status_code == 200
    change = reverse("admin:core_apikeyusage_change", args=[usage.pk])
    assert client.post(change, {"request_count": 1}).status_code == 403
    delete = reverse("admin:core_apikeyusage_delete", args=[usage.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert _usage() == [("erp", HOUR, 5)]


def test_the_database_cache_counts_in_one_atomic_statement_and_restarts_when_expired() -> None:
    with CaptureQueriesContext(connection) as queries:
        assert [cache.count_up("counter", timeout=60) for _ in range(3)] == [1, 2, 3]
    assert len(queries) == 3
    assert cache.get("counter") == 3
    assert cache.get_many(["counter"]) == {"counter": 3}
    with connection.cursor() as cursor:
        cursor.execute("UPDATE crm_cache SET expires = now() - interval '1 second'")
    assert cache.count_up("counter", timeout=60) == 1


def test_redis_counts_with_incr(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.services.api_key_usage as usage

    redis = RedisCache(REDIS_URL, {"KEY_PREFIX": "crm-test-usage"})
    try:
        redis._cache.get_client().ping()
    except RedisError:
        pytest.skip("no Redis at " + REDIS_URL)
    monkeypatch.setattr(usage, "cache", redis)
    erp = _key()
    redis.delete(f"api_key_use:{erp.pk}:{int(HOUR.timestamp())}")  # a run before this one's
    for _ in range(3):
        api_key_use_count(api_key_id=erp.pk, now=NOW)
    assert api_key_usage_fold(now=NOW) == 1
    assert _usage() == [("erp", HOUR, 3)]
    key = redis.make_and_validate_key(f"api_key_use:{erp.pk}:{int(HOUR.timestamp())}")
    assert 0 < redis._cache.get_client().ttl(key) <= 6 * 3600
    redis.delete(f"api_key_use:{erp.pk}:{int(HOUR.timestamp())}")


@pytest.mark.django_db(transaction=True)
def test_the_database_cache_counts_outside_a_transaction_too() -> None:
    cache.delete("counter")
    assert [cache.count_up("counter", timeout=60) for _ in range(2)] == [1, 2]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)  # the session's own setting is left alone
    assert cache.get("counter") == 2
