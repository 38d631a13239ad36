"""Property: on random customer data, a random rule's SQL selects exactly the customers that the
plain-Python reference evaluator (tests/segments/rules_support.py) selects, and the preview's
counts agree with it too.

Rules are drawn by hypothesis: nested all/any/not over every kind of field (profile, tags, tag
groups, groups, consent, metrics, predictions, purchases, interactions, a static and a dynamic
segment). Data is drawn as a seed for a generator of 20-40 customers with random profiles,
tags, stays in groups, consents, metrics and prediction rows (or none), orders with items and
interactions; instants sit on a grid around as_of, day starts and one second before them, so
that the bounds of date operators are hit exactly."""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crm.models import (
    Consent,
    Customer,
    CustomerTag,
    Group,
    GroupMembership,
    Interaction,
    Order,
    OrderItem,
    Tag,
)
from segments.models import CustomerMetrics, CustomerPrediction, Segment, SegmentMembership
from tests.factories import (
    ConsentFactory,
    CustomerFactory,
    CustomerMetricsFactory,
    CustomerPredictionFactory,
    CustomerTagFactory,
    GroupFactory,
    GroupMembershipFactory,
    InteractionFactory,
    OrderFactory,
    OrderItemFactory,
    SegmentFactory,
    SegmentMembershipFactory,
    StaffMemberFactory,
    TagFactory,
    TagGroupFactory,
)
from tests.segments.rules_support import (
    day_start,
    preview_counts,
    reference_members,
    snapshot_load,
    sql_members,
)

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2026, 3, 15, 10, 30, tzinfo=SHANGHAI)
AS_OF_DAY = AS_OF.date()
DAYS_BACK = [0, 1, 2, 6, 7, 8, 29, 30, 31, 89, 90, 91, 400]
WINDOWS = [1, 7, 30, 90]

PROVINCES = ["", "广东", "浙江", "Zhejiang", "zhejiang", "50%off", "500off", "a_b", "axb"]
CITIES = ["", "杭州", "Hangzhou", "深圳"]
CHANNELS = ["", "douyin", "wecom", "offline_store"]
STAFF = ["alice", "bob", "carol"]
CONSENT_CHANNELS = ["wecom", "sms", "email"]
SKUS = ["SKU-A", "SKU-B", "SKU-C"]
CATEGORIES = ["面膜", "精华"]
KINDS = ["link_click", "message_reply", "coupon_claim"]
AMOUNTS = [Decimal("0"), Decimal("99.5"), Decimal("100"), Decimal("100.01"), Decimal("500")]
PROBABILITIES = [Decimal("0"), Decimal("0.25"), Decimal("0.5"), Decimal("0.7501"), Decimal("1")]
PREDICTED_COUNTS = [Decimal("0"), Decimal("0.5"), Decimal("1.25"), Decimal("3")]
TIERS = ["important_value", "general_retain", "general_winback"]
STATES = ["prospect", "new", "active", "sleeping", "churned", "reactivated"]


@dataclass(frozen=True)
class Catalog:
    """Rows the random data and rules refer to, made once per test."""

    tags: list[Tag]
    tag_group_ids: list[int]
    tag_group_names: list[str]
    groups: list[Group]
    staff_ids: list[int]
    static_segment: Segment
    dynamic_segment_id: int

    @property
    def tag_ids(self) -> list[int]:
        return [t.pk for t in self.tags]

    @property
    def tag_names(self) -> list[tuple[str, str]]:
        return [(t.group.name, t.name) for t in self.tags]

    @property
    def group_ids(self) -> list[int]:
        return [g.pk for g in self.groups]

    @property
    def static_segment_id(self) -> int:
        return self.static_segment.pk


@pytest.fixture
def catalog() -> Catalog:
    tag_groups = [TagGroupFactory(name="兴趣"), TagGroupFactory(name="会员")]
    tags = [TagFactory(group=group, name=name) for group in tag_groups for name in ("甲", "乙")]
    tags.append(TagFactory(group=tag_groups[0], name="丙"))
    static = SegmentFactory(name="名单", kind="static")
    dynamic = SegmentFactory(
        name="规则", kind="dynamic", rule={"field": "member_level", "op": "eq", "value": 0}
    )
    return Catalog(
        tags=tags,
        tag_group_ids=[g.pk for g in tag_groups],
        tag_group_names=[g.name for g in tag_groups],
        groups=[GroupFactory() for _ in range(3)],
        staff_ids=[StaffMemberFactory(wecom_userid=userid).pk for userid in STAFF],
        static_segment=static,
        dynamic_segment_id=dynamic.pk,
    )


# --- Random data -----------------------------------------------------------------------------


def instant(rng: random.Random) -> datetime:
    days = rng.choice(DAYS_BACK)
    start = day_start(AS_OF_DAY - timedelta(days=days))
    return rng.choice(
        [
            AS_OF - timedelta(days=days),
            start,
            start - timedelta(seconds=1),
            start + timedelta(hours=12),
        ]
    )


def maybe(rng: random.Random, value: Any, *, chance: float = 0.5) -> Any:
    return value if rng.random() < chance else None


def world_build(rng: random.Random, catalog: Catalog) -> None:
    """20-40 customers and everything the rule language reads about them, in bulk."""
    customers = Customer.objects.bulk_create(
        [
            CustomerFactory.build(
                gender=rng.choice(["unknown", "male", "female"]),
                province=rng.choice(PROVINCES),
                city=rng.choice(CITIES),
                source_channel=rng.choice(CHANNELS),
                member_level=rng.randint(0, 5),
                owner_id=maybe(rng, rng.choice(catalog.staff_ids), chance=0.7),
                first_seen_at=instant(rng),
                birthday=maybe(rng, date(1990, rng.randint(1, 12), rng.randint(1, 28))),
            )
            for _ in range(rng.randint(20, 40))
        ]
    )
    tags, stays, consents, metrics, interactions, listed = [], [], [], [], [], []
    predictions: list[CustomerPrediction] = []
    orders: list[tuple[Order, list[tuple[str, str]]]] = []
    for customer in customers:
        tags += [
            CustomerTagFactory.build(customer=customer, tag=tag)
            for tag in catalog.tags
            if rng.random() < 0.35
        ]
        for group in catalog.groups:
            stays += _stays(rng, customer, group)
        consents += [
            ConsentFactory.build(
                customer=customer,
                channel=channel,
                status=rng.choice(["opted_in", "opted_out"]),
                changed_at=AS_OF,
            )
            for channel in CONSENT_CHANNELS
            if rng.random() < 0.6
        ]
        if rng.random() < 0.75:
            metrics.append(_metrics(rng, customer))
        if rng.random() < 0.7:
            predictions.append(_prediction(rng, customer))
        for _ in range(rng.randint(0, 3)):
            order = OrderFactory.build(
                customer=customer,
                external_id=f"SO{rng.getrandbits(48):x}-{len(orders)}",
                status=rng.choice(["paid", "partially_refunded", "refunded", "cancelled"]),
                total_amount=Decimal("10"),
                paid_at=maybe(rng, instant(rng), chance=0.9),
            )
            items = [(rng.choice(SKUS), rng.choice(CATEGORIES)) for _ in range(rng.randint(1, 2))]
            orders.append((order, items))
        interactions += [
            InteractionFactory.build(
                customer=customer, kind=rng.choice(KINDS), occurred_at=instant(rng)
            )
            for _ in range(rng.randint(0, 3))
        ]
        if rng.random() < 0.4:
            listed.append(
                SegmentMembershipFactory.build(segment=catalog.static_segment, customer=customer)
            )
    CustomerTag.objects.bulk_create(tags)
    GroupMembership.objects.bulk_create(stays)
    Consent.objects.bulk_create(consents)
    CustomerMetrics.objects.bulk_create(metrics)
    CustomerPrediction.objects.bulk_create(predictions)
    Order.objects.bulk_create([order for order, _items in orders])
    OrderItem.objects.bulk_create(
        [
            OrderItemFactory.build(
                order=order,
                line_no=line_no,
                sku=sku,
                category=category,
                unit_price=Decimal("5"),
            )
            for order, items in orders
            for line_no, (sku, category) in enumerate(items, start=1)
        ]
    )
    Interaction.objects.bulk_create(interactions)
    SegmentMembership.objects.bulk_create(listed)


def _stays(rng: random.Random, customer: Customer, group: Group) -> list[GroupMembership]:
    kind = rng.choice(["none", "none", "current", "left", "rejoined"])
    if kind == "none":
        return []
    joined = instant(rng)
    if kind == "current":
        return [GroupMembershipFactory.build(customer=customer, group=group, joined_at=joined)]
    left = joined + timedelta(days=rng.choice([0, 1, 5]))
    stays = [
        GroupMembershipFactory.build(customer=customer, group=group, joined_at=joined, left_at=left)
    ]
    if kind == "rejoined":
        rejoined = left + timedelta(days=rng.choice([1, 3]))
        stays.append(
            GroupMembershipFactory.build(customer=customer, group=group, joined_at=rejoined)
        )
    return stays


def _prediction(rng: random.Random, customer: Customer) -> CustomerPrediction:
    """Scores of a buyer; a model not fitted yet leaves its value missing."""
    return CustomerPredictionFactory.build(
        customer=customer,
        predicted_value=maybe(rng, rng.choice(AMOUNTS), chance=0.9),
        expected_purchases=maybe(rng, rng.choice(PREDICTED_COUNTS), chance=0.9),
        p_alive=maybe(rng, rng.choice(PROBABILITIES), chance=0.9),
        churn_risk=maybe(rng, rng.choice(PROBABILITIES), chance=0.8),
        cluster=maybe(rng, rng.randint(1, 4), chance=0.8),
    )


def _metrics(rng: random.Random, customer: Customer) -> CustomerMetrics:
    def score() -> int | None:
        return maybe(rng, rng.randint(1, 5), chance=0.7)

    return CustomerMetricsFactory.build(
        customer=customer,
        r_score=score(),
        f_score=score(),
        m_score=score(),
        rfm_tier=maybe(rng, rng.choice(TIERS), chance=0.6),
        lifecycle_state=rng.choice(STATES),
        lifecycle_since=maybe(rng, instant(rng), chance=0.7),
        first_paid_at=maybe(rng, instant(rng), chance=0.7),
        last_paid_at=maybe(rng, instant(rng), chance=0.7),
        lifetime_orders=rng.randint(0, 5),
        lifetime_net_spend=rng.choice(AMOUNTS),
        orders_in_window=rng.randint(0, 3),
        net_spend_in_window=rng.choice(AMOUNTS),
        avg_order_value=maybe(rng, rng.choice(AMOUNTS), chance=0.7),
    )


# --- Random rules ----------------------------------------------------------------------------


def leaf(field: str, op: str, value: Any, params: dict[str, Any] | None = None) -> dict[str, Any]:
    node = {"field": field, "op": op, "value": value}
    if params:
        node["params"] = params
    return node


def _some(values: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(values, min_size=1, max_size=3)


def comparable_leaves(
    field: str, values: st.SearchStrategy[Any], *, ordered: bool, contains: Any = None
) -> st.SearchStrategy[dict[str, Any]]:
    """Leaves on a number, string or choice field."""
    options = [
        st.builds(lambda op, v: leaf(field, op, v), st.sampled_from(["eq", "neq"]), values),
        st.builds(
            lambda op, v: leaf(field, op, v), st.sampled_from(["in", "not_in"]), _some(values)
        ),
        st.booleans().map(lambda flag: leaf(field, "is_null", flag)),
    ]
    if ordered:
        options += [
            st.builds(
                lambda op, v: leaf(field, op, v),
                st.sampled_from(["gt", "gte", "lt", "lte"]),
                values,
            ),
            st.tuples(values, values).map(lambda pair: leaf(field, "between", sorted(pair))),
        ]
    if contains is not None:
        options.append(contains.map(lambda v: leaf(field, "contains", v)))
    return st.one_of(options)


DATE_VALUES = st.one_of(
    st.sampled_from(DAYS_BACK).map(lambda d: (AS_OF_DAY - timedelta(days=d)).isoformat()),
    st.sampled_from(DAYS_BACK).map(lambda d: (AS_OF - timedelta(days=d)).isoformat()),
    st.sampled_from(DAYS_BACK).map(
        lambda d: day_start(AS_OF_DAY - timedelta(days=d)).astimezone(UTC).isoformat()
    ),
    st.sampled_from(DAYS_BACK).map(lambda d: {"days_ago": d}),
)


def datetime_leaves(field: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(
            lambda op, v: leaf(field, op, v),
            st.sampled_from(["gt", "gte", "lt", "lte", "before", "after"]),
            DATE_VALUES,
        ),
        st.tuples(DATE_VALUES, DATE_VALUES).map(lambda pair: leaf(field, "between", list(pair))),
        st.sampled_from(WINDOWS).map(lambda n: leaf(field, "within_last_days", n)),
        st.booleans().map(lambda flag: leaf(field, "is_null", flag)),
    )


def count_leaves(
    field: str, params: st.SearchStrategy[dict[str, Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    counts = st.integers(0, 3)
    return st.one_of(
        st.builds(
            lambda op, v, p: leaf(field, op, v, p),
            st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte"]),
            counts,
            params,
        ),
        st.builds(
            lambda pair, p: leaf(field, "between", sorted(pair), p),
            st.tuples(counts, counts),
            params,
        ),
    )


def with_window(params: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda p, days: {**p, "within_days": days} if days else p,
        params,
        st.sampled_from([None, *WINDOWS, 400]),
    )


def rule_leaves(catalog: Catalog, *, segments: bool) -> st.SearchStrategy[dict[str, Any]]:
    tag_refs = st.sampled_from(
        [*catalog.tag_ids, *({"group": g, "name": n} for g, n in catalog.tag_names)]
    )
    groups = st.sampled_from(catalog.group_ids)
    numbers = st.sampled_from([0, 1, 2, 3, 5, 99.5, 100, 100.01, 500])
    options = [
        comparable_leaves("gender", st.sampled_from(["unknown", "male", "female"]), ordered=False),
        comparable_leaves(
            "province",
            st.sampled_from([*PROVINCES[1:], "广"]),
            ordered=False,
            contains=st.sampled_from(["zhe", "%", "_", "0%o", "江", "a_b", "Z"]),
        ),
        comparable_leaves(
            "city",
            st.sampled_from(CITIES[1:]),
            ordered=False,
            contains=st.sampled_from(["h", "州"]),
        ),
        comparable_leaves("source_channel", st.sampled_from(CHANNELS[1:]), ordered=False),
        comparable_leaves("member_level", st.integers(0, 5), ordered=True),
        comparable_leaves(
            "owner",
            st.sampled_from([*STAFF, "dave"]),
            ordered=False,
            contains=st.sampled_from(["a", "LI", "o"]),
        ),
        datetime_leaves("first_seen_at"),
        comparable_leaves("birthday_month", st.integers(1, 12), ordered=True),
        st.builds(lambda v: leaf("tag", "has", v), tag_refs),
        st.builds(
            lambda op, v: leaf("tag", op, v),
            st.sampled_from(["has_any", "has_all", "has_none"]),
            _some(tag_refs),
        ),
        st.builds(
            lambda op, v: leaf("tag_group", op, v),
            st.sampled_from(["has", "has_none"]),
            st.sampled_from([*catalog.tag_group_ids, *catalog.tag_group_names]),
        ),
        st.builds(lambda v: leaf("group", "has", v), groups),
        st.builds(
            lambda op, v: leaf("group", op, v),
            st.sampled_from(["has_any", "has_all", "has_none"]),
            _some(groups),
        ),
        st.builds(
            lambda n, g: leaf("group_joined", "within_last_days", n, {"group": g} if g else None),
            st.sampled_from(WINDOWS),
            st.sampled_from([None, *catalog.group_ids]),
        ),
        st.sampled_from(CONSENT_CHANNELS).flatmap(
            lambda channel: comparable_leaves(
                f"consent.{channel}", st.sampled_from(["opted_in", "opted_out"]), ordered=False
            )
        ),
        comparable_leaves("r_score", st.integers(1, 5), ordered=True),
        comparable_leaves("m_score", st.integers(1, 5), ordered=True),
        comparable_leaves("rfm_tier", st.sampled_from(TIERS), ordered=False),
        comparable_leaves("lifecycle_state", st.sampled_from(STATES), ordered=False),
        datetime_leaves("lifecycle_since"),
        datetime_leaves("first_order_at"),
        datetime_leaves("last_order_at"),
        comparable_leaves("order_count", st.integers(0, 5), ordered=True),
        comparable_leaves("spend", numbers, ordered=True),
        comparable_leaves("orders_in_window", st.integers(0, 3), ordered=True),
        comparable_leaves("spend_in_window", numbers, ordered=True),
        comparable_leaves("avg_order_value", numbers, ordered=True),
        comparable_leaves("predicted_value", numbers, ordered=True),
        comparable_leaves(
            "expected_purchases", st.sampled_from([0, 0.5, 1, 1.25, 3]), ordered=True
        ),
        comparable_leaves("p_alive", st.sampled_from([0, 0.25, 0.5, 0.75, 1]), ordered=True),
        comparable_leaves("churn_risk", st.sampled_from([0, 0.25, 0.5, 0.75, 1]), ordered=True),
        comparable_leaves("cluster", st.integers(1, 4), ordered=True),
        comparable_leaves(
            "days_since_last_order", st.sampled_from([0, 1, 2, 7, 30, 400]), ordered=True
        ),
        count_leaves(
            "purchased",
            with_window(
                st.one_of(
                    _some(st.sampled_from(SKUS)).map(lambda skus: {"sku": skus}),
                    _some(st.sampled_from(CATEGORIES)).map(lambda cats: {"category": cats}),
                )
            ),
        ),
        count_leaves("interacted", with_window(st.sampled_from(KINDS).map(lambda k: {"kind": k}))),
    ]
    if segments:
        options.append(
            st.builds(
                lambda op, v: leaf("segment", op, v),
                st.sampled_from(["in", "not_in"]),
                st.sampled_from(
                    [
                        [catalog.static_segment_id],
                        [catalog.dynamic_segment_id],
                        [catalog.static_segment_id, catalog.dynamic_segment_id],
                    ]
                ),
            )
        )
    return st.one_of(options)


def rules(catalog: Catalog, *, segments: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        rule_leaves(catalog, segments=segments),
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda nodes: {"all": nodes}),
            st.lists(children, min_size=1, max_size=3).map(lambda nodes: {"any": nodes}),
            children.map(lambda node: {"not": node}),
        ),
        max_leaves=8,
    )


# --- The property ----------------------------------------------------------------------------


def top_level_parts(rule: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("all", "any"):
        if key in rule:
            yield from rule[key]


def _share(matched: int, customers: int) -> str:
    return "none" if matched == 0 else "all" if matched == customers else "some"


# Each example writes its data inside a savepoint that it rolls back, and the catalog fixture
# is only read, so examples never see each other's data: the health check's worry, state
# shared through a function-scoped fixture, does not arise.
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_sql_selects_what_the_reference_evaluator_selects(
    catalog: Catalog, data: st.DataObject
) -> None:
    seed = data.draw(st.integers(0, 2**32 - 1), label="data seed")
    dynamic_rule = data.draw(rules(catalog, segments=False), label="dynamic segment's rule")
    checked = data.draw(
        st.lists(rules(catalog, segments=True), min_size=3, max_size=3), label="rules"
    )
    with transaction.atomic():
        world_build(random.Random(seed), catalog)
        Segment.objects.filter(pk=catalog.dynamic_segment_id).update(rule=dynamic_rule)
        snapshot = snapshot_load()
        for rule in checked:
            expected = reference_members(rule, snapshot=snapshot, as_of=AS_OF)
            assert sql_members(rule, as_of=AS_OF) == expected, rule
            # Seen with --hypothesis-show-statistics: rules must split the customers often.
            event("matches " + _share(len(expected), len(snapshot.customers)))
            parts = list(top_level_parts(rule))
            expected_counts = [len(expected)] + [
                len(reference_members(part, snapshot=snapshot, as_of=AS_OF)) for part in parts
            ]
            assert preview_counts(rule, as_of=AS_OF) == expected_counts, rule
        transaction.set_rollback(True)
