"""The built-in fields of the rule language, registered through the same `register_field` as
any other (the predicted fields, say): profile, tags, groups (社群), consent, metrics, behaviour
and segments.

Set conditions are written as `c.id IN (SELECT customer_id ...)` over NOT NULL columns, which
PostgreSQL runs as a semi-join or a hashed subplan (one pass over the subquery, a hash probe per
customer), never as a subquery per customer. Each subquery names the index it relies on."""

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import (
    ConsentChannel,
    ConsentStatus,
    Gender,
    InteractionKind,
    SourceChannel,
)
from segments.models import LifecycleState, RfmTier, SegmentKind
from segments.rules.errors import RuleError
from segments.rules.fields import (
    CompileContext,
    FieldCategory,
    KeyedColumn,
    Leaf,
    ParamKind,
    ParamSpec,
    RowColumn,
    register_field,
)
from segments.rules.sql import Sql, is_member, join, negate, param
from segments.rules.values import (
    COUNT_OPS,
    ChoiceType,
    DateTimeType,
    GroupsType,
    NumberType,
    SegmentsType,
    StringType,
    TagGroupType,
    TagsType,
    count_comparison_holds,
    parse_day_count,
    parse_group_ref,
    parse_list,
    parse_object,
    parse_string,
)

STRING = StringType()
NUMBER = NumberType()
INTEGER = NumberType(is_integer=True)
SCORE = NumberType(is_integer=True, minimum=1, maximum=5)
COUNT = NumberType(is_integer=True, minimum=0)
DATETIME = DateTimeType()


def _nullable(expression: str) -> RowColumn:
    return RowColumn(Sql(expression), is_nullable=True)


# --- Profile (alias c = crm_customer) ------------------------------------------------------
# A blank profile string means "not known": it counts as missing (NULL) for every operator.

PROFILE = FieldCategory.PROFILE
register_field(
    name="gender",
    label=gettext_lazy("gender"),
    category=PROFILE,
    value_type=ChoiceType.of(Gender),
    column=RowColumn(Sql("c.gender")),
)
register_field(
    name="province",
    label=gettext_lazy("province"),
    category=PROFILE,
    value_type=STRING,
    column=_nullable("NULLIF(c.province, '')"),
)
register_field(
    name="city",
    label=gettext_lazy("city"),
    category=PROFILE,
    value_type=STRING,
    column=_nullable("NULLIF(c.city, '')"),
)
register_field(
    name="source_channel",
    label=gettext_lazy("source channel"),
    category=PROFILE,
    value_type=ChoiceType.of(SourceChannel),
    column=_nullable("NULLIF(c.source_channel, '')"),
)
register_field(
    name="member_level",
    label=gettext_lazy("member level"),
    category=PROFILE,
    value_type=INTEGER,
    column=RowColumn(Sql("c.member_level")),
)
register_field(
    name="owner",
    label=gettext_lazy("owner"),
    category=PROFILE,
    value_type=STRING,
    picks="staff",
    # crm_staffmember is small; its primary key answers the membership test.
    column=KeyedColumn(
        table="crm_staffmember",
        column="wecom_userid",
        key="c.owner_id",
        key_column="id",
        is_key_nullable=True,
    ),
)
register_field(
    name="contact_way",
    label=gettext_lazy("channel QR code of first add"),
    category=PROFILE,
    # The code of the customer's first touch (crm.CustomerAcquisition), by id; the builder
    # picks it by name. Customers who came some other way have none (is_null).
    value_type=NumberType(is_integer=True, minimum=1, maximum=2**63 - 1),
    ops=("eq", "neq", "in", "not_in", "is_null"),
    picks="contact_way",
    # One row per customer (its primary key); acquisition_by_way serves the membership test.
    column=KeyedColumn(table="crm_customeracquisition", column="contact_way_id"),
)
register_field(
    name="first_seen_at",
    label=gettext_lazy("first seen"),
    category=PROFILE,
    value_type=DATETIME,
    column=RowColumn(Sql("c.first_seen_at")),
)
register_field(
    name="birthday_month",
    label=gettext_lazy("birthday month"),
    category=PROFILE,
    value_type=NumberType(is_integer=True, minimum=1, maximum=12),
    column=_nullable("CAST(EXTRACT(MONTH FROM c.birthday) AS integer)"),
)


# --- Tags ----------------------------------------------------------------------------------


def _compile_tag(leaf: Leaf, ctx: CompileContext) -> Sql:
    refs = [leaf.value] if leaf.op == "has" else leaf.value
    tag_ids = sorted({ctx.tag_ids[ref] for ref in refs})
    # customer_tag_by_tag (tag, customer) answers this with an index-only scan.
    holders = Sql("SELECT customer_id FROM crm_customertag WHERE tag_id = ANY(")
    holders = holders + param(tag_ids) + "::bigint[])"
    if leaf.op == "has_all":
        # (customer, tag) is unique (customer_tag_unique): count(*) counts distinct tags.
        holders = holders + " GROUP BY customer_id HAVING count(*) = " + param(len(tag_ids))
    membership = is_member("c.id", holders)
    return negate(membership) if leaf.op == "has_none" else membership


def _compile_tag_group(leaf: Leaf, ctx: CompileContext) -> Sql:
    # The group's tags come by the foreign-key index on crm_tag.group_id, their holders by
    # customer_tag_by_tag (tag, customer).
    group_tags = Sql("SELECT t.id FROM crm_tag t WHERE t.group_id = ")
    group_tags = group_tags + param(ctx.tag_group_ids[leaf.value])
    holders = Sql("SELECT ct.customer_id FROM crm_customertag ct WHERE ct.tag_id IN ")
    membership = is_member("c.id", holders + "(" + group_tags + ")")
    return negate(membership) if leaf.op == "has_none" else membership


register_field(
    name="tag",
    label=gettext_lazy("tag"),
    category=FieldCategory.TAGS,
    value_type=TagsType(),
    compiler=_compile_tag,
)
register_field(
    name="tag_group",
    label=gettext_lazy("tag group"),
    category=FieldCategory.TAGS,
    value_type=TagGroupType(),
    compiler=_compile_tag_group,
)


# --- Groups (社群) -------------------------------------------------------------------------


def _compile_group(leaf: Leaf, ctx: CompileContext) -> Sql:
    refs = [leaf.value] if leaf.op == "has" else leaf.value
    group_ids = sorted({ref.group_id for ref in refs})
    # Current stays only: the partial unique index group_membership_one_open (group, customer)
    # WHERE left_at IS NULL holds exactly these rows.
    members = Sql("SELECT customer_id FROM crm_groupmembership WHERE left_at IS NULL")
    members = members + " AND group_id = ANY(" + param(group_ids) + "::bigint[])"
    if leaf.op == "has_all":
        # One open stay per (group, customer) at most: count(*) counts distinct groups.
        members = members + " GROUP BY customer_id HAVING count(*) = " + param(len(group_ids))
    membership = is_member("c.id", members)
    return negate(membership) if leaf.op == "has_none" else membership


def _parse_group_joined_params(raw: object, path: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    params = parse_object(raw, path, allowed=frozenset({"group"}))
    if "group" not in params:
        return {}
    return {"group": parse_group_ref(params["group"], f"{path}.group")}


def _compile_group_joined(leaf: Leaf, ctx: CompileContext) -> Sql:
    # Stays past and present. With a group, the foreign-key index on group_id narrows the
    # rows; without one, no index serves joined_at and crm_groupmembership is read through.
    joined = DATETIME.compare(leaf.op, leaf.value, Sql("g.joined_at"), as_of=ctx.as_of)
    stays = Sql("SELECT g.customer_id FROM crm_groupmembership g WHERE ") + joined
    if "group" in leaf.params:
        stays = stays + " AND g.group_id = " + param(leaf.params["group"].group_id)
    return is_member("c.id", stays)


register_field(
    name="group",
    label=gettext_lazy("group chats now in"),
    category=FieldCategory.GROUPS,
    value_type=GroupsType(),
    compiler=_compile_group,
)
register_field(
    name="group_joined",
    label=gettext_lazy("joined a group chat"),
    category=FieldCategory.GROUPS,
    value_type=DATETIME,
    ops=["within_last_days"],
    compiler=_compile_group_joined,
    params_parser=_parse_group_joined_params,
    params=[
        ParamSpec(key="group", label=gettext_lazy("only this group chat"), kind=ParamKind.GROUP)
    ],
)


# --- Consent: one field per channel; no row means no decision (NULL) -----------------------

for channel, channel_label in ConsentChannel.choices:
    register_field(
        name=f"consent.{channel}",
        label=format_lazy("{} · {}", gettext_lazy("consent"), channel_label),
        category=FieldCategory.CONSENT,
        value_type=ChoiceType.of(ConsentStatus),
        # One row per (customer, channel) (consent_unique_channel); opted-out tests can use
        # the partial index consent_opted_out (channel, customer).
        column=KeyedColumn(
            table="crm_consent", column="status", row_filter="k.channel = " + param(channel)
        ),
    )


# --- Metrics (alias m = segments_customermetrics, LEFT JOINed: no row yet means NULL) -------

METRICS = FieldCategory.METRICS
register_field(
    name="r_score",
    label=gettext_lazy("recency score (R)"),
    category=METRICS,
    value_type=SCORE,
    column=_nullable("m.r_score"),
)
register_field(
    name="f_score",
    label=gettext_lazy("frequency score (F)"),
    category=METRICS,
    value_type=SCORE,
    column=_nullable("m.f_score"),
)
register_field(
    name="m_score",
    label=gettext_lazy("monetary score (M)"),
    category=METRICS,
    value_type=SCORE,
    column=_nullable("m.m_score"),
)
register_field(
    name="rfm_tier",
    label=gettext_lazy("RFM tier"),
    category=METRICS,
    value_type=ChoiceType.of(RfmTier),
    column=_nullable("m.rfm_tier"),
)
register_field(
    name="lifecycle_state",
    label=gettext_lazy("lifecycle state"),
    category=METRICS,
    value_type=ChoiceType.of(LifecycleState),
    # A customer not computed yet is a prospect.
    column=RowColumn("COALESCE(m.lifecycle_state, " + param(LifecycleState.PROSPECT.value) + ")"),
)
register_field(
    name="lifecycle_since",
    label=gettext_lazy("in this lifecycle state since"),
    category=METRICS,
    value_type=DATETIME,
    column=_nullable("m.lifecycle_since"),
)
register_field(
    name="first_order_at",
    label=gettext_lazy("first order"),
    category=METRICS,
    value_type=DATETIME,
    column=_nullable("m.first_paid_at"),
)
register_field(
    name="last_order_at",
    label=gettext_lazy("last order"),
    category=METRICS,
    value_type=DATETIME,
    column=_nullable("m.last_paid_at"),
)
# Counts and sums of a customer without a metrics row are 0, as a computation would find.
register_field(
    name="order_count",
    label=gettext_lazy("paid orders (lifetime)"),
    category=METRICS,
    value_type=COUNT,
    column=RowColumn(Sql("COALESCE(m.lifetime_orders, 0)")),
)
register_field(
    name="spend",
    label=gettext_lazy("net spend (lifetime)"),
    category=METRICS,
    value_type=NUMBER,
    column=RowColumn(Sql("COALESCE(m.lifetime_net_spend, 0)")),
)
register_field(
    name="orders_in_window",
    label=gettext_lazy("paid orders in the RFM window"),
    category=METRICS,
    value_type=COUNT,
    column=RowColumn(Sql("COALESCE(m.orders_in_window, 0)")),
)
register_field(
    name="spend_in_window",
    label=gettext_lazy("net spend in the RFM window"),
    category=METRICS,
    value_type=NUMBER,
    column=RowColumn(Sql("COALESCE(m.net_spend_in_window, 0)")),
)
register_field(
    name="avg_order_value",
    label=gettext_lazy("average order value"),
    category=METRICS,
    value_type=NUMBER,
    column=_nullable("m.avg_order_value"),
)


def _days_since_last_order(ctx: CompileContext) -> Sql:
    # Calendar days in the business time zone: an order at 23:30 yesterday is 1 day old.
    last_order_day = "(m.last_paid_at AT TIME ZONE " + param(settings.TIME_ZONE) + ")::date"
    return "(" + param(ctx.business_date) + "::date - " + last_order_day + ")"


register_field(
    name="days_since_last_order",
    label=gettext_lazy("days since the last order"),
    category=METRICS,
    value_type=INTEGER,
    column=RowColumn(_days_since_last_order, is_nullable=True),
)


# --- Behaviour: counts of orders and interactions in a window ------------------------------


def _count_condition(leaf: Leaf, per_customer: Sql, count: str, ctx: CompileContext) -> Sql:
    """The leaf's comparison on a count. `per_customer` selects customer_id from the counted
    rows, grouped by customer, so a customer without any is absent from it: when the comparison
    holds for 0, such customers match by excluding those whose count fails it."""
    comparison = COUNT.compare(leaf.op, leaf.value, Sql(count), as_of=ctx.as_of)
    if count_comparison_holds(leaf.op, leaf.value, 0):
        return negate(is_member("c.id", per_customer + " HAVING NOT (" + comparison + ")"))
    if _holds_for_any_row(leaf.op, leaf.value):
        # "At least once": every customer in the grouping has a count of 1 or more, so the
        # grouping alone (a hash of the customers, no count of distinct orders to sort for)
        # answers it.
        return is_member("c.id", per_customer)
    return is_member("c.id", per_customer + " HAVING " + comparison)


def _holds_for_any_row(op: str, value: Any) -> bool:
    """Whether a count comparison holds for every count of 1 or more."""
    return (op == "gte" and value <= 1) or (op == "gt" and value < 1) or (op, value) == ("neq", 0)


def _parse_within_days(params: Mapping[str, object], path: str) -> int | None:
    if "within_days" not in params:
        return None
    return parse_day_count(params["within_days"], f"{path}.within_days", minimum=1)


def _parse_purchase_params(raw: object, path: str) -> Mapping[str, Any]:
    if raw is None:
        raise RuleError(path, _("this field needs params: sku or category"))
    params = parse_object(raw, path, allowed=frozenset({"sku", "category", "within_days"}))
    item_keys = [key for key in ("sku", "category") if key in params]
    if len(item_keys) != 1:
        raise RuleError(path, _("give exactly one of sku and category"))
    key = item_keys[0]
    return {
        key: parse_list(params[key], f"{path}.{key}", parse_string),
        "within_days": _parse_within_days(params, path),
    }


def _compile_purchased(leaf: Leaf, ctx: CompileContext) -> Sql:
    key = "sku" if "sku" in leaf.params else "category"
    # order_item_purchases_by_sku / _cat answer this from one index range, index-only: the
    # items of these SKUs or categories in purchased orders, newest last, with their customer
    # and order.
    items = Sql(f"SELECT i.customer_id FROM crm_orderitem i WHERE i.{key} = ANY(")  # noqa: S608
    # Items of erased customers' orders have no customer (is_member needs no NULL).
    items = items + param(list(leaf.params[key])) + "::text[]) AND i.purchased_at IS NOT NULL"
    items = items + " AND i.customer_id IS NOT NULL"
    within_days = leaf.params["within_days"]
    if within_days is not None:
        purchased_at = Sql("i.purchased_at")
        in_window = DATETIME.compare("within_last_days", within_days, purchased_at, as_of=ctx.as_of)
        items = items + " AND " + in_window
    # An order with several matching items counts once.
    return _count_condition(
        leaf, items + " GROUP BY i.customer_id", "count(DISTINCT i.order_id)", ctx
    )


def _parse_interaction_params(raw: object, path: str) -> Mapping[str, Any]:
    if raw is None:
        raise RuleError(path, _("this field needs params: kind"))
    params = parse_object(
        raw, path, allowed=frozenset({"kind", "within_days"}), required=frozenset({"kind"})
    )
    kind = params["kind"]
    if kind not in InteractionKind.values:
        raise RuleError(
            f"{path}.kind",
            _("expected one of: %(choices)s") % {"choices": ", ".join(InteractionKind.values)},
        )
    return {"kind": kind, "within_days": _parse_within_days(params, path)}


def _compile_interacted(leaf: Leaf, ctx: CompileContext) -> Sql:
    # interaction_by_customer (customer, kind, occurred_at) covers the subquery: an index-only
    # scan in customer order feeds the grouping.
    interactions = Sql("SELECT x.customer_id FROM crm_interaction x WHERE x.kind = ")
    interactions = interactions + param(leaf.params["kind"])
    within_days = leaf.params["within_days"]
    if within_days is not None:
        occurred_at = Sql("x.occurred_at")
        in_window = DATETIME.compare("within_last_days", within_days, occurred_at, as_of=ctx.as_of)
        interactions = interactions + " AND " + in_window
    return _count_condition(leaf, interactions + " GROUP BY x.customer_id", "count(*)", ctx)


WITHIN_DAYS = ParamSpec(
    key="within_days", label=gettext_lazy("within the last days"), kind=ParamKind.DAYS
)
register_field(
    name="purchased",
    label=gettext_lazy("orders with the products"),
    category=FieldCategory.BEHAVIOUR,
    value_type=COUNT,
    ops=COUNT_OPS,
    compiler=_compile_purchased,
    params_parser=_parse_purchase_params,
    params=[
        ParamSpec(
            key="category",
            label=gettext_lazy("product categories"),
            kind=ParamKind.TEXTS,
            alternative_of="item",
        ),
        ParamSpec(
            key="sku", label=gettext_lazy("SKUs"), kind=ParamKind.TEXTS, alternative_of="item"
        ),
        WITHIN_DAYS,
    ],
)
register_field(
    name="interacted",
    label=gettext_lazy("number of interactions"),
    category=FieldCategory.BEHAVIOUR,
    value_type=COUNT,
    ops=COUNT_OPS,
    compiler=_compile_interacted,
    params_parser=_parse_interaction_params,
    params=[
        ParamSpec(
            key="kind",
            label=gettext_lazy("kind of interaction"),
            kind=ParamKind.CHOICE,
            is_required=True,
            choices=tuple(InteractionKind.choices),
        ),
        WITHIN_DAYS,
    ],
)


# --- Segments ------------------------------------------------------------------------------


def _compile_segment(leaf: Leaf, ctx: CompileContext) -> Sql:
    segment_ids = list(dict.fromkeys(ref.segment_id for ref in leaf.value))
    # A dynamic segment is its rule, compiled in place, so a rule never reads another
    # segment's membership as of its last refresh.
    parts = [
        ctx.segment_condition(segment_id)
        for segment_id in segment_ids
        if ctx.segment_kinds[segment_id] == SegmentKind.DYNAMIC
    ]
    static_ids = [i for i in segment_ids if ctx.segment_kinds[i] != SegmentKind.DYNAMIC]
    if static_ids:
        # segment_membership_unique (segment, customer) answers this index-only.
        members = Sql("SELECT customer_id FROM segments_segmentmembership WHERE segment_id = ANY(")
        parts.append(is_member("c.id", members + param(static_ids) + "::bigint[])"))
    in_any = "(" + join(" OR ", parts) + ")"
    return negate(in_any) if leaf.op == "not_in" else in_any


register_field(
    name="segment",
    label=gettext_lazy("segment"),
    category=FieldCategory.SEGMENTS,
    value_type=SegmentsType(),
    compiler=_compile_segment,
)
