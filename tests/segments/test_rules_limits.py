"""The limits of a rule, counted on the rule as compiled (every dynamic segment it names
expanded in place): depth, conditions, list lengths and string values. A rule beyond them is
refused with 400 and the path of the place that breaks the limit, when it is saved (API, admin,
service) and when it is previewed; a stored rule beyond them fails its refresh with the same
error, never with a RecursionError; editing a segment that others refer to is refused when one
of them would go beyond a limit."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.utils import translation
from rest_framework.test import APIClient

from segments.admin import SegmentForm
from segments.models import Segment
from segments.rules import InvalidRule, rule_check, rule_compile
from segments.rules.compiler import MAX_CONDITIONS, MAX_DEPTH
from segments.rules.values import MAX_LIST_LENGTH, MAX_STRING_LENGTH
from segments.services.segments import (
    segment_create,
    segment_preview,
    segment_refresh,
    segment_update,
)
from tests.factories import SegmentFactory

pytestmark = pytest.mark.django_db

AS_OF = datetime(2026, 3, 15, 2, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    with translation.override("en"):
        yield


def leaf(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


def refers_to(segment: Segment) -> dict[str, Any]:
    return leaf("segment", "in", [segment.pk])


def problems(rule: object, *, segment_id: int | None = None) -> list[tuple[str, str]]:
    with pytest.raises(InvalidRule) as refused:
        rule_check(rule, segment_id=segment_id)
    return [(p["path"], p["message"]) for p in refused.value.detail["rule"]]


def stored_chain(length: int) -> list[Segment]:
    """Segments each naming the previous one, written straight to the table (as data from
    before the limits could be): the first holds one condition, the n-th is n levels deep."""
    chain = [SegmentFactory(name="s1", kind="dynamic", rule=leaf("member_level", "eq", 1))]
    for number in range(2, length + 1):
        chain.append(SegmentFactory(name=f"s{number}", kind="dynamic", rule=refers_to(chain[-1])))
    return chain


def test_the_limits_are_the_documented_ones() -> None:
    assert (MAX_DEPTH, MAX_CONDITIONS, MAX_LIST_LENGTH, MAX_STRING_LENGTH) == (20, 200, 1000, 255)


# --- Depth across segment references -------------------------------------------------------


def test_a_chain_of_segments_counts_every_level() -> None:
    chain = stored_chain(MAX_DEPTH)
    rule_compile(refers_to(chain[MAX_DEPTH - 2]), as_of=AS_OF)  # 19 + 1 levels: at the limit
    names = " → ".join(f"「s{n}」" for n in range(MAX_DEPTH, 0, -1))
    assert problems({"all": [leaf("member_level", "eq", 1), refers_to(chain[-1])]}) == [
        (
            "$.all[1]",
            f"with the segments it refers to ({names}), the rule is nested 22 levels deep "
            "(at most 20)",
        )
    ]


def test_a_chain_of_45_is_refused_not_a_recursion_error() -> None:
    chain = stored_chain(45)
    expected = [
        (
            "$.value[0]",
            "the segments this rule refers to name other segments more than 20 levels deep",
        )
    ]
    assert problems(refers_to(chain[-1])) == expected
    with pytest.raises(InvalidRule):
        segment_preview(rule=refers_to(chain[-1]), as_of=AS_OF)
    with pytest.raises(InvalidRule):
        segment_refresh(segment_id=chain[-1].pk, as_of=AS_OF)


def test_the_service_refuses_the_segment_one_level_too_deep() -> None:
    first = segment_create(name="s1", kind="dynamic", rule=leaf("gender", "eq", "male"), actor="t")
    chain = [first]
    for number in range(2, MAX_DEPTH + 1):
        chain.append(
            segment_create(name=f"s{number}", kind="dynamic", rule=refers_to(chain[-1]), actor="t")
        )
    with pytest.raises(InvalidRule) as refused:
        segment_create(name="too deep", kind="dynamic", rule=refers_to(chain[-1]), actor="t")
    assert refused.value.detail["rule"][0]["path"] == "$"
    assert "nested 21 levels deep (at most 20)" in refused.value.detail["rule"][0]["message"]
    assert not Segment.objects.filter(name="too deep").exists()


def test_editing_an_inner_segment_may_not_push_an_outer_one_too_deep() -> None:
    chain = stored_chain(MAX_DEPTH)
    first = chain[0]
    deeper = {"all": [leaf("member_level", "eq", 1)]}
    with pytest.raises(InvalidRule) as refused:
        segment_update(segment_id=first.pk, rule=deeper, actor="t")
    assert refused.value.detail["rule"] == [
        {
            "path": "$",
            "message": f"segment 「s{MAX_DEPTH}」 refers to this segment and would be nested "
            "21 levels deep (at most 20)",
        }
    ]
    first.refresh_from_db()
    assert first.rule == leaf("member_level", "eq", 1)
    assert first.rule_version == 1
    # The last segment of the chain may change: nothing refers to it.
    segment_update(segment_id=chain[-1].pk, rule=deeper, actor="t")


def test_an_inner_edit_pushing_an_outer_segment_past_the_conditions_is_refused() -> None:
    inner = SegmentFactory(name="inner", kind="dynamic", rule=leaf("gender", "eq", "male"))
    SegmentFactory(
        name="outer",
        kind="dynamic",
        rule={"all": [refers_to(inner), *[leaf("member_level", "eq", n) for n in range(150)]]},
    )
    bigger = {"any": [leaf("member_level", "eq", n) for n in range(60)]}
    assert problems(bigger, segment_id=inner.pk) == [
        (
            "$",
            "segment 「outer」 refers to this segment and would have 211 conditions (at most 200)",
        )
    ]


def test_the_admin_form_refuses_a_rule_too_deep() -> None:
    chain = stored_chain(MAX_DEPTH)
    form = SegmentForm(
        data={
            "name": "from the admin",
            "description": "",
            "kind": "dynamic",
            "rule": json.dumps(refers_to(chain[-1])),
        }
    )
    assert not form.is_valid()
    assert "nested 21 levels deep (at most 20)" in form.errors["rule"][0]
    assert form.errors["rule"][0].startswith("$: ")


# --- Size ----------------------------------------------------------------------------------


def test_conditions_are_bounded_at_the_top_and_once_expanded() -> None:
    at_limit = {"any": [leaf("member_level", "eq", n) for n in range(MAX_CONDITIONS)]}
    preview = segment_preview(rule=at_limit, as_of=AS_OF)
    assert len(preview.condition_counts) == MAX_CONDITIONS
    beyond = {"any": [leaf("member_level", "eq", n) for n in range(1700)]}
    assert problems(beyond) == [("$.any", "expected at most 200 conditions")]
    inner = SegmentFactory(
        name="inner", kind="dynamic", rule={"all": [leaf("gender", "eq", "male")] * 150}
    )
    expanded = {"all": [refers_to(inner), *[leaf("member_level", "eq", n) for n in range(60)]]}
    assert problems(expanded) == [
        (
            "$",
            "the rule has 211 conditions, counting those of the segments it refers to "
            "(at most 200)",
        )
    ]


def test_lists_are_bounded_before_their_values_are_read() -> None:
    values: list[object] = list(range(1_000_000))
    values[-1] = "not a number"
    assert problems(leaf("member_level", "in", values)) == [
        ("$.value", "expected at most 1000 values")
    ]
    rule_check(leaf("member_level", "in", list(range(MAX_LIST_LENGTH))))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x" * 256, "expected at most 255 characters"),
        ("上海\x00", "the text holds a character that cannot be stored"),
        ("\ud800", "the text holds a character that cannot be stored"),
    ],
)
def test_string_values_that_cannot_be_stored_or_are_too_long(value: str, message: str) -> None:
    assert problems(leaf("city", "eq", value)) == [("$.value", message)]
    assert problems(leaf("city", "in", ["杭州", value])) == [("$.value[1]", message)]


# --- Over the API ---------------------------------------------------------------------------


def test_the_api_answers_400_with_the_path(api_client_with_scopes: Any) -> None:
    client: APIClient = api_client_with_scopes("segments")
    chain = stored_chain(45)
    for url, body in [
        ("/api/v1/segments/preview", {"rule": refers_to(chain[-1])}),
        ("/api/v1/segments", {"name": "deep", "kind": "dynamic", "rule": refers_to(chain[-1])}),
        (
            "/api/v1/segments/preview",
            {"rule": {"any": [leaf("member_level", "eq", n) for n in range(1700)]}},
        ),
        ("/api/v1/segments/preview", {"rule": leaf("member_level", "in", list(range(100_000)))}),
    ]:
        response = client.post(url, body, format="json")
        assert response.status_code == 400, (url, response.content[:200])
        assert response.json()["code"] == "invalid_rule"
        assert response.json()["errors"]["rule"][0]["path"] in {"$.value[0]", "$.any", "$.value"}
    assert not Segment.objects.filter(name="deep").exists()
