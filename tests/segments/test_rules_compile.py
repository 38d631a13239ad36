"""The rule compiler against small hand-built data: every operator on a field of each type, the
fields over sets of rows, segment references, nesting and `not` with missing values, the shape
of the SQL (one statement, values as parameters, hashed subplans), the preview counts and the
open field registry."""

import dataclasses
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction

from crm.models import Customer, Tag
from segments.rules import (
    FROM_CLAUSE,
    RULE_SESSION_SQL,
    CompileContext,
    KeyedColumn,
    Leaf,
    RowColumn,
    register_field,
    rule_compile,
    rule_members_sql,
    rule_referenced_segments,
)
from segments.rules import fields as rule_fields
from segments.rules.errors import InvalidRule
from segments.rules.fields import FieldCategory
from segments.rules.sql import Sql, is_member, param
from segments.rules.values import ChoiceType, NumberType, StringType
from tests.factories import (
    ConsentFactory,
    CustomerFactory,
    CustomerMetricsFactory,
    CustomerTagFactory,
    GroupFactory,
    GroupMembershipFactory,
    InteractionFactory,
    OrderFactory,
    SegmentFactory,
    SegmentMembershipFactory,
    StaffMemberFactory,
    TagFactory,
    TagGroupFactory,
)
from tests.segments.rules_support import day_start, preview_counts, sql_members

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2026, 3, 15, 10, 30, tzinfo=SHANGHAI)


def leaf(field: str, op: str, value: Any, **params: Any) -> dict[str, Any]:
    node = {"field": field, "op": op, "value": value}
    if params:
        node["params"] = params
    return node


def members(rule: dict[str, Any], *, as_of: datetime = AS_OF) -> set[int]:
    return sql_members(rule, as_of=as_of)


def ids(*customers: Customer) -> set[int]:
    return {customer.pk for customer in customers}


# --- Profile fields ------------------------------------------------------------------------


def test_choice_operators_on_gender() -> None:
    female = CustomerFactory(gender="female")
    male = CustomerFactory(gender="male")
    unknown = CustomerFactory(gender="unknown")
    assert members(leaf("gender", "eq", "female")) == ids(female)
    assert members(leaf("gender", "neq", "female")) == ids(male, unknown)
    assert members(leaf("gender", "in", ["female", "male"])) == ids(female, male)
    assert members(leaf("gender", "not_in", ["female"])) == ids(male, unknown)
    assert members(leaf("gender", "is_null", True)) == set()
    assert members(leaf("gender", "is_null", False)) == ids(female, male, unknown)


def test_string_operators_treat_a_blank_profile_string_as_missing() -> None:
    guangdong = CustomerFactory(province="广东")
    zhejiang = CustomerFactory(province="Zhejiang")
    blank = CustomerFactory(province="")
    assert members(leaf("province", "eq", "Zhejiang")) == ids(zhejiang)
    assert members(leaf("province", "eq", "zhejiang")) == set()  # eq is exact
    assert members(leaf("province", "neq", "Zhejiang")) == ids(guangdong)
    assert members(leaf("province", "in", ["广东", "Zhejiang"])) == ids(guangdong, zhejiang)
    assert members(leaf("province", "not_in", ["广东"])) == ids(zhejiang)
    assert members(leaf("province", "contains", "JIAN")) == ids(zhejiang)
    assert members(leaf("province", "contains", "东")) == ids(guangdong)
    assert members(leaf("province", "is_null", True)) == ids(blank)
    assert members(leaf("province", "is_null", False)) == ids(guangdong, zhejiang)


def test_contains_takes_like_wildcards_and_backslashes_literally() -> None:
    percent = CustomerFactory(city="50%off")
    digits = CustomerFactory(city="500off")
    underscore = CustomerFactory(city="a_b")
    letter = CustomerFactory(city="axb")
    backslash = CustomerFactory(city="back\\slash")
    assert members(leaf("city", "contains", "0%o")) == ids(percent)
    assert members(leaf("city", "contains", "a_b")) == ids(underscore)
    assert members(leaf("city", "contains", "%")) == ids(percent)
    assert members(leaf("city", "contains", "_")) == ids(underscore)
    assert members(leaf("city", "contains", "k\\s")) == ids(backslash)
    assert members(leaf("city", "contains", "x")) == ids(letter)
    assert members(leaf("city", "contains", "0")) == ids(percent, digits)


def test_source_channel_choices_and_blank() -> None:
    douyin = CustomerFactory(source_channel="douyin")
    wecom = CustomerFactory(source_channel="wecom")
    blank = CustomerFactory(source_channel="")
    assert members(leaf("source_channel", "eq", "wecom")) == ids(wecom)
    assert members(leaf("source_channel", "neq", "wecom")) == ids(douyin)
    assert members(leaf("source_channel", "in", ["douyin", "wecom"])) == ids(douyin, wecom)
    assert members(leaf("source_channel", "not_in", ["douyin"])) == ids(wecom)
    assert members(leaf("source_channel", "is_null", True)) == ids(blank)


def test_number_operators_on_member_level() -> None:
    level = {n: CustomerFactory(member_level=n) for n in range(4)}
    assert members(leaf("member_level", "eq", 2)) == ids(level[2])
    assert members(leaf("member_level", "neq", 2)) == ids(level[0], level[1], level[3])
    assert members(leaf("member_level", "in", [0, 3])) == ids(level[0], level[3])
    assert members(leaf("member_level", "not_in", [0, 3])) == ids(level[1], level[2])
    assert members(leaf("member_level", "gt", 2)) == ids(level[3])
    assert members(leaf("member_level", "gte", 2)) == ids(level[2], level[3])
    assert members(leaf("member_level", "lt", 1)) == ids(level[0])
    assert members(leaf("member_level", "lte", 1)) == ids(level[0], level[1])
    assert members(leaf("member_level", "between", [1, 2])) == ids(level[1], level[2])
    assert members(leaf("member_level", "between", [2, 2])) == ids(level[2])
    assert members(leaf("member_level", "is_null", False)) == ids(*level.values())
    assert members(leaf("member_level", "is_null", True)) == set()


def test_birthday_month() -> None:
    march = CustomerFactory(birthday=date(1990, 3, 31))
    december = CustomerFactory(birthday=date(1988, 12, 1))
    unknown = CustomerFactory(birthday=None)
    assert members(leaf("birthday_month", "eq", 3)) == ids(march)
    assert members(leaf("birthday_month", "in", [3, 12])) == ids(march, december)
    assert members(leaf("birthday_month", "between", [1, 6])) == ids(march)
    assert members(leaf("birthday_month", "neq", 3)) == ids(december)
    assert members(leaf("birthday_month", "is_null", True)) == ids(unknown)


def test_owner_is_compared_by_wecom_userid() -> None:
    alice = CustomerFactory(owner=StaffMemberFactory(wecom_userid="alice"))
    bob = CustomerFactory(owner=StaffMemberFactory(wecom_userid="bob"))
    nobody = CustomerFactory(owner=None)
    assert members(leaf("owner", "eq", "alice")) == ids(alice)
    assert members(leaf("owner", "neq", "alice")) == ids(bob)
    assert members(leaf("owner", "in", ["alice", "bob"])) == ids(alice, bob)
    assert members(leaf("owner", "not_in", ["alice"])) == ids(bob)
    assert members(leaf("owner", "contains", "LI")) == ids(alice)
    assert members(leaf("owner", "is_null", True)) == ids(nobody)
    assert members(leaf("owner", "is_null", False)) == ids(alice, bob)
    assert members({"not": leaf("owner", "eq", "alice")}) == ids(bob, nobody)


def test_datetime_operators_with_days_instants_and_relative_dates() -> None:
    march_1 = day_start(date(2026, 3, 1))
    at_start = CustomerFactory(first_seen_at=march_1)
    just_before = CustomerFactory(first_seen_at=march_1 - timedelta(seconds=1))
    at_end = CustomerFactory(first_seen_at=march_1 + timedelta(days=1, seconds=-1))
    week_ago = CustomerFactory(first_seen_at=AS_OF - timedelta(days=7))
    week_ago_minus = CustomerFactory(first_seen_at=AS_OF - timedelta(days=7, seconds=1))
    yesterday = CustomerFactory(first_seen_at=AS_OF - timedelta(days=1))
    everyone = ids(at_start, just_before, at_end, week_ago, week_ago_minus, yesterday)
    later = ids(week_ago, week_ago_minus, yesterday)

    assert members(leaf("first_seen_at", "gt", "2026-03-01")) == later
    assert members(leaf("first_seen_at", "after", "2026-03-01")) == later
    assert members(leaf("first_seen_at", "gte", "2026-03-01")) == ids(at_start, at_end) | later
    assert members(leaf("first_seen_at", "lt", "2026-03-01")) == ids(just_before)
    assert members(leaf("first_seen_at", "before", "2026-03-01")) == ids(just_before)
    assert members(leaf("first_seen_at", "lte", "2026-03-01")) == ids(just_before, at_start, at_end)
    assert members(leaf("first_seen_at", "between", ["2026-03-01", "2026-03-01"])) == ids(
        at_start, at_end
    )
    assert members(leaf("first_seen_at", "between", ["2026-03-01", {"days_ago": 7}])) == ids(
        at_start, at_end, week_ago, week_ago_minus
    )
    assert members(leaf("first_seen_at", "within_last_days", 7)) == ids(week_ago, yesterday)
    assert members(leaf("first_seen_at", "gte", {"days_ago": 7})) == ids(week_ago, yesterday)
    assert members(leaf("first_seen_at", "gt", {"days_ago": 7})) == ids(yesterday)
    assert members(leaf("first_seen_at", "lt", {"days_ago": 7})) == everyone - ids(
        week_ago, yesterday
    )
    # A datetime value is an instant: after is strictly after it, lte includes it.
    assert members(leaf("first_seen_at", "after", "2026-03-01T00:00:00+08:00")) == (
        ids(at_end) | later
    )
    assert members(leaf("first_seen_at", "lte", "2026-02-28T16:00:00+00:00")) == ids(
        just_before, at_start
    )
    assert members(leaf("first_seen_at", "before", "2026-02-28T16:00:00Z")) == ids(just_before)
    assert members(leaf("first_seen_at", "is_null", False)) == everyone
    assert members(leaf("first_seen_at", "is_null", True)) == set()


def test_relative_dates_count_from_as_of() -> None:
    seen = CustomerFactory(first_seen_at=AS_OF - timedelta(days=10))
    rule = leaf("first_seen_at", "within_last_days", 7)
    assert members(rule) == set()
    assert members(rule, as_of=AS_OF - timedelta(days=5)) == ids(seen)
    assert members(leaf("first_seen_at", "after", {"days_ago": 3}), as_of=AS_OF) == set()
    assert members(
        leaf("first_seen_at", "after", {"days_ago": 3}), as_of=AS_OF - timedelta(days=8)
    ) == ids(seen)


def test_as_of_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        rule_compile(leaf("member_level", "eq", 1), as_of=datetime(2026, 3, 15, 10, 30))


# --- Tags and groups -----------------------------------------------------------------------


def test_tag_operators_by_id_and_by_name() -> None:
    interests = TagGroupFactory(name="兴趣")
    membership = TagGroupFactory(name="会员")
    beauty = TagFactory(group=interests, name="美妆")
    baby = TagFactory(group=interests, name="母婴")
    gold = TagFactory(group=membership, name="金卡")
    both = CustomerFactory()
    CustomerTagFactory(customer=both, tag=beauty)
    CustomerTagFactory(customer=both, tag=gold)
    baby_only = CustomerFactory()
    CustomerTagFactory(customer=baby_only, tag=baby)
    untagged = CustomerFactory()
    interests_both = CustomerFactory()
    CustomerTagFactory(customer=interests_both, tag=beauty)
    CustomerTagFactory(customer=interests_both, tag=baby)

    assert members(leaf("tag", "has", beauty.pk)) == ids(both, interests_both)
    assert members(leaf("tag", "has", {"group": "兴趣", "name": "母婴"})) == ids(
        baby_only, interests_both
    )
    assert members(leaf("tag", "has_any", [beauty.pk, baby.pk])) == ids(
        both, baby_only, interests_both
    )
    assert members(leaf("tag", "has_all", [beauty.pk, baby.pk])) == ids(interests_both)
    assert members(leaf("tag", "has_all", [beauty.pk, {"group": "兴趣", "name": "美妆"}])) == ids(
        both, interests_both
    )
    assert members(leaf("tag", "has_none", [beauty.pk, gold.pk])) == ids(baby_only, untagged)
    assert members(leaf("tag_group", "has", "会员")) == ids(both)
    assert members(leaf("tag_group", "has", interests.pk)) == ids(both, baby_only, interests_both)
    assert members(leaf("tag_group", "has_none", "兴趣")) == ids(untagged)


def test_group_operators_see_current_stays_only() -> None:
    g1, g2, g3 = GroupFactory(), GroupFactory(), GroupFactory()
    stayed = CustomerFactory()
    GroupMembershipFactory(customer=stayed, group=g1, joined_at=AS_OF - timedelta(days=100))
    GroupMembershipFactory(
        customer=stayed,
        group=g2,
        joined_at=AS_OF - timedelta(days=10),
        left_at=AS_OF - timedelta(days=5),
    )
    in_two = CustomerFactory()
    GroupMembershipFactory(customer=in_two, group=g1, joined_at=AS_OF - timedelta(days=40))
    GroupMembershipFactory(customer=in_two, group=g2, joined_at=AS_OF - timedelta(days=30))
    rejoined = CustomerFactory()
    GroupMembershipFactory(
        customer=rejoined,
        group=g1,
        joined_at=AS_OF - timedelta(days=200),
        left_at=AS_OF - timedelta(days=150),
    )
    GroupMembershipFactory(customer=rejoined, group=g1, joined_at=AS_OF - timedelta(days=3))
    outsider = CustomerFactory()

    assert members(leaf("group", "has", g1.pk)) == ids(stayed, in_two, rejoined)
    assert members(leaf("group", "has", g2.pk)) == ids(in_two)
    assert members(leaf("group", "has_any", [g2.pk, g3.pk])) == ids(in_two)
    assert members(leaf("group", "has_all", [g1.pk, g2.pk])) == ids(in_two)
    assert members(leaf("group", "has_all", [g1.pk, g1.pk])) == ids(stayed, in_two, rejoined)
    assert members(leaf("group", "has_none", [g2.pk])) == ids(stayed, rejoined, outsider)
    # Joined within N days: any stay, left or not, beginning at or after as_of - N days.
    assert members(leaf("group_joined", "within_last_days", 30)) == ids(stayed, in_two, rejoined)
    assert members(leaf("group_joined", "within_last_days", 29)) == ids(stayed, rejoined)
    assert members(leaf("group_joined", "within_last_days", 30, group=g1.pk)) == ids(rejoined)
    assert members(leaf("group_joined", "within_last_days", 30, group=g2.pk)) == ids(stayed, in_two)
    assert members(leaf("group_joined", "within_last_days", 365, group=g3.pk)) == set()


# --- Consent -------------------------------------------------------------------------------


def test_consent_per_channel_with_no_decision_as_missing() -> None:
    opted_in = CustomerFactory()
    ConsentFactory(customer=opted_in, channel="wecom", status="opted_in")
    ConsentFactory(customer=opted_in, channel="sms", status="opted_out")
    opted_out = CustomerFactory()
    ConsentFactory(customer=opted_out, channel="wecom", status="opted_out")
    undecided = CustomerFactory()

    assert members(leaf("consent.wecom", "eq", "opted_in")) == ids(opted_in)
    assert members(leaf("consent.wecom", "neq", "opted_in")) == ids(opted_out)
    assert members(leaf("consent.wecom", "in", ["opted_in", "opted_out"])) == ids(
        opted_in, opted_out
    )
    assert members(leaf("consent.wecom", "not_in", ["opted_out"])) == ids(opted_in)
    assert members(leaf("consent.wecom", "is_null", True)) == ids(undecided)
    assert members(leaf("consent.wecom", "is_null", False)) == ids(opted_in, opted_out)
    assert members(leaf("consent.sms", "eq", "opted_out")) == ids(opted_in)
    assert members(leaf("consent.email", "is_null", True)) == ids(opted_in, opted_out, undecided)
    assert members({"not": leaf("consent.wecom", "eq", "opted_out")}) == ids(opted_in, undecided)


# --- Metrics -------------------------------------------------------------------------------


@pytest.fixture
def scored() -> dict[str, Customer]:
    """Customers with a full metrics row, a sparse one, none, and one who ordered just after
    midnight business time."""
    full = CustomerFactory()
    CustomerMetricsFactory(
        customer=full,
        r_score=5,
        f_score=4,
        m_score=3,
        rfm_tier="important_value",
        lifecycle_state="active",
        lifecycle_since=datetime(2026, 2, 1, 12, tzinfo=SHANGHAI),
        first_paid_at=datetime(2025, 1, 1, 12, tzinfo=SHANGHAI),
        last_paid_at=datetime(2026, 3, 14, 23, 30, tzinfo=SHANGHAI),
        lifetime_orders=5,
        lifetime_net_spend=Decimal("1000.50"),
        orders_in_window=2,
        net_spend_in_window=Decimal("300.00"),
        avg_order_value=Decimal("200.10"),
    )
    sparse = CustomerFactory()
    CustomerMetricsFactory(
        customer=sparse,
        lifecycle_state="churned",
        first_paid_at=datetime(2025, 1, 10, 9, tzinfo=SHANGHAI),
        last_paid_at=datetime(2025, 1, 10, 9, tzinfo=SHANGHAI),
        lifetime_orders=1,
        lifetime_net_spend=Decimal("99.99"),
        avg_order_value=Decimal("99.99"),
    )
    uncomputed = CustomerFactory()
    after_midnight = CustomerFactory()
    # 16:30 UTC on the 14th is 00:30 on the 15th in Shanghai: the same business day as as_of.
    CustomerMetricsFactory(
        customer=after_midnight,
        r_score=5,
        last_paid_at=datetime(2026, 3, 14, 16, 30, tzinfo=ZoneInfo("UTC")),
        lifetime_orders=1,
        lifetime_net_spend=Decimal("10"),
    )
    return {
        "full": full,
        "sparse": sparse,
        "uncomputed": uncomputed,
        "after_midnight": after_midnight,
    }


def test_scores_are_missing_without_a_metrics_row(scored: dict[str, Customer]) -> None:
    full, sparse, uncomputed, late = scored.values()
    assert members(leaf("r_score", "gte", 4)) == ids(full, late)
    assert members(leaf("r_score", "eq", 5)) == ids(full, late)
    assert members(leaf("r_score", "neq", 5)) == set()
    assert members(leaf("f_score", "between", [3, 5])) == ids(full)
    assert members(leaf("m_score", "in", [1, 3])) == ids(full)
    assert members(leaf("m_score", "not_in", [1])) == ids(full)
    assert members(leaf("r_score", "is_null", True)) == ids(sparse, uncomputed)
    assert members({"not": leaf("r_score", "gte", 4)}) == ids(sparse, uncomputed)
    assert members(leaf("rfm_tier", "eq", "important_value")) == ids(full)
    assert members(leaf("rfm_tier", "is_null", True)) == ids(sparse, uncomputed, late)


def test_lifecycle_state_of_an_uncomputed_customer_is_prospect(
    scored: dict[str, Customer],
) -> None:
    full, sparse, uncomputed, late = scored.values()
    # after_midnight's row has the model default, prospect.
    assert members(leaf("lifecycle_state", "eq", "prospect")) == ids(uncomputed, late)
    assert members(leaf("lifecycle_state", "in", ["active", "churned"])) == ids(full, sparse)
    assert members(leaf("lifecycle_state", "neq", "prospect")) == ids(full, sparse)
    assert members(leaf("lifecycle_state", "is_null", True)) == set()
    assert members(leaf("lifecycle_since", "after", "2026-01-31")) == ids(full)
    assert members(leaf("lifecycle_since", "is_null", True)) == ids(sparse, uncomputed, late)


def test_order_counts_and_spend_default_to_zero(scored: dict[str, Customer]) -> None:
    full, sparse, uncomputed, late = scored.values()
    assert members(leaf("order_count", "eq", 0)) == ids(uncomputed)
    assert members(leaf("order_count", "gte", 1)) == ids(full, sparse, late)
    assert members(leaf("order_count", "lt", 2)) == ids(sparse, uncomputed, late)
    assert members(leaf("spend", "gt", 1000.5)) == set()
    assert members(leaf("spend", "gte", 1000.5)) == ids(full)
    assert members(leaf("spend", "lt", 100)) == ids(sparse, uncomputed, late)
    assert members(leaf("spend", "between", [99.99, 1000.5])) == ids(full, sparse)
    assert members(leaf("spend", "eq", 0)) == ids(uncomputed)
    assert members(leaf("orders_in_window", "eq", 0)) == ids(sparse, uncomputed, late)
    assert members(leaf("spend_in_window", "gte", 300)) == ids(full)
    assert members(leaf("avg_order_value", "lt", 100)) == ids(sparse)
    assert members(leaf("avg_order_value", "is_null", True)) == ids(uncomputed, late)


def test_order_dates_and_days_since_last_order_in_business_days(
    scored: dict[str, Customer],
) -> None:
    full, sparse, uncomputed, late = scored.values()
    assert members(leaf("days_since_last_order", "eq", 1)) == ids(full)
    assert members(leaf("days_since_last_order", "eq", 0)) == ids(late)
    assert members(leaf("days_since_last_order", "gt", 400)) == ids(sparse)  # 429 days
    assert members(leaf("days_since_last_order", "eq", 429)) == ids(sparse)
    assert members(leaf("days_since_last_order", "is_null", True)) == ids(uncomputed)
    assert members(leaf("days_since_last_order", "lte", 1)) == ids(full, late)
    assert members(leaf("last_order_at", "within_last_days", 1)) == ids(full, late)
    assert members(leaf("last_order_at", "gte", "2026-03-15")) == ids(late)
    assert members(leaf("first_order_at", "before", "2025-06-01")) == ids(full, sparse)
    assert members({"not": leaf("last_order_at", "within_last_days", 30)}) == ids(
        sparse, uncomputed
    )


# --- Behaviour -----------------------------------------------------------------------------


def test_purchased_counts_distinct_paid_orders_with_a_matching_item() -> None:
    repeat = CustomerFactory()
    OrderFactory(
        customer=repeat,
        paid_at=AS_OF - timedelta(days=5),
        items=[("SKU-A", "面膜"), ("SKU-B", "面膜")],
    )
    OrderFactory(customer=repeat, paid_at=AS_OF - timedelta(days=40), items=[("SKU-A", "面膜")])
    refunded = CustomerFactory()
    OrderFactory(
        customer=refunded,
        paid_at=AS_OF - timedelta(days=2),
        status="refunded",
        items=[("SKU-A", "面膜")],
    )
    OrderFactory(
        customer=refunded,
        paid_at=AS_OF - timedelta(days=10),
        status="partially_refunded",
        items=[("SKU-A", "面膜")],
    )
    other = CustomerFactory()
    OrderFactory(
        customer=other,
        paid_at=AS_OF - timedelta(days=1),
        status="cancelled",
        items=[("SKU-A", "面膜")],
    )
    OrderFactory(customer=other, paid_at=AS_OF - timedelta(days=3), items=[("SKU-C", "精华")])
    nothing = CustomerFactory()

    assert members(leaf("purchased", "gte", 1, sku=["SKU-A"])) == ids(repeat, refunded)
    assert members(leaf("purchased", "gte", 2, sku=["SKU-A"])) == ids(repeat)
    # An order holding two matching items counts once.
    assert members(leaf("purchased", "eq", 2, sku=["SKU-A", "SKU-B"])) == ids(repeat)
    assert members(leaf("purchased", "eq", 1, sku=["SKU-B"])) == ids(repeat)
    assert members(leaf("purchased", "gte", 1, sku=["SKU-A"], within_days=30)) == ids(
        repeat, refunded
    )
    assert members(leaf("purchased", "gte", 1, sku=["SKU-A"], within_days=7)) == ids(repeat)
    # The window includes its first instant: the order 40 days before as_of is within 40 days.
    assert members(leaf("purchased", "eq", 2, sku=["SKU-A"], within_days=40)) == ids(repeat)
    assert members(leaf("purchased", "eq", 2, sku=["SKU-A"], within_days=39)) == set()
    assert members(leaf("purchased", "gte", 1, category=["精华"])) == ids(other)
    # Comparisons that hold for 0 include the customers with no such order.
    assert members(leaf("purchased", "lt", 1, category=["面膜"])) == ids(other, nothing)
    assert members(leaf("purchased", "eq", 0, category=["面膜"])) == ids(other, nothing)
    assert members(leaf("purchased", "lt", 2, category=["面膜"])) == ids(refunded, other, nothing)
    assert members(leaf("purchased", "lte", 1, category=["面膜"])) == ids(refunded, other, nothing)
    assert members(leaf("purchased", "neq", 1, category=["面膜"])) == ids(repeat, other, nothing)
    assert members(leaf("purchased", "between", [1, 1], category=["面膜"])) == ids(refunded)
    # "At least once" in every spelling: the grouping alone, without counting orders.
    for op, value in (("gte", 1), ("gt", 0), ("neq", 0)):
        rule = leaf("purchased", op, value, category=["面膜"])
        assert members(rule) == ids(repeat, refunded)
        assert "count(DISTINCT" not in rule_members_sql(rule, as_of=AS_OF)[0]
    assert (
        "count(DISTINCT" in rule_members_sql(leaf("purchased", "gte", 2, sku=["A"]), as_of=AS_OF)[0]
    )
    assert members(leaf("purchased", "between", [0, 1], category=["面膜"])) == ids(
        refunded, other, nothing
    )
    assert members(leaf("purchased", "gt", 1, category=["面膜"])) == ids(repeat)


def test_interacted_counts_interactions_of_a_kind() -> None:
    active = CustomerFactory()
    InteractionFactory(customer=active, kind="link_click", occurred_at=AS_OF - timedelta(days=2))
    InteractionFactory(customer=active, kind="link_click", occurred_at=AS_OF - timedelta(days=20))
    InteractionFactory(customer=active, kind="message_reply", occurred_at=AS_OF - timedelta(days=1))
    lapsed = CustomerFactory()
    InteractionFactory(customer=lapsed, kind="link_click", occurred_at=AS_OF - timedelta(days=40))
    silent = CustomerFactory()

    clicks = {"kind": "link_click", "within_days": 30}
    assert members(leaf("interacted", "gte", 1, **clicks)) == ids(active)
    assert members(leaf("interacted", "eq", 2, **clicks)) == ids(active)
    assert members(leaf("interacted", "gte", 3, **clicks)) == set()
    assert members(leaf("interacted", "lt", 1, **clicks)) == ids(lapsed, silent)
    assert members(leaf("interacted", "gte", 1, kind="link_click")) == ids(active, lapsed)
    assert members(leaf("interacted", "eq", 1, kind="link_click")) == ids(lapsed)
    assert members(leaf("interacted", "gte", 1, kind="message_reply")) == ids(active)
    assert members(leaf("interacted", "lte", 0, kind="coupon_claim")) == ids(active, lapsed, silent)


# --- Segments ------------------------------------------------------------------------------


def test_segments_static_by_membership_dynamic_by_rule() -> None:
    beauty = TagFactory(name="美妆")
    c1, c2, c3, c4 = (CustomerFactory(member_level=n) for n in range(4))
    CustomerTagFactory(customer=c2, tag=beauty)
    CustomerTagFactory(customer=c4, tag=beauty)
    static = SegmentFactory(name="导入名单", kind="static")
    for customer in (c1, c2):
        SegmentMembershipFactory(segment=static, customer=customer)
    dynamic = SegmentFactory(name="美妆人群", kind="dynamic", rule=leaf("tag", "has", beauty.pk))
    # Stale materialised membership: the rule, not these rows, decides.
    SegmentMembershipFactory(segment=dynamic, customer=c3)
    nested = SegmentFactory(
        name="高等级美妆",
        kind="dynamic",
        rule={
            "all": [
                leaf("segment", "in", [dynamic.pk]),
                leaf("member_level", "gte", 2),
            ]
        },
    )

    assert members(leaf("segment", "in", [static.pk])) == ids(c1, c2)
    assert members(leaf("segment", "not_in", [static.pk])) == ids(c3, c4)
    assert members(leaf("segment", "in", [dynamic.pk])) == ids(c2, c4)
    assert members(leaf("segment", "in", [static.pk, dynamic.pk])) == ids(c1, c2, c4)
    assert members(leaf("segment", "not_in", [static.pk, dynamic.pk])) == ids(c3)
    assert members(leaf("segment", "in", [nested.pk])) == ids(c4)
    assert members(leaf("segment", "not_in", [nested.pk, static.pk])) == ids(c3)


def test_rule_referenced_segments_names_direct_references_only() -> None:
    rule = {
        "all": [
            leaf("segment", "in", [3, 1]),
            {"not": {"any": [leaf("segment", "not_in", [2]), leaf("member_level", "eq", 1)]}},
        ]
    }
    assert rule_referenced_segments(rule) == {1, 2, 3}
    assert rule_referenced_segments(leaf("member_level", "eq", 1)) == set()
    with pytest.raises(InvalidRule):
        rule_referenced_segments({"all": []})


# --- Nesting and two-valued logic ----------------------------------------------------------


def test_nested_all_any_not_three_levels_deep() -> None:
    beauty = TagFactory(name="美妆")
    a = CustomerFactory(gender="female", province="浙江", member_level=3)
    b = CustomerFactory(gender="female", province="广东", member_level=1)
    c = CustomerFactory(gender="male", province="浙江", member_level=5)
    d = CustomerFactory(gender="female", province="", member_level=4)
    e = CustomerFactory(gender="female", province="浙江", member_level=0)
    CustomerTagFactory(customer=a, tag=beauty)
    CustomerTagFactory(customer=e, tag=beauty)
    CustomerMetricsFactory(customer=b, r_score=5)
    rule = {
        "all": [
            leaf("gender", "eq", "female"),
            {
                "any": [
                    {
                        "all": [
                            leaf("province", "eq", "浙江"),
                            {"not": leaf("tag", "has", beauty.pk)},
                        ]
                    },
                    {
                        "not": {
                            "any": [leaf("member_level", "lt", 4), leaf("province", "eq", "浙江")]
                        }
                    },
                    leaf("r_score", "gte", 5),
                ]
            },
            {"not": {"all": [leaf("member_level", "eq", 0), leaf("tag", "has", beauty.pk)]}},
        ]
    }
    # a: 浙江 with the tag, level 3 <4, no score: no branch. b: r_score 5. d: level 4, blank
    # province (not 浙江). e: excluded by the last condition. c: male.
    assert members(rule) == ids(b, d)
    assert members({"not": rule}) == ids(a, c, e)


def test_not_is_the_complement_even_for_missing_values() -> None:
    customers = [CustomerFactory(province=p) for p in ("浙江", "", "广东")]
    CustomerMetricsFactory(customer=customers[0], r_score=2)
    everyone = ids(*customers)
    for condition in (
        leaf("province", "neq", "浙江"),
        leaf("r_score", "lt", 3),
        leaf("owner", "eq", "nobody"),
        leaf("consent.sms", "not_in", ["opted_in"]),
        leaf("birthday_month", "eq", 1),
    ):
        matched = members(condition)
        assert members({"not": condition}) == everyone - matched
        assert members({"any": [condition, {"not": condition}]}) == everyone
        assert members({"all": [condition, {"not": condition}]}) == set()


# --- The SQL -------------------------------------------------------------------------------


def test_members_sql_is_one_select_over_the_from_clause() -> None:
    assert FROM_CLAUSE == (
        "crm_customer c LEFT JOIN segments_customermetrics m ON m.customer_id = c.id"
    )
    sql, params = rule_members_sql(leaf("member_level", "gte", 2), as_of=AS_OF)
    assert sql == (
        "SELECT c.id AS customer_id FROM crm_customer c LEFT JOIN segments_customermetrics m "
        "ON m.customer_id = c.id WHERE (c.member_level >= %s)"
    )
    assert params == [Decimal(2)]
    compiled = rule_compile(leaf("member_level", "gte", 2), as_of=AS_OF)
    assert (compiled.condition, compiled.params) == ("(c.member_level >= %s)", [Decimal(2)])
    with pytest.raises(dataclasses.FrozenInstanceError):
        compiled.condition = "TRUE"  # type: ignore[misc]


def test_values_travel_as_parameters_only() -> None:
    hostile = "');DELETE FROM crm_tag;--%s"
    tag = TagFactory()
    customer = CustomerFactory(city=hostile)
    rule = {
        "any": [
            leaf("city", "eq", hostile),
            leaf("city", "contains", "%s"),
            leaf("owner", "in", [hostile]),
            leaf("purchased", "gte", 1, sku=[hostile]),
        ]
    }
    compiled = rule_compile(rule, as_of=AS_OF)
    assert "DELETE" not in compiled.condition
    assert compiled.condition.count("%s") == len(compiled.params)
    assert hostile in compiled.params
    assert members(rule) == ids(customer)
    assert list(Tag.objects.values_list("pk", flat=True)) == [tag.pk]


def _plan(sql: str, params: list[Any]) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (VERBOSE) " + sql, params)
        return "\n".join(line for (line,) in cursor.fetchall())


def test_set_conditions_run_as_hashed_subplans_not_per_customer() -> None:
    tag = TagFactory()
    group = GroupFactory()
    rule = {
        "any": [
            leaf("tag", "has", tag.pk),
            {"not": leaf("group", "has", group.pk)},
            leaf("consent.wecom", "eq", "opted_in"),
            leaf("interacted", "lt", 2, kind="link_click", within_days=30),
        ]
    }
    plan = _plan(*rule_members_sql(rule, as_of=AS_OF))
    filters = [line for line in plan.splitlines() if "Filter:" in line and "SubPlan" in line]
    references = re.findall(r"(hashed )?SubPlan \d+", "\n".join(filters))
    assert len(references) == 4
    assert all(hashed == "hashed " for hashed in references)


def test_the_session_statement_raises_work_mem_within_the_transaction() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        before = cursor.fetchone()
        assert before != ("128MB",)
        with transaction.atomic():
            cursor.execute(RULE_SESSION_SQL)
            cursor.execute("SHOW work_mem")
            assert cursor.fetchone() == ("128MB",)
            transaction.set_rollback(True)
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone() == before


def test_preview_counts_the_rule_and_each_top_level_condition_in_one_scan() -> None:
    CustomerFactory(gender="female", member_level=3)
    CustomerFactory(gender="female", member_level=1)
    CustomerFactory(gender="male", member_level=5)
    CustomerFactory(gender="unknown", member_level=0)
    female = leaf("gender", "eq", "female")
    high = leaf("member_level", "gte", 3)
    assert preview_counts({"all": [female, high]}, as_of=AS_OF) == [1, 2, 2]
    assert preview_counts({"any": [female, high]}, as_of=AS_OF) == [3, 2, 2]
    unknown = leaf("gender", "eq", "unknown")
    assert preview_counts({"any": [female, high, unknown]}, as_of=AS_OF) == [4, 2, 2, 1]
    assert preview_counts(high, as_of=AS_OF) == [2]
    assert preview_counts({"not": high}, as_of=AS_OF) == [2]
    assert preview_counts({"all": [{"not": female}]}, as_of=AS_OF) == [2, 2]


def test_preview_evaluates_each_condition_once(scratch_registry: None) -> None:
    """Each top-level condition is computed once per customer, though the preview counts it
    twice (in the whole rule and on its own): counted by a STABLE function (one the planner may
    copy into both counts, as it would if the inner query were pulled up) that draws from a
    sequence each time it runs, whatever plan the planner chooses."""
    customers = [CustomerFactory(gender="female"), CustomerFactory(), CustomerFactory()]
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP SEQUENCE rule_evaluations")
        cursor.execute(
            "CREATE FUNCTION pg_temp.rule_evaluated(customer_id bigint) RETURNS boolean "
            "LANGUAGE plpgsql STABLE AS $$ BEGIN PERFORM nextval('rule_evaluations'); "
            "RETURN customer_id > 0; END $$"
        )

    def compile_counted(field_leaf: Leaf, ctx: CompileContext) -> Sql:
        return Sql("pg_temp.rule_evaluated(c.id)")

    register_field(
        label="test",
        category=FieldCategory.PROFILE,
        name="counted",
        value_type=ChoiceType(["yes"]),
        ops=["eq"],
        compiler=compile_counted,
    )
    rule = {"all": [leaf("gender", "eq", "female"), leaf("counted", "eq", "yes")]}
    assert preview_counts(rule, as_of=AS_OF) == [1, 1, len(customers)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM rule_evaluations")
        assert cursor.fetchone() == (len(customers),)


# --- The open registry ---------------------------------------------------------------------


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fields registered by a test are forgotten after it."""
    monkeypatch.setattr(rule_fields, "_REGISTRY", dict(rule_fields._REGISTRY))


def test_a_new_field_compiles_without_touching_the_compiler(scratch_registry: None) -> None:
    rich = CustomerFactory(member_points=500)
    poor = CustomerFactory(member_points=10)
    register_field(
        label="test",
        category=FieldCategory.PROFILE,
        name="member_points",
        value_type=NumberType(),
        column=RowColumn(Sql("c.member_points")),
    )
    ConsentFactory(customer=rich, channel="wecom", status="opted_in")
    register_field(
        label="test",
        category=FieldCategory.PROFILE,
        name="consent_source.wecom",
        value_type=StringType(),
        column=KeyedColumn(
            table="crm_consent", column="source", row_filter=Sql("k.channel = 'wecom'")
        ),
    )

    def compile_points_band(field_leaf: Leaf, ctx: CompileContext) -> Sql:
        band = Sql("CASE WHEN c.member_points >= 100 THEN 'high' ELSE 'low' END")
        return band + " = " + param(field_leaf.value)

    register_field(
        label="test",
        category=FieldCategory.PROFILE,
        name="points_band",
        value_type=ChoiceType(["high", "low"]),
        ops=["eq"],
        compiler=compile_points_band,
    )
    assert members(leaf("member_points", "gt", 100)) == ids(rich)
    assert members(leaf("consent_source.wecom", "eq", "test")) == ids(rich)
    assert members(leaf("consent_source.wecom", "is_null", True)) == ids(poor)
    assert members(leaf("points_band", "eq", "low")) == ids(poor)
    with pytest.raises(InvalidRule) as refused:
        rule_compile(leaf("points_band", "neq", "low"), as_of=AS_OF)
    assert refused.value.detail["rule"][0]["path"] == "$.op"


def test_registration_refuses_inconsistent_fields(scratch_registry: None) -> None:
    column = RowColumn(Sql("c.member_points"))
    with pytest.raises(ValueError, match="registered already"):
        register_field(
            label="test",
            category=FieldCategory.PROFILE,
            name="gender",
            value_type=NumberType(),
            column=column,
        )
    with pytest.raises(ValueError, match="not of its type"):
        register_field(
            label="test",
            category=FieldCategory.PROFILE,
            name="points",
            value_type=NumberType(),
            ops=["contains"],
            column=column,
        )
    with pytest.raises(ValueError, match="exactly one of column and compiler"):
        register_field(
            label="test", category=FieldCategory.PROFILE, name="points", value_type=NumberType()
        )
    with pytest.raises(ValueError, match="exactly one of column and compiler"):
        register_field(
            label="test",
            category=FieldCategory.PROFILE,
            name="points",
            value_type=NumberType(),
            column=column,
            compiler=lambda field_leaf, ctx: is_member("c.id", Sql("SELECT 1")),
        )
    assert rule_fields.field_named("points") is None
