"""The segment rule language: which customers a dynamic segment (人群) holds.

A rule is a JSON tree. It is checked by `rule_check` and compiled by `rule_compile` into ONE
SQL condition over every customer; nothing is filtered in Python.

Nodes
    {"all": [node, ...]}     every node matches (a non-empty list)
    {"any": [node, ...]}     at least one node matches (a non-empty list)
    {"not": node}            the node does not match
    {"field": F, "op": O, "value": V}                   a condition on one field
    {"field": F, "op": O, "value": V, "params": {...}}  ... of a field that takes params
Nodes nest up to 20 levels; a node holds no other keys.

Limits (counted on the rule as it is compiled: every dynamic segment it names is expanded in
place, and a reference to one counts one level above that segment's own rule)
    depth          at most 20 levels, segments included: a chain of segments each naming the
                   previous one counts a level per link
    conditions     at most 200, segments included; an `all` or `any` lists at most 200 nodes
    lists          at most 1000 values (`in`, `not_in`, `has_any`, ...), checked before any value
    strings        at most 255 characters, no NUL and no lone surrogate
    A segment that other segments name may not change so that one of them goes beyond a limit.

Operators by value type
    number     eq, neq, in, not_in, gt, gte, lt, lte, between, is_null
    string     eq, neq, in, not_in, contains, is_null
    choice     eq, neq, in, not_in, is_null (values must be among the field's choices)
    datetime   gt, gte, lt, lte, between, before, after, within_last_days, is_null
    count      eq, neq, gt, gte, lt, lte, between (fields `purchased`, `interacted`)

Values
    eq, neq, gt, gte, lt, lte   one value: a number, a non-empty string, a choice, a date
    in, not_in                  a non-empty list of values
    between                     [low, high], both ends included
    contains                    a string, found anywhere in the value, ignoring case; % and _
                                are plain characters
    is_null                     true (the value is missing) or false (it is present)
    within_last_days            N (whole days, at least 1): at or after as_of minus N days
    Dates: "2026-01-01" is that business day (settings.TIME_ZONE, Asia/Shanghai) as a whole;
    "2026-01-01T08:00:00+08:00" is an instant (a UTC offset is required); {"days_ago": N} is
    the instant N days before as_of. Against a day D: `before D` / `lt D` is before D's
    start; `after D` / `gt D` is from the start of the next day on; `gte D` from D's start;
    `lte D` up to D's end. Against an instant: strict for before/after/gt/lt, inclusive for
    gte/lte. `between [D1, D2]` covers both days whole.
    Strings compare exactly (eq, in); only `contains` ignores case.

Missing values and `not` (two-valued logic)
    Every condition is true or false for every customer, never unknown. A value is missing
    when there is nothing to compare: a blank profile string (province, city, source_channel),
    no birthday, no owner, no consent row on the channel, no metrics row yet (for the fields
    that are not defaulted below), no paid order (scores, dates of orders). Every comparison
    with a missing value is false, `neq` and `not_in` too; only `is_null` sees missing values.
    So `not` means exactly "the customer does not match": `{"not": {"field": "r_score",
    "op": "gte", "value": 4}}` holds for customers with a lower score AND for those without
    any.

Fields
  Profile
    gender             choice: unknown, male, female
    province, city     string (blank counts as missing)
    source_channel     choice: douyin, kuaishou, wechat_channels, xiaohongshu, bilibili,
                       miniprogram, offline_store, wecom, other (blank counts as missing)
    member_level       number (whole)
    owner              string: the owner's WeCom userid (跟进人)
    first_seen_at      datetime
    birthday_month     number 1-12
  Tags
    tag        has: one tag; has_any, has_all, has_none: a list of tags. A tag is its id or
               {"group": "<tag group name>", "name": "<tag name>"}.
    tag_group  has: holds any tag of the group; has_none: holds none. Value: the tag group's
               id or name.
  Groups (社群)
    group         has: one group id; has_any, has_all, has_none: a list of group ids. Only
                  current stays count (not left).
    group_joined  within_last_days N, optional params {"group": id}: a stay (current or
                  left since) in the group, or in any group, began within the last N days.
  Consent
    consent.wecom, consent.wechat, consent.sms, consent.email, consent.phone_call
               choice: opted_in, opted_out; no decision on the channel is missing
               (`{"field": "consent.sms", "op": "is_null", "value": true}`).
  Metrics (from the last recomputation; a customer may not have been computed yet)
    r_score, f_score, m_score   number 1-5; missing without a paid order in the RFM window
    rfm_tier           choice: important_value, important_develop, important_retain,
                       important_winback, general_value, general_develop, general_retain,
                       general_winback; missing when unscored
    lifecycle_state    choice: prospect, new, active, sleeping, churned, reactivated; a
                       customer not computed yet is a prospect
    lifecycle_since    datetime
    first_order_at, last_order_at   datetime of the first / last paid order
    order_count, spend              lifetime paid orders and net spend; 0 when not computed
    orders_in_window, spend_in_window   the same within the RFM window; 0 when not computed
    avg_order_value    number; missing without orders
    days_since_last_order   number: business date of as_of minus business date of the last
                       paid order (an order at 23:30 yesterday is 1 day old); missing if none
  Behaviour (count fields: the op compares a number of rows; `gte 1` is "at least once")
    purchased    params {"sku": [...]} or {"category": [...]} (exactly one, a non-empty list),
                 optional "within_days": N (all time without it): the number of distinct paid
                 orders (paid or partially refunded, with a paid time) paid within the last N
                 days holding at least one such item.
    interacted   params {"kind": <interaction kind>, "within_days": N (optional)}: the number
                 of interactions of that kind (message_reply, link_click, content_view,
                 miniprogram_visit, group_message, live_stream_view, coupon_claim).
    A comparison that holds for 0 (`lt 2`, `eq 0`, `lte 3`) includes the customers without
    any such order or interaction.
  Predictions (from the latest scoring of the predictive models; missing for a customer who
  never paid, and for a model not fitted yet)
    predicted_value     number: expected net spend over PREDICTIVE_CLV_HORIZON_MONTHS
    expected_purchases  number: expected paid orders over the same horizon
    p_alive             number 0-1: probability the customer is still "alive" (BG/NBD)
    churn_risk          number 0-1: probability of no paid order in the churn horizon
    cluster             number: the behaviour cluster (1..k) of the latest clustering
  Segments
    segment    in / not_in: a non-empty list of segment ids; in any (in) or none (not_in) of
               them. A dynamic segment stands for its current rule, compiled in place; a
               static one for its list of members. A rule may not reach its own segment
               again, directly or through other segments' rules.

Examples
    Women in Zhejiang who bought a mask twice in 90 days and may be messaged on WeCom:
    {"all": [
        {"field": "gender", "op": "eq", "value": "female"},
        {"field": "province", "op": "in", "value": ["浙江", "Zhejiang"]},
        {"field": "purchased", "op": "gte", "value": 2,
         "params": {"category": ["面膜"], "within_days": 90}},
        {"field": "consent.wecom", "op": "neq", "value": "opted_out"}]}
    Sleeping or churned high spenders not tagged "VIP" by name:
    {"all": [
        {"field": "lifecycle_state", "op": "in", "value": ["sleeping", "churned"]},
        {"field": "spend", "op": "gte", "value": 1000},
        {"not": {"field": "tag", "op": "has", "value": {"group": "会员", "name": "VIP"}}}]}
    New in a group this week, or seen this week, outside segment 12:
    {"all": [
        {"any": [{"field": "group_joined", "op": "within_last_days", "value": 7},
                 {"field": "first_seen_at", "op": "after", "value": {"days_ago": 7}}]},
        {"field": "segment", "op": "not_in", "value": [12]}]}

Errors
    A wrong rule raises InvalidRule (a core.errors.ValidationFailed, HTTP 400) with code
    "invalid_rule" and detail {"rule": [{"path": "$.all[2].any[0].value", "message":
    "expected a number"}, ...]}: one entry per wrong node, each naming where it is and what is
    wrong (unknown field, operator or key, an operator the field does not take, a wrong value,
    missing params, a bad date, a limit exceeded, an unknown tag, tag group, group or
    segment, a cycle of segments).

Compiling
    rule_compile(rule, as_of=...) -> CompiledRule(condition, params): SQL over FROM_CLAUSE
    (aliases c = crm_customer, m = segments_customermetrics LEFT JOINed), with `%s`
    placeholders; values only ever travel as parameters. rule_members_sql builds
    `SELECT c.id AS customer_id ...`; rule_preview_sql one scan answering one row: how many
    customers the rule matches, then how many each condition of a top-level all/any matches
    on its own. All of them check the rule first (reading the rows it names). Relative dates
    count from `as_of`. Sets (tags, groups, orders, ...) are tested as
    `c.id IN (SELECT customer_id ...)`, which PostgreSQL runs as hashed subplans only when
    work_mem is large enough: execute RULE_SESSION_SQL first, in the same transaction.

New fields are added with `register_field` (segments.rules.fields), never by editing the
compiler, as the predicted ones are (segments.predictive.fields)."""

from segments.rules.compiler import (
    FROM_CLAUSE,
    RULE_SESSION_SQL,
    CompiledRule,
    rule_check,
    rule_compile,
    rule_members_sql,
    rule_preview_sql,
    rule_referenced_segments,
)
from segments.rules.errors import ERROR_INVALID_RULE, InvalidRule, RuleError, RuleProblem
from segments.rules.fields import CompileContext, KeyedColumn, Leaf, RowColumn, register_field

__all__ = [
    "ERROR_INVALID_RULE",
    "FROM_CLAUSE",
    "RULE_SESSION_SQL",
    "CompileContext",
    "CompiledRule",
    "InvalidRule",
    "KeyedColumn",
    "Leaf",
    "RowColumn",
    "RuleError",
    "RuleProblem",
    "register_field",
    "rule_check",
    "rule_compile",
    "rule_members_sql",
    "rule_preview_sql",
    "rule_referenced_segments",
]
