"""Segmentation admin: policy editors write new versions through the services, runs are
listed with their figures and can be requested, the customer page shows scores and
transitions, and lists cost a fixed number of queries."""

from collections.abc import Callable
from datetime import date

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from segments.models import CustomerMetrics, LifecyclePolicy, RecomputeRun, RfmPolicy, Segment
from segments.services.recompute import recompute_full
from segments.services.segments import segment_create, segment_members_change
from tests.factories import CustomerFactory, SegmentFactory, UserFactory
from tests.factories.users import seeing_every_customer
from tests.segments.recompute_support import AS_OF, buyer, order
from tests.support import client_of, form_data

pytestmark = pytest.mark.django_db


def test_policy_add_starts_from_active_values_and_saves_a_new_version(
    admin_client_en: Client, django_capture_on_commit_callbacks: Callable
) -> None:
    page = admin_client_en.get(reverse("admin:segments_lifecyclepolicy_add"))
    assert page.status_code == 200
    assert page.context["adminform"].form.initial["active_days"] == 90
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client_en.post(
            reverse("admin:segments_lifecyclepolicy_add"),
            {"new_days": 14, "active_days": 60, "sleeping_days": 120, "reactivated_days": 14},
        )
    assert response.status_code == 302
    active = LifecyclePolicy.objects.get(is_active=True)
    assert (active.version, active.new_days, active.active_days) == (2, 14, 60)
    assert active.created_by.startswith("user:")
    assert len(callbacks) == 1
    assert LifecyclePolicy.objects.count() == 2
    old = admin_client_en.get(
        reverse(
            "admin:segments_lifecyclepolicy_change",
            args=[LifecyclePolicy.objects.get(version=1).pk],
        )
    )
    assert old.status_code == 200
    assert b'name="active_days"' not in old.content  # read-only


def test_invalid_policy_is_refused_with_the_reason(admin_client_en: Client) -> None:
    response = admin_client_en.post(
        reverse("admin:segments_rfmpolicy_add"),
        {
            "lookback_days": 365,
            "scoring_method": "thresholds",
            "recency_breakpoints": "30,60",
            "frequency_breakpoints": "1,2,3,5",
            "monetary_breakpoints": "100,200,500,1000",
            "high_score_threshold": 3,
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "Give exactly 4 breakpoints." in response.content.decode()
    assert RfmPolicy.objects.count() == 1


def test_runs_list_and_recompute_now(
    admin_client_en: Client, django_capture_on_commit_callbacks: Callable
) -> None:
    buyer(recency=3, orders=1, spend=100)
    recompute_full(trigger="test", as_of=AS_OF)
    page = admin_client_en.get(reverse("admin:segments_recomputerun_changelist"))
    assert page.status_code == 200
    assert "Recompute everyone now" in page.content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client_en.post(reverse("admin:segments_recomputerun_recompute_now"))
    assert response.status_code == 302
    assert len(callbacks) == 1
    client = client_of(
        UserFactory(
            permissions=seeing_every_customer(
                Permission.objects.filter(codename="view_recomputerun")
            )
        )
    )
    page = client.get(reverse("admin:segments_recomputerun_changelist"))
    assert page.status_code == 200
    assert "Recompute everyone now" not in page.content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        client.post(reverse("admin:segments_recomputerun_recompute_now"))
    assert callbacks == []


def test_customer_page_shows_scores_and_transitions(admin_client_en: Client) -> None:
    customer = buyer(recency=3, orders=2, spend=300)
    recompute_full(trigger="test", as_of=AS_OF)
    static = segment_create(name="试用名单", kind="static", actor="t")
    segment_members_change(segment_id=static.pk, add=[customer.pk], actor="t")
    page = admin_client_en.get(reverse("admin:crm_customer_change", args=[customer.pk]))
    assert page.status_code == 200
    content = page.content.decode()
    assert "Scores and lifecycle" in content
    assert "General develop" in content
    assert "Lifecycle transitions" in content
    assert "试用名单" in content


def test_chinese_labels(admin_client_en: Client) -> None:
    buyer(recency=3, orders=2, spend=300)
    recompute_full(trigger="test", as_of=AS_OF)
    page = admin_client_en.get(
        reverse("admin:segments_customermetrics_changelist"), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    content = page.content.decode()
    assert "一般发展" in content
    assert "新客" in content


def test_metrics_and_transition_lists_cost_fixed_queries(admin_client_en: Client) -> None:
    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client_en.get(url).status_code == 200
        return len(captured)

    buyer(recency=3, orders=1, spend=100)
    recompute_full(trigger="test", as_of=AS_OF)
    urls = [
        reverse("admin:segments_customermetrics_changelist"),
        reverse("admin:segments_lifecycletransition_changelist"),
        reverse("admin:segments_recomputerun_changelist"),
    ]
    few = [queries(url) for url in urls]
    for r in range(5, 25):
        buyer(recency=r, orders=1, spend=100)
    CustomerFactory()
    recompute_full(trigger="test", as_of=AS_OF)
    assert [queries(url) for url in urls] == few


def test_segment_editor_checks_the_rule_and_shows_the_preview_size(
    admin_client_en: Client, django_capture_on_commit_callbacks: Callable
) -> None:
    buyer(recency=3, orders=1, spend=500)
    buyer(recency=3, orders=1, spend=50)
    recompute_full(trigger="test", as_of=AS_OF)
    add = reverse("admin:segments_segment_add")
    wrong = admin_client_en.post(
        add,
        {
            "name": "高消费",
            "kind": "dynamic",
            "rule": '{"all": [{"field": "spend", "op": "gte", "value": "many"}]}',
            "size_history-TOTAL_FORMS": "0",
            "size_history-INITIAL_FORMS": "0",
        },
    )
    assert wrong.status_code == 200
    assert "$.all[0].value" in wrong.content.decode()
    assert not Segment.objects.exists()
    with django_capture_on_commit_callbacks() as callbacks:
        created = admin_client_en.post(
            add,
            {
                "name": "高消费",
                "kind": "dynamic",
                "rule": '{"field": "spend", "op": "gte", "value": 100}',
                "size_history-TOTAL_FORMS": "0",
                "size_history-INITIAL_FORMS": "0",
            },
        )
    assert created.status_code == 302
    assert len(callbacks) == 1
    segment = Segment.objects.get()
    page = admin_client_en.get(reverse("admin:segments_segment_change", args=[segment.pk]))
    assert page.status_code == 200
    content = page.content.decode()
    assert "Size if refreshed now" in content
    assert '<div class="readonly">1</div>' in content
    members = admin_client_en.get(
        reverse("admin:segments_segmentmembership_changelist") + f"?segment__id__exact={segment.pk}"
    )
    assert members.status_code == 200


def test_deleting_a_segment_another_rule_names_is_refused_with_a_message(
    admin_client_en: Client,
) -> None:
    static = segment_create(name="名单", kind="static", actor="t")
    SegmentFactory(name="引用", rule={"field": "segment", "op": "in", "value": [static.pk]})
    response = admin_client_en.post(
        reverse("admin:segments_segment_changelist"),
        {"action": "delete_selected", "_selected_action": [static.pk], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    assert "name this segment in their rules" in response.content.decode()
    assert Segment.objects.filter(pk=static.pk).exists()
    page = admin_client_en.post(
        reverse("admin:segments_segment_delete", args=[static.pk]), {"post": "yes"}, follow=True
    )
    assert page.status_code == 200
    assert Segment.objects.filter(pk=static.pk).exists()


def test_recompute_now_as_of_an_earlier_date_queues_a_backfill_and_shows_its_figures(
    admin_client_en: Client, django_capture_on_commit_callbacks: Callable
) -> None:
    young = CustomerFactory()  # new on 2026-03-01 (its only order 29 days before), sleeping now
    order(young, days_ago=150)
    recompute_full(trigger="test", as_of=AS_OF)
    url = reverse("admin:segments_recomputerun_recompute_now")
    with django_capture_on_commit_callbacks() as callbacks:
        future = admin_client_en.post(url, {"as_of": "2999-01-01"}, follow=True)
        no_day = admin_client_en.post(url, {"as_of": "2026-02-30"}, follow=True)
    assert "A date in the future cannot be computed yet." in future.content.decode()
    assert "Give the date as YYYY-MM-DD." in no_day.content.decode()
    assert callbacks == []
    with django_capture_on_commit_callbacks() as callbacks:
        queued = admin_client_en.post(url, {"as_of": "2026-03-01"}, follow=True)
    assert len(callbacks) == 1
    assert (
        "A backfill as of 2026-03-01 is queued: its figures are recorded apart, and the current "
        "scores, lifecycle transitions and segments do not change." in queued.content.decode()
    )

    metrics_before = list(CustomerMetrics.objects.values())
    backfill = recompute_full(trigger="admin", as_of=date(2026, 3, 1))
    assert list(CustomerMetrics.objects.values()) == metrics_before
    page = admin_client_en.get(reverse("admin:segments_recomputerun_change", args=[backfill.pk]))
    content = page.content.decode()
    assert "Backfill (recorded apart)" in content
    # Lifecycle states down, the eight tiers and "no tier" across: the one new customer is
    # general develop (the sixth tier).
    assert (
        "<tr><th>New</th>" + "<td>0</td>" * 5 + "<td>1</td>" + "<td>0</td>" * 3 + "</tr>"
    ) in content
    assert "<tr><th>Sleeping</th>" + "<td>0</td>" * 9 + "</tr>" in content
    live = admin_client_en.get(
        reverse("admin:segments_recomputerun_change", args=[RecomputeRun.objects.earliest("id").pk])
    )
    assert "Only a backfill records its figures; see the current ones." in live.content.decode()


def test_a_segment_is_pinned_and_unpinned_from_its_own_page() -> None:
    segment = segment_create(
        name="高消费", kind="dynamic", rule={"field": "spend", "op": "gte", "value": 100}, actor="t"
    )
    editor = client_of(
        UserFactory(
            permissions=seeing_every_customer(
                Permission.objects.filter(
                    codename__in=["view_segment", "add_segment", "change_segment"]
                )
            )
        )
    )
    url = reverse("admin:segments_segment_change", args=[segment.pk])
    page = editor.get(url)
    assert '<input type="checkbox" name="pinned"' in page.content.decode()
    assert "Pin to the overview" in page.content.decode()

    assert editor.post(url, form_data(page, pinned=True)).status_code == 302
    segment.refresh_from_db()
    assert segment.pinned
    assert segment.rule_version == 1  # pinning leaves the rule as it was
    page = editor.get(url)
    assert "checked" in str(page.context["adminform"].form["pinned"])
    assert editor.post(url, form_data(page, pinned=None)).status_code == 302  # unticked
    segment.refresh_from_db()
    assert not segment.pinned

    # A new segment is pinned from its page once saved; a reader cannot pin.
    adding = editor.get(reverse("admin:segments_segment_add"))
    assert "pinned" not in adding.context["adminform"].form.fields
    reader = client_of(
        UserFactory(
            permissions=seeing_every_customer(Permission.objects.filter(codename="view_segment"))
        )
    )
    assert 'name="pinned"' not in reader.get(url).content.decode()
    reader.raise_request_exception = False
    assert reader.post(url, {**form_data(page), "pinned": "on"}).status_code == 403
    segment.refresh_from_db()
    assert not segment.pinned
