"""Test support for the segment rule language: business days, the members a rule selects
through its SQL, and a reference evaluator that decides the same in plain Python, one
customer at a time, straight from the language's definition (it shares no code with the
compiler, so that the two can disagree)."""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from crm.models import (
    Consent,
    Customer,
    CustomerTag,
    GroupMembership,
    Interaction,
    Order,
    OrderItem,
    StaffMember,
    Tag,
    TagGroup,
)
from segments.models import CustomerMetrics, CustomerPrediction, Segment, SegmentMembership
from segments.rules import RULE_SESSION_SQL, rule_members_sql, rule_preview_sql

PAID = {"paid", "partially_refunded"}
PREDICTED_FIELDS = {"predicted_value", "expected_purchases", "p_alive", "churn_risk", "cluster"}


# --- Business days ---------------------------------------------------------------------------


def business_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def day_start(day: date) -> datetime:
    """Midnight of a business day."""
    return datetime.combine(day, time.min, tzinfo=business_zone())


# --- The rule's members through SQL --------------------------------------------------------


def sql_members(rule: object, *, as_of: datetime) -> set[int]:
    sql, params = rule_members_sql(rule, as_of=as_of)
    with connection.cursor() as cursor:
        cursor.execute(RULE_SESSION_SQL)
        cursor.execute(sql, params)
        return {customer_id for (customer_id,) in cursor.fetchall()}


def preview_counts(rule: object, *, as_of: datetime) -> list[int]:
    sql, params = rule_preview_sql(rule, as_of=as_of)
    with connection.cursor() as cursor:
        cursor.execute(RULE_SESSION_SQL)
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None
    return list(row)


# --- Reference evaluator -------------------------------------------------------------------


@dataclass
class Snapshot:
    """Everything the reference evaluator reads, loaded with plain ORM queries."""

    customers: dict[int, Customer]
    staff_userids: dict[int, str]
    tags_held: dict[int, set[int]]
    tag_by_name: dict[tuple[str, str], int]
    tag_group_of: dict[int, int]
    tag_group_by_name: dict[str, int]
    stays: dict[int, list[GroupMembership]]
    consents: dict[tuple[int, str], str]
    metrics: dict[int, CustomerMetrics]
    predictions: dict[int, CustomerPrediction]
    orders: dict[int, list[Order]]
    order_items: dict[int, list[OrderItem]]
    interactions: dict[int, list[Interaction]]
    segments: dict[int, Segment]
    static_members: dict[int, set[int]]


def snapshot_load() -> Snapshot:
    tags_held: dict[int, set[int]] = defaultdict(set)
    for customer_id, tag_id in CustomerTag.objects.values_list("customer_id", "tag_id"):
        tags_held[customer_id].add(tag_id)
    stays: dict[int, list[GroupMembership]] = defaultdict(list)
    for stay in GroupMembership.objects.all():
        stays[stay.customer_id].append(stay)
    orders: dict[int, list[Order]] = defaultdict(list)
    for order in Order.objects.all():
        orders[order.customer_id].append(order)
    order_items: dict[int, list[OrderItem]] = defaultdict(list)
    for item in OrderItem.objects.all():
        order_items[item.order_id].append(item)
    interactions: dict[int, list[Interaction]] = defaultdict(list)
    for interaction in Interaction.objects.all():
        interactions[interaction.customer_id].append(interaction)
    static_members: dict[int, set[int]] = defaultdict(set)
    for segment_id, customer_id in SegmentMembership.objects.values_list(
        "segment_id", "customer_id"
    ):
        static_members[segment_id].add(customer_id)
    tags = list(Tag.objects.select_related("group"))
    return Snapshot(
        customers={c.pk: c for c in Customer.objects.all()},
        staff_userids=dict(StaffMember.objects.values_list("pk", "wecom_userid")),
        tags_held=tags_held,
        tag_by_name={(t.group.name, t.name): t.pk for t in tags},
        tag_group_of={t.pk: t.group_id for t in tags},
        tag_group_by_name={g.name: g.pk for g in TagGroup.objects.all()},
        stays=stays,
        consents={
            (customer_id, channel): status
            for customer_id, channel, status in Consent.objects.values_list(
                "customer_id", "channel", "status"
            )
        },
        metrics={m.customer_id: m for m in CustomerMetrics.objects.all()},
        predictions={p.customer_id: p for p in CustomerPrediction.objects.all()},
        orders=orders,
        order_items=order_items,
        interactions=interactions,
        segments={s.pk: s for s in Segment.objects.all()},
        static_members=static_members,
    )


def reference_members(rule: Mapping[str, Any], *, snapshot: Snapshot, as_of: datetime) -> set[int]:
    evaluator = ReferenceEvaluator(snapshot, as_of=as_of)
    return {pk for pk in snapshot.customers if evaluator.matches(rule, pk)}


class ReferenceEvaluator:
    """Decides whether one customer matches a (valid) rule, by the language's definition."""

    def __init__(self, snapshot: Snapshot, *, as_of: datetime) -> None:
        self.data = snapshot
        self.as_of = as_of

    def matches(self, rule: Mapping[str, Any], pk: int) -> bool:
        if "all" in rule:
            return all(self.matches(child, pk) for child in rule["all"])
        if "any" in rule:
            return any(self.matches(child, pk) for child in rule["any"])
        if "not" in rule:
            return not self.matches(rule["not"], pk)
        name, op, value = rule["field"], rule["op"], rule["value"]
        params = rule.get("params") or {}
        special = {
            "tag": self.tag,
            "tag_group": self.tag_group,
            "group": self.group,
            "group_joined": self.group_joined,
            "purchased": self.purchased,
            "interacted": self.interacted,
            "segment": self.segment,
        }
        if name in special:
            return special[name](pk, op, value, params)
        return self.compare(self.value_of(name, pk), op, value)

    # Column fields: the customer's value (None when missing), then the comparison.

    def value_of(self, name: str, pk: int) -> Any:
        customer = self.data.customers[pk]
        metrics = self.data.metrics.get(pk)
        if name.startswith("consent."):
            return self.data.consents.get((pk, name.removeprefix("consent.")))
        profile = {
            "gender": customer.gender,
            "province": customer.province or None,
            "city": customer.city or None,
            "source_channel": customer.source_channel or None,
            "member_level": customer.member_level,
            "owner": self.data.staff_userids.get(customer.owner_id or 0),
            "first_seen_at": customer.first_seen_at,
            "birthday_month": customer.birthday.month if customer.birthday else None,
        }
        if name in profile:
            return profile[name]
        if name in PREDICTED_FIELDS:
            prediction = self.data.predictions.get(pk)
            return getattr(prediction, name) if prediction else None
        if name == "lifecycle_state":
            return metrics.lifecycle_state if metrics else "prospect"
        zero_when_missing = {
            "order_count": "lifetime_orders",
            "spend": "lifetime_net_spend",
            "orders_in_window": "orders_in_window",
            "spend_in_window": "net_spend_in_window",
        }
        if name in zero_when_missing:
            return getattr(metrics, zero_when_missing[name]) if metrics else 0
        if name == "days_since_last_order":
            if metrics is None or metrics.last_paid_at is None:
                return None
            zone = business_zone()
            last_day = metrics.last_paid_at.astimezone(zone).date()
            return (self.as_of.astimezone(zone).date() - last_day).days
        column = {"first_order_at": "first_paid_at", "last_order_at": "last_paid_at"}.get(
            name, name
        )
        return getattr(metrics, column) if metrics else None

    def compare(self, actual: Any, op: str, value: Any) -> bool:
        if op == "is_null":
            return (actual is None) is value
        if actual is None:
            return False
        if isinstance(actual, datetime):
            return self.compare_instant(actual, op, value)
        if isinstance(actual, int | Decimal) and not isinstance(actual, bool):
            actual = Decimal(actual)
            value = self.numbers(value)
        if op == "eq":
            return bool(actual == value)
        if op == "neq":
            return bool(actual != value)
        if op == "in":
            return actual in value
        if op == "not_in":
            return actual not in value
        if op == "contains":
            return value.lower() in actual.lower()
        if op == "between":
            return bool(value[0] <= actual <= value[1])
        return bool(
            {
                "gt": actual > value,
                "gte": actual >= value,
                "lt": actual < value,
                "lte": actual <= value,
            }[op]
        )

    @staticmethod
    def numbers(value: Any) -> Any:
        if isinstance(value, list):
            return [Decimal(str(v)) for v in value]
        return Decimal(str(value))

    def compare_instant(self, actual: datetime, op: str, value: Any) -> bool:
        if op == "within_last_days":
            return actual >= self.as_of - timedelta(days=value)
        if op == "between":
            return self.compare_instant(actual, "gte", value[0]) and self.compare_instant(
                actual, "lte", value[1]
            )
        op = {"before": "lt", "after": "gt"}.get(op, op)
        if isinstance(value, str) and len(value) == 10:
            start = day_start(date.fromisoformat(value))
            end = start + timedelta(days=1)  # the business zone keeps no daylight saving
            return {
                "gt": actual >= end,
                "gte": actual >= start,
                "lt": actual < start,
                "lte": actual < end,
            }[op]
        if isinstance(value, str):
            instant = datetime.fromisoformat(value)
        else:
            instant = self.as_of - timedelta(days=value["days_ago"])
        return {
            "gt": actual > instant,
            "gte": actual >= instant,
            "lt": actual < instant,
            "lte": actual <= instant,
        }[op]

    # Fields over sets of rows.

    def tag_id(self, ref: Any) -> int:
        return ref if isinstance(ref, int) else self.data.tag_by_name[(ref["group"], ref["name"])]

    def tag(self, pk: int, op: str, value: Any, params: Mapping[str, Any]) -> bool:
        held = self.data.tags_held.get(pk, set())
        if op == "has":
            return self.tag_id(value) in held
        wanted = {self.tag_id(ref) for ref in value}
        return {
            "has_any": bool(wanted & held),
            "has_all": wanted <= held,
            "has_none": not wanted & held,
        }[op]

    def tag_group(self, pk: int, op: str, value: Any, params: Mapping[str, Any]) -> bool:
        group_id = value if isinstance(value, int) else self.data.tag_group_by_name[value]
        held = self.data.tags_held.get(pk, set())
        holds = any(self.data.tag_group_of[tag_id] == group_id for tag_id in held)
        return holds if op == "has" else not holds

    def group(self, pk: int, op: str, value: Any, params: Mapping[str, Any]) -> bool:
        current = {s.group_id for s in self.data.stays.get(pk, []) if s.left_at is None}
        if op == "has":
            return value in current
        wanted = set(value)
        return {
            "has_any": bool(wanted & current),
            "has_all": wanted <= current,
            "has_none": not wanted & current,
        }[op]

    def group_joined(self, pk: int, op: str, value: Any, params: Mapping[str, Any]) -> bool:
        since = self.as_of - timedelta(days=value)
        return any(
            stay.joined_at >= since and params.get("group", stay.group_id) == stay.group_id
            for stay in self.data.stays.get(pk, [])
        )

    def purchased(self, pk: int, op: str, value: Any, params: Mapping[str, Any]) -> bool:
        within_days = params.get("within_days")
        since = None if within_days is None else self.as_of - timedelta(days=within_days)
        wanted_column = "sku" if "sku" in params else "category"
        wanted = set(params[wanted_column])
        orders = 0
        for order in self.data.orders.get(pk, []):
            if order.status not in PAID or order.paid_at is None:
                continue
            if since is not None and order.paid_at < since:
                continue
            items = self.data.order_items.get(order.pk, [])
            if any(getattr(item, wanted_column) in wanted for item in items):
                orders += 1
        return self.compare(orders, op, value)

    def interacted(self, pk: int, op: str, value: Any, params: Mapping[str, Any]) -> bool:
        within_days = params.get("within_days")
        since = None if within_days is None else self.as_of - timedelta(days=within_days)
        number = sum(
            1
            for x in self.data.interactions.get(pk, [])
            if x.kind == params["kind"] and (since is None or x.occurred_at >= since)
        )
        return self.compare(number, op, value)

    def segment(self, pk: int, op: str, value: Any, params: Mapping[str, Any]) -> bool:
        def member(segment_id: int) -> bool:
            segment = self.data.segments[segment_id]
            if segment.kind == "dynamic":
                return self.matches(segment.rule, pk)
            return pk in self.data.static_members.get(segment_id, set())

        inside = any(member(segment_id) for segment_id in value)
        return inside if op == "in" else not inside
