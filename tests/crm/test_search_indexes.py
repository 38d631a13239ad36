"""The indexes behind the admin's searches: the migration writes them as intended, and the
queries the admin runs can use them (the planner's choice on a tiny table says nothing, so
sequential scans are ruled out first)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from crm.models import Customer, Order
from crm.selectors.customers import customer_search_condition
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def trigrams_available() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        return cursor.fetchone() is not None


def needs_trigrams() -> None:
    if not trigrams_available():
        pytest.skip("this PostgreSQL offers no pg_trgm (the embedded one): no trigram index")


@pytest.mark.django_db(transaction=True)  # concurrent index builds refuse a transaction
def test_the_migration_builds_the_indexes_concurrently_the_trigrams_where_offered() -> None:
    out = StringIO()
    call_command("sqlmigrate", "crm", "0010", stdout=out)
    sql = out.getvalue()

    assert 'CREATE INDEX CONCURRENTLY "order_by_external_id" ON "crm_order" ("external_id");' in sql
    assert 'CREATE INDEX CONCURRENTLY "order_by_paid_at" ON "crm_order" ("paid_at");' in sql
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")
        (extensions,) = cursor.fetchone()
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'customer_name_trigram'")
        indexes = [row[0] for row in cursor.fetchall()]
    if trigrams_available():
        assert extensions == 1
        assert indexes == [
            "CREATE INDEX customer_name_trigram ON public.crm_customer"
            " USING gin (upper((display_name)::text) gin_trgm_ops)"
        ]
    else:  # the embedded server: migrated all the same, without the index
        assert (extensions, indexes) == (0, [])


def plan(queryset: object) -> str:
    sql, params = queryset.query.sql_with_params()  # type: ignore[attr-defined]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_a_name_search_can_use_the_trigram_index() -> None:
    needs_trigrams()
    searched = Customer.objects.filter(display_name__icontains="王小明")

    assert "customer_name_trigram" in plan(searched)


def test_the_orders_date_filter_can_use_its_index() -> None:
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    paid_today = Order.objects.filter(paid_at__gte=today, paid_at__lt=today + timedelta(days=1))

    assert "order_by_paid_at" in plan(paid_today)


def test_an_order_number_search_can_use_its_index() -> None:
    assert "order_by_external_id" in plan(Order.objects.filter(external_id__exact="DM0000000001"))


def test_a_short_term_matches_names_at_either_end_and_its_search_can_use_the_index() -> None:
    names = ["王小明", "李小明", "小明王", "王明", "王大小明", "张三"]
    for name in names:
        CustomerFactory(display_name=name)

    def found(term: str) -> set[str]:
        searched = Customer.objects.filter(customer_search_condition(term))
        return set(searched.values_list("display_name", flat=True))

    assert found("小明") == {"王小明", "李小明", "小明王", "王大小明"}
    assert found("王") == {"王小明", "小明王", "王明", "王大小明"}
    assert found("大小明") == {"王大小明"}
    needs_trigrams()
    assert "customer_name_trigram" in plan(
        Customer.objects.filter(customer_search_condition("小明"))
    )
