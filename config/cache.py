"""The cache every process shares when no Redis is configured: Django's DatabaseCache on the
PostgreSQL table `crm_cache`, whose `set` is one statement. The API's rate limits write the
cache on every request; Django's own `set` counts the whole table, then selects and updates
the row inside a savepoint (five statements). Here an upsert writes the row, and the same
statement drops up to CULL_BATCH expired rows of other keys (skipping rows another process
holds), so that the table stays as small as the keys in use.

`count_up` adds one to a counter in one atomic statement (Django's `incr` reads, then writes,
and refuses a missing key): the API keys' hourly use counts (core.services.api_key_usage). The
counter is stored as the pickle of an int in protocol 0 (`I42\n.`), a text SQL can increment,
which `get` and `get_many` read back as the int."""

import base64
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router
from django.utils import timezone

CULL_BATCH = 100


class PostgresCache(DatabaseCache):
    def _base_set(
        self, mode: str, key: str, value: Any, timeout: float | None = DEFAULT_TIMEOUT
    ) -> bool:
        if mode != "set":
            return bool(super()._base_set(mode, key, value, timeout))  # type: ignore[misc]
        timeout = self.get_backend_timeout(timeout)
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        table = connection.ops.quote_name(self._table)  # type: ignore[attr-defined]
        expires = datetime.max if timeout is None else datetime.fromtimestamp(timeout, tz=UTC)
        pickled = base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
        with connection.cursor() as cursor:
            # The table name comes from settings, never from input.
            cursor.execute(
                f"""
                WITH culled AS (
                    DELETE FROM {table} WHERE cache_key IN (
                        SELECT cache_key FROM {table}
                        WHERE expires < %s AND cache_key <> %s
                        LIMIT %s FOR UPDATE SKIP LOCKED
                    )
                )
                INSERT INTO {table} (cache_key, value, expires) VALUES (%s, %s, %s)
                ON CONFLICT (cache_key) DO UPDATE
                SET value = EXCLUDED.value, expires = EXCLUDED.expires
                """,  # noqa: S608
                [
                    timezone.now(),
                    key,
                    CULL_BATCH,
                    key,
                    pickled,
                    connection.ops.adapt_datetimefield_value(expires.replace(microsecond=0)),
                ],
            )
        return True

    def count_up(self, key: str, *, timeout: float) -> int:
        """Add one to the counter `key` (created at 1, or restarted at 1 once expired, living
        `timeout` seconds from its creation) and answer its new value: one statement, which
        outside a caller's transaction commits without waiting for the disk (a usage count,
        not data: a crash may lose its last moment)."""
        key = self.make_and_validate_key(key)
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        table = connection.ops.quote_name(self._table)  # type: ignore[attr-defined]
        now = timezone.now()
        expires = now + timedelta(seconds=timeout)
        # Outside a caller's transaction the statement is one of its own, whose commit need not
        # wait for the disk (set in the same statement: one round trip); inside one, the
        # caller's commit keeps its own durability.
        is_own_transaction = not connection.in_atomic_block
        return self._count_up(
            connection, table, key, now=now, expires=expires, is_async=is_own_transaction
        )

    def _count_up(
        self,
        connection: Any,
        table: str,
        key: str,
        *,
        now: datetime,
        expires: datetime,
        is_async: bool,
    ) -> int:
        asynchronous = (
            "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS s" if is_async else ""
        )
        with connection.cursor() as cursor:
            # The table name comes from settings, never from input.
            cursor.execute(
                f"""
                INSERT INTO {table} AS c (cache_key, value, expires)
                SELECT %(key)s, encode(convert_to(E'I1\\n.', 'UTF8'), 'base64'), %(expires)s
                {asynchronous}
                ON CONFLICT (cache_key) DO UPDATE SET
                    value = CASE WHEN c.expires < %(now)s THEN EXCLUDED.value ELSE encode(
                        convert_to(
                            'I' || (substring(
                                convert_from(decode(c.value, 'base64'), 'UTF8') FROM '^I([0-9]+)'
                            )::bigint + 1)::text || E'\\n.',
                            'UTF8'
                        ),
                        'base64'
                    ) END,
                    expires = CASE WHEN c.expires < %(now)s THEN EXCLUDED.expires
                        ELSE c.expires END
                RETURNING convert_from(decode(value, 'base64'), 'UTF8')
                """,  # noqa: S608
                {
                    "key": key,
                    "now": now,
                    "expires": connection.ops.adapt_datetimefield_value(
                        expires.replace(microsecond=0)
                    ),
                },
            )
            (stored,) = cursor.fetchone()  # type: ignore[misc]
        return int(stored[1:].split("\n", 1)[0])
