"""The ledger list's filters by reason and holdout can use their partial indexes (sequential
scans ruled out: on a tiny table the planner's choice says nothing)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import QuerySet

from campaigns.models import Delivery

pytestmark = pytest.mark.django_db


def plan(queryset: QuerySet[Delivery]) -> str:
    sql, params = queryset.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.django_db(transaction=True)  # concurrent index builds refuse a transaction
def test_the_migration_builds_partial_indexes_concurrently() -> None:
    out = StringIO()
    call_command("sqlmigrate", "campaigns", "0014", stdout=out)

    assert (
        'CREATE INDEX CONCURRENTLY "delivery_by_reason" ON "campaigns_delivery" ("reason", "id")'
        " WHERE NOT (\"reason\" = '');"
    ) in out.getvalue()
    assert (
        'CREATE INDEX CONCURRENTLY "delivery_held_out" ON "campaigns_delivery" ("id")'
        ' WHERE "is_holdout";'
    ) in out.getvalue()


def test_the_filters_by_reason_and_holdout_can_use_their_indexes() -> None:
    newest = Delivery.objects.order_by("-id")

    assert "delivery_by_reason" in plan(newest.filter(reason="opted_out")[:100])
    assert "delivery_held_out" in plan(newest.filter(is_holdout=True)[:100])
