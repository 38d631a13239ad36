"""Score endpoints: policies (versioned, validated, recomputation queued), distributions, the
transition feed, recomputation requests and runs."""

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from segments.models import CustomerMetrics, LifecyclePolicy, LifecycleTransition, RfmPolicy
from segments.services.recompute import recompute_full
from segments.tasks import recompute_full_task
from tests.factories import CustomerFactory
from tests.segments.recompute_support import AS_OF, buyer, order

pytestmark = pytest.mark.django_db

Client = Callable[..., APIClient]


def test_rfm_policy_get_and_put_writes_a_new_version(
    api_client_with_scopes: Client, django_capture_on_commit_callbacks: Callable
) -> None:
    client = api_client_with_scopes("segments")
    body = client.get("/api/v1/policies/rfm").json()
    assert body["version"] == 1
    assert (body["lookback_days"], body["scoring_method"]) == (365, "quantile")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.put(
            "/api/v1/policies/rfm",
            {
                "scoring_method": "thresholds",
                "recency_breakpoints": [30, 60, 90, 180],
                "frequency_breakpoints": [1, 2, 3, 5],
                "monetary_breakpoints": ["200", "500", "1000", "3000.50"],
            },
            format="json",
        )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["version"], body["scoring_method"], body["lookback_days"]) == (
        2,
        "thresholds",
        365,
    )
    assert body["monetary_breakpoints"] == ["200.00", "500.00", "1000.00", "3000.50"]
    assert len(callbacks) == 1  # a full recomputation queued after commit
    assert list(RfmPolicy.objects.values_list("version", "is_active")) == [(2, True), (1, False)]


def test_rfm_policy_put_unchanged_values_writes_nothing(
    api_client_with_scopes: Client, django_capture_on_commit_callbacks: Callable
) -> None:
    client = api_client_with_scopes("segments")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.put("/api/v1/policies/rfm", {"lookback_days": 365}, format="json")
    assert response.json()["version"] == 1
    assert callbacks == []
    assert RfmPolicy.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"lookback_days": 0}, "lookback_days", "Between 1 and 3650 days."),
        ({"high_score_threshold": 6}, "high_score_threshold", "A score from 1 to 5."),
        (
            {"scoring_method": "thresholds", "recency_breakpoints": [30, 60, 90]},
            "recency_breakpoints",
            "Give exactly 4 breakpoints.",
        ),
        (
            {
                "scoring_method": "thresholds",
                "recency_breakpoints": [30, 60, 60, 90],
                "frequency_breakpoints": [1, 2, 3, 4],
                "monetary_breakpoints": [1, 2, 3, 4],
            },
            "recency_breakpoints",
            "Breakpoints must be strictly ascending.",
        ),
    ],
)
def test_rfm_policy_errors_name_the_field(
    api_client_with_scopes: Client, payload: dict, field: str, message: str
) -> None:
    response = api_client_with_scopes("segments").put(
        "/api/v1/policies/rfm", payload, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_policy"
    assert message in body["errors"][field]
    assert RfmPolicy.objects.count() == 1


def test_lifecycle_policy_put_and_errors(api_client_with_scopes: Client) -> None:
    client = api_client_with_scopes("segments")
    response = client.put("/api/v1/policies/lifecycle", {"active_days": 200}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "sleeping_days": ["Must be longer than the active window."]
    }
    response = client.put(
        "/api/v1/policies/lifecycle", {"active_days": 60, "new_days": 14}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["version"], body["new_days"], body["active_days"], body["sleeping_days"]) == (
        2,
        14,
        60,
        180,
    )
    assert LifecyclePolicy.objects.get(is_active=True).version == 2
    response = client.put("/api/v1/policies/lifecycle", {"new_days": "soon"}, format="json")
    assert response.status_code == 400
    assert "new_days" in response.json()["errors"]


def test_distributions(api_client_with_scopes: Client) -> None:
    buyer(recency=1, orders=1, spend=100)  # new
    buyer(recency=100, orders=2, spend=100)  # sleeping
    buyer(recency=400, orders=1, spend=100)  # churned, no tier
    CustomerFactory()  # prospect
    recompute_full(trigger="test", as_of=AS_OF)
    client = api_client_with_scopes("segments:read")
    states = {r["state"]: r["count"] for r in client.get("/api/v1/stats/lifecycle").json()}
    assert states == {
        "prospect": 1,
        "new": 1,
        "active": 0,
        "sleeping": 1,
        "churned": 1,
        "reactivated": 0,
    }
    tiers = client.get("/api/v1/stats/rfm-tiers").json()
    assert [t["tier"] for t in tiers][:8] == [
        "important_value",
        "important_develop",
        "important_retain",
        "important_winback",
        "general_value",
        "general_develop",
        "general_retain",
        "general_winback",
    ]
    assert tiers[-1] == {"tier": None, "label": "-", "count": 2, "share": 0.5}
    assert sum(t["count"] for t in tiers) == 4


def test_transition_feed_pages_oldest_first_with_filters(api_client_with_scopes: Client) -> None:
    customers = [buyer(recency=r, orders=1, spend=100) for r in (1, 2, 100, 200)]
    recompute_full(trigger="test", as_of=AS_OF)
    client = api_client_with_scopes("segments:read")
    first = client.get("/api/v1/lifecycle-transitions?page_size=3").json()
    assert [t["customer_id"] for t in first["results"]] == [c.pk for c in customers[:3]]
    second = client.get(first["next"]).json()
    assert [t["customer_id"] for t in second["results"]] == [customers[3].pk]
    assert second["next"] is None
    churned = client.get("/api/v1/lifecycle-transitions?to_state=churned").json()["results"]
    assert [(t["customer_id"], t["from_state"]) for t in churned] == [(customers[3].pk, "prospect")]
    bad = client.get("/api/v1/lifecycle-transitions?to_state=gone")
    assert bad.status_code == 400


def test_recompute_request_is_queued_and_runs_are_listed(
    api_client_with_scopes: Client, django_capture_on_commit_callbacks: Callable
) -> None:
    client = api_client_with_scopes("segments")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            "/api/v1/recompute", {"as_of": "2026-06-30", "customer_ids": [3, 1]}, format="json"
        )
    assert response.status_code == 202
    assert len(callbacks) == 1
    assert client.post("/api/v1/recompute", {"as_of": "June"}, format="json").status_code == 400
    recompute_full(trigger="test", as_of=AS_OF)
    runs = client.get("/api/v1/recompute?kind=full").json()["results"]
    assert [(r["kind"], r["status"], r["as_of"]) for r in runs] == [
        ("full", "succeeded", "2026-06-30")
    ]
    assert runs[0]["rfm_policy_version"] == 1


def test_recompute_request_refuses_empty_lists_and_future_dates(
    api_client_with_scopes: Client, django_capture_on_commit_callbacks: Callable
) -> None:
    client = api_client_with_scopes("segments")
    with django_capture_on_commit_callbacks() as callbacks:
        empty = client.post("/api/v1/recompute", {"customer_ids": []}, format="json")
        future = client.post("/api/v1/recompute", {"as_of": "2999-01-01"}, format="json")
    assert (empty.status_code, future.status_code) == (400, 400)
    assert "customer_ids" in empty.json()["errors"] and "as_of" in future.json()["errors"]
    assert callbacks == []


def test_transition_feed_after_id(api_client_with_scopes: Client) -> None:
    customers = [buyer(recency=r, orders=1, spend=100) for r in (1, 2, 100)]
    recompute_full(trigger="test", as_of=AS_OF)
    client = api_client_with_scopes("segments:read")
    ids = [t["id"] for t in client.get("/api/v1/lifecycle-transitions").json()["results"]]
    later = client.get(f"/api/v1/lifecycle-transitions?after_id={ids[0]}").json()["results"]
    assert [t["customer_id"] for t in later] == [c.pk for c in customers[1:]]


def test_recompute_request_before_the_latest_full_run_is_a_backfill_recorded_apart(
    api_client_with_scopes: Client, django_capture_on_commit_callbacks: Callable
) -> None:
    young = CustomerFactory()  # new on 2026-03-01 (its only order 29 days before), sleeping now
    order(young, days_ago=150)
    later = CustomerFactory()  # seen today, first order after 2026-03-01: not counted then
    order(later, days_ago=10)
    recompute_full(trigger="test", as_of=AS_OF)
    metrics_before = list(CustomerMetrics.objects.order_by("pk").values())
    transitions_before = list(LifecycleTransition.objects.order_by("pk").values())
    client = api_client_with_scopes("segments")

    with django_capture_on_commit_callbacks() as callbacks:
        refused = client.post(
            "/api/v1/recompute",
            {"as_of": "2026-03-01", "customer_ids": [young.pk]},
            format="json",
        )
    assert refused.status_code == 400
    body = refused.json()
    assert body["code"] == "backfill_needs_everyone"
    assert body["detail"] == (
        "The current scores are as of 2026-06-30, the date of the latest full recomputation. "
        "An earlier date is computed for every customer and recorded apart, without changing "
        "the current scores: leave out the customers."
    )
    assert body["errors"] == {"customer_ids": [body["detail"]]}
    chinese = client.post(
        "/api/v1/recompute",
        {"as_of": "2026-03-01", "customer_ids": [young.pk]},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    ).json()
    assert chinese["detail"] == (
        "当前评分的计算基准日是最近一次全量重算的 2026-06-30。更早的日期只能对全部客户回溯重算，"
        "结果单独记录，不改动当前评分：请不要指定客户。"
    )
    assert callbacks == []

    with django_capture_on_commit_callbacks() as callbacks:
        accepted = client.post("/api/v1/recompute", {"as_of": "2026-03-01"}, format="json")
    assert (accepted.status_code, accepted.json()) == (
        202,
        {"as_of": "2026-03-01", "backfill": True},
    )
    assert len(callbacks) == 1
    recompute_full_task(trigger="api", as_of="2026-03-01")  # what the queued task runs

    assert list(CustomerMetrics.objects.order_by("pk").values()) == metrics_before
    assert list(LifecycleTransition.objects.order_by("pk").values()) == transitions_before
    states = {r["state"]: r["count"] for r in client.get("/api/v1/stats/lifecycle").json()}
    assert (states["sleeping"], states["new"]) == (1, 1)
    run = client.get("/api/v1/recompute?kind=backfill").json()["results"][0]
    assert (run["kind"], run["status"], run["as_of"], run["customers_processed"]) == (
        "backfill",
        "succeeded",
        "2026-03-01",
        1,
    )
    assert (run["rows_changed"], run["transitions_written"]) == (0, 0)
    figures = run["backfill_figures"]
    assert {r["state"]: (r["count"], r["share"]) for r in figures["lifecycle"]} == {
        "prospect": (0, 0.0),
        "new": (1, 1.0),
        "active": (0, 0.0),
        "sleeping": (0, 0.0),
        "churned": (0, 0.0),
        "reactivated": (0, 0.0),
    }
    assert [(r["tier"], r["count"]) for r in figures["rfm_tiers"] if r["count"]] == [
        ("general_develop", 1)
    ]
    assert len(figures["rfm_tiers"]) == 9
    live = client.get("/api/v1/recompute?kind=full").json()["results"]
    assert [r["backfill_figures"] for r in live] == [None]

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/v1/recompute").status_code == 200
        return len(captured)

    few = queries()
    for day in ("2026-04-01", "2026-05-01"):
        recompute_full_task(trigger="api", as_of=day)
    assert queries() == few  # the figures of every run on the page in one query
