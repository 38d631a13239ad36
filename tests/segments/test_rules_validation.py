"""Rule checking: every kind of wrong rule is refused with the code `invalid_rule`, the path of
the wrong node in the tree and what is wrong there; right rules pass; the API answers 400."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.utils import translation

from core.api.errors import exception_handler
from core.errors import ValidationFailed
from segments.models import Segment
from segments.rules import ERROR_INVALID_RULE, InvalidRule, rule_check, rule_compile
from tests.factories import GroupFactory, SegmentFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db

AS_OF = datetime(2026, 3, 15, 2, 30, tzinfo=UTC)
DATE_FORMS = 'expected a date (YYYY-MM-DD), an ISO datetime with a UTC offset or {"days_ago": N}'


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """Messages are asserted in English, whatever translations arrive later."""
    with translation.override("en"):
        yield


def leaf(field: str, op: str, value: Any, **params: Any) -> dict[str, Any]:
    node = {"field": field, "op": op, "value": value}
    if params:
        node["params"] = params
    return node


def problems(rule: object, *, segment_id: int | None = None) -> list[tuple[str, str]]:
    """The (path, message) pairs the rule is refused with."""
    with pytest.raises(InvalidRule) as refused:
        rule_check(rule, segment_id=segment_id)
    assert refused.value.code == ERROR_INVALID_RULE == "invalid_rule"
    return [(p["path"], p["message"]) for p in refused.value.detail["rule"]]


def test_the_error_is_a_validation_failure_with_path_and_message() -> None:
    rule = {"all": [leaf("member_level", "gte", 1), {"any": [leaf("r_score", "eq", "high")]}]}
    with pytest.raises(InvalidRule) as refused:
        rule_check(rule)
    error = refused.value
    assert isinstance(error, ValidationFailed)
    assert error.status_code == 400
    assert error.detail == {
        "rule": [{"path": "$.all[1].any[0].value", "message": "expected a number"}]
    }
    assert error.message == "Invalid rule at $.all[1].any[0].value: expected a number"
    response = exception_handler(error, {})
    assert response is not None
    assert response.status_code == 400
    assert response.data == {
        "code": "invalid_rule",
        "detail": "Invalid rule at $.all[1].any[0].value: expected a number",
        "errors": {"rule": [{"path": "$.all[1].any[0].value", "message": "expected a number"}]},
    }


def test_every_wrong_leaf_is_reported_in_tree_order() -> None:
    rule = {
        "all": [
            leaf("member_level", "gte", "x"),
            leaf("colour", "eq", "red"),
            {"not": leaf("gender", "eq", "robot")},
            leaf("province", "eq", "浙江"),
        ]
    }
    assert problems(rule) == [
        ("$.all[0].value", "expected a number"),
        ("$.all[1].field", "unknown field colour"),
        ("$.all[2].not.value", "expected one of: unknown, male, female"),
    ]


def test_valid_rules_pass() -> None:
    tag = TagFactory()
    group = GroupFactory()
    rule_check(
        {
            "all": [
                leaf("tag", "has_any", [tag.pk, {"group": tag.group.name, "name": tag.name}]),
                leaf("tag_group", "has", tag.group.name),
                leaf("group", "has", group.pk),
                leaf("group_joined", "within_last_days", 7, group=group.pk),
                leaf("group_joined", "within_last_days", 7),
                leaf("consent.phone_call", "is_null", True),
                leaf("first_seen_at", "between", ["2026-01-01", {"days_ago": 0}]),
                leaf("last_order_at", "after", "2026-01-01T08:00:00+08:00"),
                leaf("spend", "between", [0, 99.5]),
                leaf("purchased", "gte", 1, category=["面膜"]),
                leaf("interacted", "lt", 3, kind="coupon_claim", within_days=30),
                {"not": {"any": [leaf("owner", "contains", "ali")]}},
            ]
        }
    )


# --- Shape of the tree ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ([], [("$", "expected an object")]),
        ({"all": []}, [("$.all", "expected a non-empty list")]),
        ({"any": {}}, [("$.any", "expected a non-empty list")]),
        ({"all": [1]}, [("$.all[0]", "expected an object")]),
        ({"not": [leaf("member_level", "eq", 1)]}, [("$.not", "expected an object")]),
        (
            {"all": [leaf("member_level", "eq", 1)], "any": [leaf("member_level", "eq", 1)]},
            [("$", "expected only one of all, any and not")],
        ),
        ({"all": [leaf("member_level", "eq", 1)], "field": "x"}, [("$.field", "unknown key")]),
        (
            {"not": {"any": [{"field": "city", "op": "eq"}]}},
            [("$.not.any[0].value", "this key is required")],
        ),
        ({}, [("$.field", "this key is required")]),
        ({"field": "city", "value": "x"}, [("$.op", "this key is required")]),
        ({**leaf("city", "eq", "x"), "comment": "vip"}, [("$.comment", "unknown key")]),
        ({"field": 7, "op": "eq", "value": 1}, [("$.field", "expected a string")]),
        ({"field": "city", "op": None, "value": 1}, [("$.op", "expected a string")]),
    ],
)
def test_wrong_shapes(rule: object, expected: list[tuple[str, str]]) -> None:
    assert problems(rule) == expected


def test_depth_is_limited_to_twenty_levels() -> None:
    rule: dict[str, Any] = leaf("member_level", "eq", 1)
    for _level in range(19):
        rule = {"not": rule}
    rule_check(rule)  # 20 levels
    assert problems({"all": [rule]}) == [
        ("$.all[0]" + ".not" * 19, "the rule is nested deeper than 20 levels")
    ]


# --- Fields, operators, values -------------------------------------------------------------


def test_unknown_field_and_operators() -> None:
    assert problems(leaf("consent.fax", "eq", "opted_in")) == [
        ("$.field", "unknown field consent.fax")
    ]
    assert problems(leaf("city", "like", "x")) == [("$.op", "unknown operator like")]
    assert problems(leaf("r_score", "contains", "5")) == [
        (
            "$.op",
            "operator contains does not apply to field r_score; it takes between, eq, gt, "
            "gte, in, is_null, lt, lte, neq, not_in",
        )
    ]
    assert problems(leaf("tag_group", "has_all", ["x"])) == [
        ("$.op", "operator has_all does not apply to field tag_group; it takes has, has_none")
    ]
    assert problems(leaf("purchased", "is_null", True, sku=["A"])) == [
        (
            "$.op",
            "operator is_null does not apply to field purchased; it takes between, eq, gt, "
            "gte, lt, lte, neq",
        )
    ]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (leaf("member_level", "eq", "3"), ("$.value", "expected a number")),
        (leaf("member_level", "eq", True), ("$.value", "expected a number")),
        (leaf("member_level", "eq", 2.5), ("$.value", "expected a whole number")),
        (leaf("r_score", "gte", 6), ("$.value", "expected a number from 1 to 5")),
        (leaf("birthday_month", "eq", 0), ("$.value", "expected a number from 1 to 12")),
        (leaf("order_count", "gte", -1), ("$.value", "expected a number of at least 0")),
        (leaf("spend", "in", []), ("$.value", "expected a non-empty list")),
        (leaf("spend", "in", [1, "2"]), ("$.value[1]", "expected a number")),
        (leaf("spend", "between", [1]), ("$.value", "expected [low, high]")),
        (leaf("spend", "between", [5, 1]), ("$.value", "the low bound exceeds the high bound")),
        (leaf("spend", "between", [1, None]), ("$.value[1]", "expected a number")),
        (leaf("spend", "is_null", "yes"), ("$.value", "expected true or false")),
        (leaf("city", "eq", 3), ("$.value", "expected a non-empty string")),
        (leaf("city", "contains", ""), ("$.value", "expected a non-empty string")),
        (leaf("city", "not_in", ["a", None]), ("$.value[1]", "expected a non-empty string")),
        (
            leaf("lifecycle_state", "in", ["active", "asleep"]),
            (
                "$.value[1]",
                "expected one of: prospect, new, active, sleeping, churned, reactivated",
            ),
        ),
        (
            leaf("consent.wecom", "eq", "yes"),
            ("$.value", "expected one of: opted_in, opted_out"),
        ),
        (
            leaf("first_seen_at", "within_last_days", 0),
            ("$.value", "expected a whole number of at least 1"),
        ),
        (
            leaf("group_joined", "within_last_days", "7"),
            ("$.value", "expected a whole number of at least 1"),
        ),
    ],
)
def test_wrong_values(rule: dict[str, Any], expected: tuple[str, str]) -> None:
    assert problems(rule) == [expected]


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("2026-02-30", "$.value"),
        ("01/03/2026", "$.value"),
        ("2026-03-01T08:00:00", "$.value"),  # no UTC offset
        (20260301, "$.value"),
        ({"days": 3}, "$.value.days"),
        ({"days_ago": -1}, "$.value.days_ago"),
    ],
)
def test_bad_dates(value: object, path: str) -> None:
    found = problems(leaf("first_seen_at", "before", value))
    if path == "$.value.days":
        assert found == [(path, "unknown key")]
    elif path == "$.value.days_ago":
        assert found == [(path, "expected a whole number of at least 0")]
    else:
        assert found == [(path, DATE_FORMS)]


def test_bad_date_inside_between() -> None:
    assert problems(leaf("last_order_at", "between", ["2026-01-01", "soon"])) == [
        ("$.value[1]", DATE_FORMS)
    ]


# --- Params --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            {**leaf("city", "eq", "x"), "params": {"within_days": 3}},
            ("$.params", "this field takes no params"),
        ),
        (leaf("purchased", "gte", 1), ("$.params", "this field needs params: sku or category")),
        (
            leaf("purchased", "gte", 1, within_days=30),
            ("$.params", "give exactly one of sku and category"),
        ),
        (
            leaf("purchased", "gte", 1, sku=["A"], category=["B"]),
            ("$.params", "give exactly one of sku and category"),
        ),
        (leaf("purchased", "gte", 1, sku=[]), ("$.params.sku", "expected a non-empty list")),
        (leaf("purchased", "gte", 1, sku="A"), ("$.params.sku", "expected a non-empty list")),
        (
            leaf("purchased", "gte", 1, sku=["A"], within_days=0),
            ("$.params.within_days", "expected a whole number of at least 1"),
        ),
        (leaf("purchased", "gte", 1, sku=["A"], store="x"), ("$.params.store", "unknown key")),
        (leaf("purchased", "gte", "1", sku=["A"]), ("$.value", "expected a number")),
        (leaf("interacted", "gte", 1), ("$.params", "this field needs params: kind")),
        (leaf("interacted", "gte", 1, within_days=3), ("$.params.kind", "this key is required")),
        (
            leaf("interacted", "gte", 1, kind="like"),
            (
                "$.params.kind",
                "expected one of: message_reply, link_click, content_view, miniprogram_visit, "
                "group_message, live_stream_view, coupon_claim",
            ),
        ),
        (
            {**leaf("purchased", "gte", 1), "params": ["sku"]},
            ("$.params", "expected an object"),
        ),
        (
            leaf("group_joined", "within_last_days", 7, group="vip"),
            ("$.params.group", "expected an id (a positive whole number)"),
        ),
    ],
)
def test_wrong_params(rule: dict[str, Any], expected: tuple[str, str]) -> None:
    assert problems(rule) == [expected]


# --- Rows the rule names -------------------------------------------------------------------


def test_unknown_tags_tag_groups_and_groups() -> None:
    tag = TagFactory(group=TagGroupFactory(name="兴趣"), name="美妆")
    group = GroupFactory()
    rule = {
        "any": [
            leaf("tag", "has_any", [tag.pk, tag.pk + 1000, {"group": "兴趣", "name": "母婴"}]),
            leaf("tag", "has", {"group": "会员", "name": "美妆"}),
            leaf("tag_group", "has", "会员"),
            leaf("tag_group", "has_none", tag.group_id + 1000),
            leaf("group", "has_all", [group.pk, group.pk + 1000]),
            leaf("group_joined", "within_last_days", 3, group=group.pk + 2000),
        ]
    }
    assert problems(rule) == [
        ("$.any[0].value[1]", f"unknown tag {tag.pk + 1000}"),
        ("$.any[0].value[2]", "unknown tag 兴趣/母婴"),
        ("$.any[1].value", "unknown tag 会员/美妆"),
        ("$.any[2].value", "unknown tag group 会员"),
        ("$.any[3].value", f"unknown tag group {tag.group_id + 1000}"),
        ("$.any[4].value[1]", f"unknown group {group.pk + 1000}"),
        ("$.any[5].params.group", f"unknown group {group.pk + 2000}"),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("美妆", 'expected a tag id or {"group": ..., "name": ...}'),
        ({"name": "美妆"}, None),
        (0, "expected an id (a positive whole number)"),
    ],
)
def test_malformed_tag_references(value: object, expected: str | None) -> None:
    if expected is None:
        assert problems(leaf("tag", "has", value)) == [("$.value.group", "this key is required")]
    else:
        assert problems(leaf("tag", "has", value)) == [("$.value", expected)]


def test_unknown_segment() -> None:
    static = SegmentFactory(name="名单", kind="static")
    assert problems(leaf("segment", "in", [static.pk, static.pk + 1000])) == [
        ("$.value[1]", f"unknown segment {static.pk + 1000}")
    ]
    assert problems(leaf("segment", "in", [])) == [("$.value", "expected a non-empty list")]
    assert problems(leaf("segment", "in", static.pk)) == [("$.value", "expected a non-empty list")]


# --- Segment references: cycles and broken stored rules ------------------------------------
# The segments are written straight to the table (SegmentFactory), as a concurrent edit could
# leave them.


def test_a_rule_may_not_reach_its_own_segment() -> None:
    edited = SegmentFactory(name="A", rule=leaf("member_level", "eq", 1))
    assert problems(leaf("segment", "in", [edited.pk]), segment_id=edited.pk) == [
        ("$.value[0]", f"segment references form a cycle: {edited.pk} → {edited.pk}")
    ]
    middle = SegmentFactory(name="B", rule=leaf("segment", "not_in", [edited.pk]))
    rule = {"all": [leaf("member_level", "eq", 1), leaf("segment", "in", [middle.pk])]}
    assert problems(rule, segment_id=edited.pk) == [
        (
            "$.all[1].value[0]",
            f"segment references form a cycle: {edited.pk} → {middle.pk} → {edited.pk}",
        )
    ]
    rule_check(rule, segment_id=None)  # as another segment's rule it is fine
    rule_check(rule, segment_id=edited.pk + 1000)


def test_a_cycle_among_referenced_segments_is_refused() -> None:
    first = SegmentFactory(name="A", rule=leaf("member_level", "eq", 1))
    second = SegmentFactory(name="B", rule=leaf("segment", "in", [first.pk]))
    Segment.objects.filter(pk=first.pk).update(rule=leaf("segment", "in", [second.pk]))
    chain = f"{first.pk} → {second.pk} → {first.pk}"
    assert problems({"not": leaf("segment", "in", [first.pk])}) == [
        ("$.not.value[0]", f"segment references form a cycle: {chain}")
    ]
    with pytest.raises(InvalidRule):
        rule_compile(leaf("segment", "not_in", [second.pk]), as_of=AS_OF)


def test_a_broken_stored_rule_is_reported_at_the_reference() -> None:
    tag = TagFactory()
    inner = SegmentFactory(name="inner", rule=leaf("tag", "has", tag.pk))
    outer = SegmentFactory(name="outer", rule={"any": [leaf("segment", "in", [inner.pk])]})
    rule = {"all": [leaf("segment", "in", [outer.pk])]}
    rule_check(rule)
    tag_id = tag.pk
    tag.delete()
    assert problems(rule) == [
        (
            "$.all[0].value[0]",
            f"segment {inner.pk} has an invalid rule at $.value: unknown tag {tag_id}",
        )
    ]
    Segment.objects.filter(pk=inner.pk).update(rule={"all": []})
    assert problems(rule) == [
        (
            "$.all[0].value[0]",
            f"segment {inner.pk} has an invalid rule at $.all: expected a non-empty list",
        )
    ]
    Segment.objects.filter(pk=outer.pk).update(rule=leaf("segment", "in", [inner.pk + 1000]))
    assert problems(rule) == [
        (
            "$.all[0].value[0]",
            f"segment {outer.pk} has an invalid rule at $.value[0]: "
            f"unknown segment {inner.pk + 1000}",
        )
    ]


def test_compiling_checks_first() -> None:
    with pytest.raises(InvalidRule) as refused:
        rule_compile(leaf("tag", "has", 999_999), as_of=AS_OF)
    assert refused.value.detail == {"rule": [{"path": "$.value", "message": "unknown tag 999999"}]}


def test_checking_reads_each_kind_of_row_in_one_query(django_assert_num_queries: Any) -> None:
    tags = [TagFactory(group=TagGroupFactory(name=f"组{n}"), name=f"标签{n}") for n in range(3)]
    groups = [GroupFactory() for _ in range(3)]
    static = SegmentFactory(name="名单", kind="static")
    dynamic = SegmentFactory(
        name="规则",
        rule={"all": [leaf("tag", "has", tags[0].pk), leaf("segment", "in", [static.pk])]},
    )
    rule = {
        "any": [
            *(leaf("tag", "has", tag.pk) for tag in tags),
            *(leaf("tag", "has", {"group": t.group.name, "name": t.name}) for t in tags),
            *(leaf("tag_group", "has_none", t.group.name) for t in tags),
            *(leaf("group", "has", group.pk) for group in groups),
            leaf("group_joined", "within_last_days", 7, group=groups[0].pk),
            leaf("segment", "in", [dynamic.pk]),
        ]
    }
    # Segments level by level (the dynamic one, then the static one it names), then tags,
    # tag groups and groups.
    with django_assert_num_queries(5):
        rule_check(rule)
    with django_assert_num_queries(0):
        rule_check({"not": leaf("member_level", "gt", 1)})
