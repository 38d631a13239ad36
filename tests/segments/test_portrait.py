"""The segment portrait (人群画像): exact shares and TGI on a hand-made brand of ten customers,
for a segment's members and for a rule; the most frequent values with the rest in one cell;
small cells suppressed; the base cached; a number of queries that does not grow with the data;
a wrong rule refused before anything is read."""

from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from crm.models import Customer, OrderStatus
from segments import portrait
from segments.portrait import Portrait, PortraitCell, portrait_base, rule_portrait, segment_portrait
from segments.rules import InvalidRule
from tests.factories import (
    CustomerFactory,
    CustomerMetricsFactory,
    CustomerPredictionFactory,
    OrderFactory,
    SegmentFactory,
    SegmentMembershipFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    cache.clear()


@pytest.fixture
def every_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cell suppressed: the fixture's cells are of one to six customers."""
    monkeypatch.setattr(portrait, "MIN_CELL_SIZE", 1)


def customer(
    *,
    gender: str,
    province: str = "",
    city: str = "",
    channel: str = "",
    state: str | None = None,
    tier: str | None = None,
    orders: int = 0,
    spend: str = "0",
    value: str | None = None,
    categories: tuple[str, ...] = (),
) -> Customer:
    made = CustomerFactory(gender=gender, province=province, city=city, source_channel=channel)
    if state is not None:
        CustomerMetricsFactory(
            customer=made,
            lifecycle_state=state,
            rfm_tier=tier,
            lifetime_orders=orders,
            lifetime_net_spend=Decimal(spend),
        )
    if value is not None:
        CustomerPredictionFactory(customer=made, predicted_value=Decimal(value))
    if categories:
        OrderFactory(customer=made, items=[(f"SKU-{c}", c) for c in categories])
    return made


@pytest.fixture
def brand() -> dict[str, Any]:
    """Ten customers by name, and a static segment of five of them."""
    customers = {
        # 4 women of Hangzhou from Douyin, active important-value buyers of ¥600.
        **{
            f"hz{n}": customer(
                gender="female",
                province="浙江",
                city="杭州",
                channel="douyin",
                state="active",
                tier="important_value",
                orders=2,
                spend="600",
                value="100",
                categories=("护肤", "护肤", "彩妆") if n == 1 else ("护肤",) if n == 2 else (),
            )
            for n in (1, 2, 3, 4)
        },
        # 2 women of Shenzhen from Xiaohongshu, sleeping, ¥150.
        **{
            f"sz{n}": customer(
                gender="female",
                province="广东",
                city="深圳",
                channel="xiaohongshu",
                state="sleeping",
                tier="general_retain",
                orders=1,
                spend="150",
                value="10",
                categories=("香氛",) if n == 1 else (),
            )
            for n in (1, 2)
        },
        # 2 men of Guangzhou of no known channel, churned without a tier, ¥3,500, never scored.
        **{
            f"gz{n}": customer(
                gender="male",
                province="广东",
                city="广州",
                state="churned",
                orders=1,
                spend="3500",
                categories=("护肤",) if n == 2 else (),
            )
            for n in (1, 2)
        },
        # A man of no known place from WeCom, not computed yet, whose only order was refunded.
        "nowhere": customer(gender="male", channel="wecom"),
        # Someone in Beijing, a prospect.
        "bj": customer(
            gender="unknown", province="北京", city="北京", channel="other", state="prospect"
        ),
    }
    OrderFactory(
        customer=customers["nowhere"], status=OrderStatus.REFUNDED, items=[("SKU-x", "护肤")]
    )
    segment = SegmentFactory(kind="static")
    for name in ("hz1", "hz2", "hz3", "sz1", "gz1"):
        SegmentMembershipFactory(segment=segment, customer=customers[name])
    return {**customers, "segment": segment.pk}


def cells(result: Portrait, dimension: str) -> dict[str | None, PortraitCell]:
    found = next(d for d in result.dimensions if d.name == dimension)
    return {cell.value: cell for cell in found.cells}


def figures(result: Portrait, dimension: str) -> dict[str | None, tuple]:
    """value: (count, share, base count, base share, TGI)."""
    return {
        value: (cell.count, cell.share, cell.base_count, cell.base_share, cell.tgi)
        for value, cell in cells(result, dimension).items()
    }


@pytest.mark.usefixtures("every_cell")
def test_a_segment_against_every_customer(brand: dict[str, Any]) -> None:
    result = segment_portrait(segment_id=brand["segment"])

    assert (result.size, result.base_size) == (5, 10)
    assert [d.name for d in result.dimensions] == [
        "gender",
        "province",
        "city",
        "source_channel",
        "lifecycle_state",
        "rfm_tier",
        "spend_band",
        "value_band",
        "category",
    ]
    assert figures(result, "gender") == {
        "female": (4, 0.8, 6, 0.6, 133),
        "male": (1, 0.2, 3, 0.3, 67),
        "unknown": (0, 0.0, 1, 0.1, 0),
    }
    # Most frequent in the segment first; the blank province is a cell of its own.
    assert list(figures(result, "province").items()) == [
        ("浙江", (3, 0.6, 4, 0.4, 150)),
        ("广东", (2, 0.4, 4, 0.4, 100)),
        ("北京", (0, 0.0, 1, 0.1, 0)),
        (None, (0, 0.0, 1, 0.1, 0)),
    ]
    assert figures(result, "source_channel")["douyin"] == (3, 0.6, 4, 0.4, 150)
    assert figures(result, "source_channel")[None] == (1, 0.2, 2, 0.2, 100)
    assert figures(result, "source_channel")["wecom"] == (0, 0.0, 1, 0.1, 0)
    # A customer not computed yet is a prospect.
    assert figures(result, "lifecycle_state")["prospect"] == (0, 0.0, 2, 0.2, 0)
    assert figures(result, "lifecycle_state")["active"] == (3, 0.6, 4, 0.4, 150)
    assert figures(result, "rfm_tier")[None] == (1, 0.2, 4, 0.4, 50)
    assert figures(result, "spend_band") == {
        "0": (1, 0.2, 2, 0.2, 100),  # under ¥200
        "1": (0, 0.0, 0, 0.0, None),  # ¥200 to ¥500: nobody at all, no TGI
        "2": (3, 0.6, 4, 0.4, 150),  # ¥500 to ¥1,000
        "3": (0, 0.0, 0, 0.0, None),
        "4": (1, 0.2, 2, 0.2, 100),  # ¥3,000 and over
        None: (0, 0.0, 2, 0.2, 0),  # no paid order
    }
    # Quintiles of 10, 10, 100, 100, 100, 100: breakpoints 10 and 100.
    assert figures(result, "value_band") == {
        "0": (0, 0.0, 0, 0.0, None),
        "1": (1, 0.2, 2, 0.2, 100),
        "2": (3, 0.6, 4, 0.4, 150),
        None: (1, 0.2, 4, 0.4, 50),
    }
    # Customers who bought each category (twice counts once; a refunded order not at all).
    assert figures(result, "category") == {
        "护肤": (2, 0.4, 3, 0.3, 133),
        "彩妆": (1, 0.2, 1, 0.1, 200),
        "香氛": (1, 0.2, 1, 0.1, 200),
    }


@pytest.mark.usefixtures("every_cell")
def test_labels_are_the_operators_words(brand: dict[str, Any]) -> None:
    with translation.override("en"):
        result = segment_portrait(segment_id=brand["segment"])
    assert {v: c.label for v, c in cells(result, "spend_band").items()} == {
        "0": "Under ¥200",
        "1": "¥200 to ¥500",
        "2": "¥500 to ¥1,000",
        "3": "¥1,000 to ¥3,000",
        "4": "¥3,000 and over",
        None: "No paid order",
    }
    assert cells(result, "value_band")["0"].label == "Under ¥10"
    assert cells(result, "lifecycle_state")["sleeping"].label == "Sleeping"
    assert cells(result, "province")[None].label == "Unknown"
    with translation.override("zh-hans"):
        result = segment_portrait(segment_id=brand["segment"])
    assert [c.label for c in cells(result, "spend_band").values()] == [
        "低于 ¥200",
        "¥200 至 ¥500",
        "¥500 至 ¥1,000",
        "¥1,000 至 ¥3,000",
        "¥3,000 及以上",
        "无消费",
    ]
    assert cells(result, "lifecycle_state")["sleeping"].label == "沉睡"
    assert cells(result, "rfm_tier")["important_value"].label == "重要价值客户"
    assert cells(result, "source_channel")["xiaohongshu"].label == "小红书"


@pytest.mark.usefixtures("every_cell")
def test_a_rule_against_every_customer(brand: dict[str, Any]) -> None:
    result = rule_portrait(rule={"field": "gender", "op": "eq", "value": "female"})

    assert result.size == 6
    assert figures(result, "gender")["female"] == (6, 1.0, 6, 0.6, 167)
    assert figures(result, "city")["深圳"] == (2, 0.3333, 2, 0.2, 167)
    assert figures(result, "category")["护肤"] == (2, 0.3333, 3, 0.3, 111)


@pytest.mark.usefixtures("every_cell")
def test_beyond_the_top_values_the_rest_is_one_cell(
    brand: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(portrait, "TOP_VALUES", 1)
    result = segment_portrait(segment_id=brand["segment"])

    assert figures(result, "province") == {
        "浙江": (3, 0.6, 4, 0.4, 150),
        portrait.OTHERS: (2, 0.4, 5, 0.5, 80),  # 广东 and 北京
        None: (0, 0.0, 1, 0.1, 0),
    }
    # Categories have no rest: a customer counts under each category bought.
    assert list(figures(result, "category")) == ["护肤"]


@pytest.mark.usefixtures("every_cell")
def test_categories_of_a_larger_group_are_estimated_from_a_fixed_sample(
    brand: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(portrait, "CATEGORY_SAMPLE", 4)
    sampled = {
        customer.pk
        for customer in Customer.objects.raw(
            "SELECT c.id FROM crm_customer c JOIN segments_segmentmembership s"
            " ON s.customer_id = c.id WHERE s.segment_id = %s ORDER BY hashint8(c.id) LIMIT 4",
            [brand["segment"]],
        )
    }
    skincare_buyers = {brand["hz1"].pk, brand["hz2"].pk}

    result = segment_portrait(segment_id=brand["segment"])

    category = next(d for d in result.dimensions if d.name == "category")
    assert category.is_estimated
    # The sample's buyers, scaled from 4 sampled members to the 5.
    expected = round(len(sampled & skincare_buyers) * 5 / 4)
    assert cells(result, "category")["护肤"].count == expected
    assert not next(d for d in result.dimensions if d.name == "gender").is_estimated


def test_cells_of_fewer_than_five_customers_are_suppressed(brand: dict[str, Any]) -> None:
    result = segment_portrait(segment_id=brand["segment"])

    female, male, unknown = (cells(result, "gender")[g] for g in ("female", "male", "unknown"))
    assert female.is_suppressed and (female.count, female.share, female.tgi) == (None,) * 3
    assert (female.base_count, female.base_share) == (6, 0.6)
    assert male.is_suppressed and male.base_count is None  # 3 in the base too
    assert (unknown.count, unknown.share, unknown.tgi) == (0, 0.0, None)  # 0 is shown
    assert unknown.base_count is None  # 1 in the base


def test_the_base_is_cached_with_the_time_it_was_computed(brand: dict[str, Any]) -> None:
    first = portrait_base()
    CustomerFactory(gender="female")

    assert portrait_base() == first
    assert segment_portrait(segment_id=brand["segment"]).base_computed_at == first.computed_at
    fresh = portrait_base(fresh=True)
    assert fresh.counts.size == 11 and fresh.computed_at > first.computed_at


def test_queries_do_not_grow_with_the_data(brand: dict[str, Any]) -> None:
    def queries() -> tuple[int, int]:
        cache.clear()
        with CaptureQueriesContext(connection) as cold:
            segment_portrait(segment_id=brand["segment"])
        with CaptureQueriesContext(connection) as warm:
            segment_portrait(segment_id=brand["segment"])
        return len(cold), len(warm)

    small = queries()
    for n in range(10):
        customer(gender="female", province=f"省{n}", city=f"市{n}", categories=(f"品类{n}",))
    assert queries() == small
    # The cache's read, then the one statement in a transaction with its settings; cold, the
    # breakpoints, the base's statement and the cache's write too.
    assert small == (17, 8)


def test_a_wrong_rule_is_refused_before_anything_is_read(brand: dict[str, Any]) -> None:
    with CaptureQueriesContext(connection) as read, pytest.raises(InvalidRule) as refused:
        rule_portrait(rule={"all": [{"field": "gender", "op": "eq", "value": "robot"}]})
    assert refused.value.code == "invalid_rule"
    assert refused.value.detail["rule"][0]["path"] == "$.all[0].value"
    assert not any("crm_customer" in query["sql"] for query in read.captured_queries)


# --- Over the API ---------------------------------------------------------------------------


@pytest.mark.usefixtures("every_cell")
def test_the_api_answers_a_segments_and_a_rules_portrait(
    api_client_with_scopes: Any, brand: dict[str, Any]
) -> None:
    client = api_client_with_scopes("segments:read")

    answer = client.get(f"/api/v1/segments/{brand['segment']}/portrait")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["size"], body["base_size"], body["min_cell_size"]) == (5, 10, 1)
    gender = next(d for d in body["dimensions"] if d["name"] == "gender")
    assert gender["cells"][0] == {
        "value": "female",
        "label": gender["cells"][0]["label"],
        "count": 4,
        "share": 0.8,
        "base_count": 6,
        "base_share": 0.6,
        "tgi": 133,
    }

    rule = {"field": "city", "op": "eq", "value": "深圳"}
    answer = client.post("/api/v1/segments/portrait", {"rule": rule}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["size"] == 2


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"rule": {"field": "gender", "op": "eq", "value": "robot"}}, "invalid_rule", "rule"),
        ({"rule": {"field": "nope", "op": "eq", "value": 1}}, "invalid_rule", "rule"),
        ({"rule": {"all": []}}, "invalid_rule", "rule"),
        ({"rule": "gender = female"}, "invalid_rule", "rule"),
        ({"rule": {"field": "segment", "op": "in", "value": [10**12]}}, "invalid_rule", "rule"),
        ({}, "invalid_input", "rule"),
        ([1, 2], "invalid_input", None),
    ],
)
def test_a_hostile_rule_is_a_400_with_a_code(
    api_client_with_scopes: Any, body: Any, code: str, field: str | None
) -> None:
    answer = api_client_with_scopes("segments:read").post(
        "/api/v1/segments/portrait", body, format="json"
    )
    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == code
    if field:
        assert field in answer.json()["errors"]


def test_the_api_needs_the_segments_scope(
    api_client_with_scopes: Any, brand: dict[str, Any]
) -> None:
    client = api_client_with_scopes("customers:read")
    assert client.get(f"/api/v1/segments/{brand['segment']}/portrait").status_code == 403
    rule = {"field": "gender", "op": "eq", "value": "female"}
    refused = client.post("/api/v1/segments/portrait", {"rule": rule}, format="json")
    assert refused.status_code == 403

    missing = api_client_with_scopes("segments:read").get("/api/v1/segments/404/portrait")
    assert missing.status_code == 404
    assert missing.json()["code"] == "segment_not_found"
