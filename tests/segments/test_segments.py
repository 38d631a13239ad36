"""Segments: materialised membership with entered/exited history and a size series, rule
versions, scoped refreshes, static lists, preview, the API and the refresh after a run."""

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from segments.models import (
    SegmentMembership,
    SegmentMembershipEvent,
    SegmentSizeSnapshot,
)
from segments.services.segments import (
    segment_create,
    segment_members_change,
    segment_refresh,
    segment_update,
)
from segments.tasks import recompute_full_task
from tests.conftest import Enqueued
from tests.factories import CustomerFactory, IdentityFactory
from tests.segments.recompute_support import AS_OF, buyer

pytestmark = pytest.mark.django_db

Client = Callable[..., APIClient]
SPEND_AT_LEAST = {"field": "spend", "op": "gte", "value": 0}


def spend_rule(minimum: int) -> dict:
    return {"field": "spend", "op": "gte", "value": minimum}


def members(segment_id: int) -> set[int]:
    return set(
        SegmentMembership.objects.filter(segment_id=segment_id).values_list(
            "customer_id", flat=True
        )
    )


def events(segment_id: int) -> list[tuple[int, str, int]]:
    return list(
        SegmentMembershipEvent.objects.filter(segment_id=segment_id)
        .order_by("id")
        .values_list("customer_id", "kind", "rule_version")
    )


@pytest.fixture
def spenders() -> list:
    customers = [buyer(recency=3, orders=1, spend=s) for s in (100, 300, 500)]
    recompute_full_task(trigger="test", as_of=AS_OF.isoformat())
    return customers


def test_refresh_materialises_with_history_and_size_series(spenders: list) -> None:
    low, mid, high = spenders
    segment = segment_create(name="高消费", kind="dynamic", rule=spend_rule(300), actor="t")
    first = segment_refresh(segment_id=segment.pk)
    assert (first.size, first.entered, first.exited) == (2, 2, 0)
    assert members(segment.pk) == {mid.pk, high.pk}
    again = segment_refresh(segment_id=segment.pk)
    assert (again.size, again.entered, again.exited) == (2, 0, 0)
    assert events(segment.pk) == []  # the first fill is the starting list, not history

    segment_update(segment_id=segment.pk, rule=spend_rule(400), actor="t")
    changed = segment_refresh(segment_id=segment.pk)
    assert (changed.size, changed.entered, changed.exited) == (1, 0, 1)
    assert events(segment.pk) == [(mid.pk, "exited", 2)]
    segment_update(segment_id=segment.pk, rule=spend_rule(250), actor="t")
    segment_refresh(segment_id=segment.pk)
    assert events(segment.pk) == [(mid.pk, "exited", 2), (mid.pk, "entered", 3)]
    segment_update(segment_id=segment.pk, rule=spend_rule(400), actor="t")
    segment_refresh(segment_id=segment.pk)
    assert list(SegmentMembership.objects.filter(segment=segment).values_list("rule_version")) == [
        (4,)
    ]
    sizes = list(
        SegmentSizeSnapshot.objects.filter(segment=segment)
        .order_by("id")
        .values_list("size", "entered", "exited", "rule_version")
    )
    # The second refresh found the same members: no copy of the first point.
    assert sizes == [(2, 2, 0, 1), (1, 0, 1, 2), (2, 1, 0, 3), (1, 0, 1, 4)]
    segment.refresh_from_db()
    assert (segment.member_count, segment.rule_version) == (1, 4)
    del low


def test_scoped_refresh_touches_only_the_named_customers(spenders: list) -> None:
    low, mid, high = spenders
    segment = segment_create(name="buyers", kind="dynamic", rule=spend_rule(400), actor="t")
    # Before its first fill a segment is left alone by scoped refreshes (sweeps).
    assert segment_refresh(segment_id=segment.pk, customer_ids=[low.pk]).size == 0
    assert members(segment.pk) == set()
    segment_refresh(segment_id=segment.pk)
    assert members(segment.pk) == {high.pk}
    segment_update(segment_id=segment.pk, rule=spend_rule(1), actor="t")
    segment_refresh(segment_id=segment.pk, customer_ids=[low.pk])
    assert members(segment.pk) == {low.pk, high.pk}
    outcome = segment_refresh(segment_id=segment.pk, customer_ids=[mid.pk, high.pk])
    assert (outcome.size, outcome.entered) == (3, 1)
    assert SegmentSizeSnapshot.objects.filter(segment=segment).count() == 1


def test_full_recompute_refreshes_dynamic_segments() -> None:
    customer = buyer(recency=3, orders=1, spend=800)
    segment = segment_create(
        name="重要",
        kind="dynamic",
        rule={"field": "lifecycle_state", "op": "eq", "value": "new"},
        actor="t",
    )
    assert members(segment.pk) == set()
    recompute_full_task(trigger="test", as_of=AS_OF.isoformat())
    assert members(segment.pk) == {customer.pk}


def test_static_list_and_segments_naming_it(spenders: list) -> None:
    low, mid, high = spenders
    static = segment_create(name="VIP 名单", kind="static", actor="t")
    outcome = segment_members_change(segment_id=static.pk, add=[low.pk, mid.pk], actor="t")
    assert (outcome.size, outcome.entered) == (2, 2)
    outcome = segment_members_change(
        segment_id=static.pk, remove=[low.pk], add=[high.pk], actor="t"
    )
    assert (outcome.size, outcome.entered, outcome.exited) == (2, 1, 1)
    assert members(static.pk) == {mid.pk, high.pk}
    outcome = segment_members_change(segment_id=static.pk, replace=[low.pk], actor="t")
    assert members(static.pk) == {low.pk}
    assert (outcome.entered, outcome.exited) == (1, 2)

    outside = segment_create(
        name="not VIP",
        kind="dynamic",
        rule={"field": "segment", "op": "not_in", "value": [static.pk]},
        actor="t",
    )
    segment_refresh(segment_id=outside.pk)
    assert members(outside.pk) == {mid.pk, high.pk}


def test_api_crud_preview_members_and_errors(
    api_client_with_scopes: Client, spenders: list, django_capture_on_commit_callbacks: Callable
) -> None:
    low, mid, high = spenders
    client = api_client_with_scopes("segments")
    rule = {"all": [spend_rule(300), {"field": "lifecycle_state", "op": "eq", "value": "new"}]}
    preview = client.post("/api/v1/segments/preview", {"rule": rule}, format="json").json()
    assert preview["size"] == 2
    assert preview["condition_counts"] == [2, 3]
    assert [c["id"] for c in preview["sample"]] == [high.pk, mid.pk]

    bad = client.post(
        "/api/v1/segments/preview",
        {"rule": {"all": [spend_rule(1), {"field": "spend", "op": "gte", "value": "lots"}]}},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_rule"
    assert bad.json()["errors"]["rule"][0]["path"] == "$.all[1].value"

    with django_capture_on_commit_callbacks() as callbacks:
        created = client.post(
            "/api/v1/segments", {"name": "新客高消费", "rule": rule}, format="json"
        )
    assert created.status_code == 201, created.json()
    segment_id = created.json()["id"]
    assert len(callbacks) == 1  # materialised after commit
    segment_refresh(segment_id=segment_id)
    assert client.get(f"/api/v1/segments/{segment_id}").json()["member_count"] == 2
    duplicate = client.post("/api/v1/segments", {"name": "新客高消费", "rule": rule}, format="json")
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "segment_name_taken")
    missing_rule = client.post("/api/v1/segments", {"name": "x"}, format="json")
    assert (missing_rule.status_code, missing_rule.json()["code"]) == (400, "rule_required")

    cycle = client.patch(
        f"/api/v1/segments/{segment_id}",
        {"rule": {"field": "segment", "op": "in", "value": [segment_id]}},
        format="json",
    )
    assert cycle.status_code == 400
    assert cycle.json()["code"] == "invalid_rule"

    IdentityFactory(customer=high, provider="phone", raw_value="13912345678")
    page = client.get(f"/api/v1/segments/{segment_id}/members?page_size=1").json()
    assert [c["id"] for c in page["results"]] == [high.pk]
    assert page["results"][0]["identities"][0]["value"] == "13****78"
    assert [c["id"] for c in client.get(page["next"]).json()["results"]] == [mid.pk]
    history = client.get(f"/api/v1/segments/{segment_id}/history").json()["results"]
    assert [h["size"] for h in history] == [2]
    mine = client.get(f"/api/v1/customers/{high.pk}/segments").json()
    assert [(s["id"], s["rule_version"]) for s in mine] == [(segment_id, 1)]
    assert client.get("/api/v1/customers/999999/segments").status_code == 404

    static = client.post(
        "/api/v1/segments", {"name": "名单", "kind": "static"}, format="json"
    ).json()
    changed = client.post(
        f"/api/v1/segments/{static['id']}/members",
        {
            "action": "add",
            "customer_ids": [low.pk],
            "identities": [
                {"provider": "phone", "value": "13912345678"},
                {"provider": "phone", "value": "13900000000"},
            ],
        },
        format="json",
    ).json()
    assert changed == {"size": 2, "entered": 2, "exited": 0, "unknown_identities": 1}
    not_static = client.post(
        f"/api/v1/segments/{segment_id}/members",
        {"action": "add", "customer_ids": [low.pk]},
        format="json",
    )
    assert (not_static.status_code, not_static.json()["code"]) == (400, "segment_not_static")
    referenced = client.post(
        "/api/v1/segments",
        {"name": "引用", "rule": {"field": "segment", "op": "in", "value": [static["id"]]}},
        format="json",
    )
    assert referenced.status_code == 201
    refused = client.delete(f"/api/v1/segments/{static['id']}")
    assert (refused.status_code, refused.json()["code"]) == (409, "segment_referenced")
    assert client.delete(f"/api/v1/segments/{segment_id}").status_code == 204
    assert client.get(f"/api/v1/segments/{segment_id}").status_code == 404
    assert client.post(f"/api/v1/segments/{segment_id}/refresh").status_code == 404


def test_members_page_costs_fixed_queries(api_client_with_scopes: Client) -> None:
    client = api_client_with_scopes("segments:read")
    static = segment_create(name="s", kind="static", actor="t")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/api/v1/segments/{static.pk}/members").status_code == 200
        return len(captured)

    segment_members_change(segment_id=static.pk, add=[CustomerFactory().pk], actor="t")
    queries()  # the key's first use is recorded once
    few = queries()
    many = [CustomerFactory() for _ in range(15)]
    for customer in many:
        IdentityFactory(customer=customer)
    segment_members_change(segment_id=static.pk, add=[c.pk for c in many], actor="t")
    assert queries() == few


@pytest.mark.parametrize(
    ("leaf", "path"),
    [
        ({"field": "first_seen_at", "op": "within_last_days", "value": 10**9}, "$.value"),
        ({"field": "first_seen_at", "op": "gt", "value": {"days_ago": 10**6}}, "$.value.days_ago"),
        ({"field": "first_seen_at", "op": "gt", "value": "9999-12-31"}, "$.value"),
        (
            {
                "field": "purchased",
                "op": "gte",
                "value": 1,
                "params": {"sku": ["A"], "within_days": 10**9},
            },
            "$.params.within_days",
        ),
    ],
)
def test_out_of_range_days_and_dates_are_rule_errors(
    api_client_with_scopes: Client, leaf: dict, path: str
) -> None:
    response = api_client_with_scopes("segments").post(
        "/api/v1/segments/preview", {"rule": leaf}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"]["rule"][0]["path"] == path


def test_rule_change_refreshes_segments_that_name_it(
    django_capture_on_commit_callbacks: Callable,
    enqueued: list[Enqueued],
) -> None:
    base = segment_create(name="base", kind="dynamic", rule=spend_rule(1), actor="t")
    middle = segment_create(
        name="middle",
        kind="dynamic",
        rule={"field": "segment", "op": "in", "value": [base.pk]},
        actor="t",
    )
    top = segment_create(
        name="top",
        kind="dynamic",
        rule={"field": "segment", "op": "not_in", "value": [middle.pk]},
        actor="t",
    )
    with django_capture_on_commit_callbacks(execute=True):
        segment_update(segment_id=base.pk, rule=spend_rule(5), actor="t")
    refreshed = [task.args[0] for task in enqueued if task.name == "segments.segment_refresh"]
    assert sorted(refreshed) == [base.pk, middle.pk, top.pk]
