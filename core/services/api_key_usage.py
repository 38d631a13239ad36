"""API key use per key per hour. A request adds one to a counter in the cache every process
shares (settings.CACHES "default": Redis, or the PostgreSQL cache table), keyed by the key's id
and the hour: `api_key_use_count` never writes a table of its own. `api_key_usage_fold`, run by
beat every few minutes and by the audit prune, copies the counters of the last hours into
`ApiKeyUsage`, writing each hour's absolute count with GREATEST: a counter only grows within
its hour, so a second fold of the same counts changes nothing and never counts twice.

A counter lives COUNTER_HOURS from its hour's first request, during which folds keep reading
it. Counting is one atomic operation: an upsert of the PostgreSQL cache table's row
(config.cache `count_up`) or a Redis INCR."""

import logging
from datetime import UTC, datetime, timedelta

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from django.db import connection

from core.models import ApiKey

logger = logging.getLogger(__name__)

# Hours a counter is kept (and folded) after its hour began: folds run every few minutes, so
# one lost to a broker outage of up to five hours still counts.
COUNTER_HOURS = 6


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _counter_key(api_key_id: int, hour: datetime) -> str:
    return f"api_key_use:{api_key_id}:{int(hour.timestamp())}"


def api_key_use_count(*, api_key_id: int, now: datetime) -> None:
    """Count one request of the key in `now`'s hour: one atomic cache operation."""
    key = _counter_key(api_key_id, hour_of(now))
    timeout = COUNTER_HOURS * 3600
    count_up = getattr(cache, "count_up", None)
    if count_up is not None:  # the PostgreSQL cache table (config.cache): one statement
        count_up(key, timeout=timeout)
        return
    if isinstance(cache, RedisCache):
        # INCR creates a missing counter at 1, atomically; Django's serializer stores ints as
        # Redis integers, so `get_many` reads it back. One round trip with its expiry.
        client = cache._cache.get_client(key, write=True)  # type: ignore[attr-defined]
        redis_key = cache.make_and_validate_key(key)
        pipeline = client.pipeline(transaction=False)
        pipeline.incr(redis_key)
        pipeline.expire(redis_key, timeout, nx=True)
        pipeline.execute()
        return
    try:  # another backend: Django's read-then-write
        cache.incr(key)
    except ValueError:
        if not cache.add(key, 1, timeout=timeout):
            cache.incr(key)


def api_key_usage_fold(*, now: datetime) -> int:
    """Write the cache's counts of the last COUNTER_HOURS hours into ApiKeyUsage (absolute
    counts, never below what is stored); how many (key, hour) rows were written."""
    current = hour_of(now)
    hours = [current - timedelta(hours=back) for back in range(COUNTER_HOURS)]
    # Keys used in those hours: last_used_at is touched at least once a minute of use.
    since = hours[-1] - timedelta(minutes=2)
    key_ids = list(ApiKey.objects.filter(last_used_at__gte=since).values_list("pk", flat=True))
    if not key_ids:
        return 0
    wanted = {_counter_key(key_id, hour): (key_id, hour) for key_id in key_ids for hour in hours}
    counts = cache.get_many(list(wanted))
    rows = [(*wanted[key], int(count)) for key, count in counts.items() if count]
    if not rows:
        return 0
    api_key_ids, hour_values, request_counts = zip(*rows, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO core_apikeyusage (api_key_id, hour, request_count)
            SELECT k.api_key_id, k.hour, k.request_count
            FROM unnest(%s::bigint[], %s::timestamptz[], %s::integer[])
                AS k(api_key_id, hour, request_count)
            WHERE EXISTS (SELECT 1 FROM crm_apikey a WHERE a.id = k.api_key_id)
            ON CONFLICT (api_key_id, hour) DO UPDATE
            SET request_count = GREATEST(core_apikeyusage.request_count, EXCLUDED.request_count)
            """,
            [list(api_key_ids), list(hour_values), list(request_counts)],
        )
        written = cursor.rowcount
    logger.info("api_key_usage.folded", extra={"rows": written})
    return written
