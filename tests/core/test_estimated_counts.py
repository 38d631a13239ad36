"""Change lists over millions of rows: counted exactly up to EXACT_COUNT_LIMIT, estimated by
the planner above it and shown as approximate (约) to the operator; searches by number that
an index serves."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

import core.admin
from core.admin import EstimatedCount, EstimatedCountPaginator
from crm.models import Order
from tests.factories import CustomerMergeFactory, OrderFactory

pytestmark = pytest.mark.django_db

LIMIT = 5


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core.admin, "EXACT_COUNT_LIMIT", LIMIT)


def analyze_orders() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_order")


@pytest.mark.usefixtures("small_limit")
def test_up_to_the_limit_the_count_is_exact() -> None:
    OrderFactory.create_batch(LIMIT)

    count = EstimatedCountPaginator(Order.objects.order_by("pk"), 2).count

    assert count == LIMIT
    assert not isinstance(count, EstimatedCount)


@pytest.mark.usefixtures("small_limit")
def test_above_the_limit_the_count_is_the_planners_estimate() -> None:
    OrderFactory.create_batch(12)
    analyze_orders()

    paginator = EstimatedCountPaginator(Order.objects.order_by("pk"), 5)

    assert isinstance(paginator.count, EstimatedCount)
    assert paginator.count == 12  # the statistics of an analysed table, unfiltered
    assert paginator.num_pages == 3
    with translation.override("zh-hans"):
        assert str(paginator.count) == "约 12"
    with translation.override("en"):
        assert str(paginator.count) == "about 12"


@pytest.mark.usefixtures("small_limit")
def test_an_estimate_is_never_below_what_was_counted_and_shows_three_digits() -> None:
    OrderFactory.create_batch(LIMIT + 1)  # not analysed: the planner may guess anything

    count = EstimatedCountPaginator(Order.objects.filter(status="paid").order_by("pk"), 2).count

    assert isinstance(count, EstimatedCount)
    assert count > LIMIT
    assert core.admin._significant(1_234_567) == 1_230_000


@pytest.mark.usefixtures("small_limit")
def test_the_orders_list_shows_an_estimate_in_chinese(admin_user: object) -> None:
    OrderFactory.create_batch(12)
    analyze_orders()
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)  # type: ignore[arg-type]

    page = client.get(reverse("admin:crm_order_changelist")).content.decode()

    assert "约 12" in page


def test_below_the_limit_the_orders_list_shows_the_exact_count(admin_user: object) -> None:
    OrderFactory.create_batch(3)
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)  # type: ignore[arg-type]

    page = client.get(reverse("admin:crm_order_changelist")).content.decode()

    assert "约" not in page
    assert "3 订单" in page


def test_a_search_by_number_compares_numbers_and_refuses_other_terms(
    admin_client_en: Client,
) -> None:
    merge = CustomerMergeFactory()
    other = CustomerMergeFactory()
    url = reverse("admin:crm_customermerge_changelist")

    by_merged = admin_client_en.get(url, {"q": str(merge.merged_customer_id)})
    by_survivor = admin_client_en.get(url, {"q": str(other.survivor_id)})
    by_text = admin_client_en.get(url, {"q": "张三"})
    too_big = admin_client_en.get(url, {"q": "9" * 30})

    assert [row.pk for row in by_merged.context["cl"].result_list] == [merge.pk]
    assert [row.pk for row in by_survivor.context["cl"].result_list] == [other.pk]
    assert (by_text.status_code, list(by_text.context["cl"].result_list)) == (200, [])
    assert (too_big.status_code, list(too_big.context["cl"].result_list)) == (200, [])


def source_choices(client: Client) -> tuple[list[str], list[str]]:
    """The order list's source filter choices, and the queries of the page that read
    distinct values."""
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("admin:crm_order_changelist"))
    (source_filter,) = [spec for spec in page.context["cl"].filter_specs if spec.title == "source"]
    distinct = [q["sql"] for q in queries.captured_queries if "DISTINCT" in q["sql"]]
    return list(source_filter.lookup_choices), distinct


def test_a_large_tables_filter_values_come_from_its_statistics(
    admin_client_en: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core.admin, "EXACT_COUNT_LIMIT", LIMIT)
    OrderFactory.create_batch(4, source="youzan")
    OrderFactory.create_batch(3, source="douyin_shop")
    analyze_orders()

    choices, distinct = source_choices(admin_client_en)

    assert choices == ["douyin_shop", "youzan"]
    assert distinct == []


def test_a_small_tables_filter_values_are_read(admin_client_en: Client) -> None:
    OrderFactory.create_batch(2, source="youzan")

    choices, distinct = source_choices(admin_client_en)

    assert choices == ["youzan"]
    assert len(distinct) == 2  # the source's and the channel's
