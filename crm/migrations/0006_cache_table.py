"""The table of Django's DatabaseCache (`crm_cache`), the cache every process shares when no
Redis is configured (CACHE_URL unset): the API's rate limits count in it. Created here rather
than by `createcachetable`, so that every `migrate` (make run, the tests, a deploy) makes it;
the columns are those `createcachetable` would make."""

from django.db import migrations

CREATE = """
CREATE TABLE IF NOT EXISTS crm_cache (
    cache_key varchar(255) NOT NULL PRIMARY KEY,
    value text NOT NULL,
    expires timestamp with time zone NOT NULL
);
CREATE INDEX IF NOT EXISTS crm_cache_expires ON crm_cache (expires);
"""

DROP = "DROP TABLE IF EXISTS crm_cache;"


class Migration(migrations.Migration):

    dependencies = [
        ("crm", "0005_source_versions"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
