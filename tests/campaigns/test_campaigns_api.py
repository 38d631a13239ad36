"""Campaign API: create, read, change and delete drafts with the service's field-level reasons,
the state changes and their refusals, the deliveries of a campaign and of a customer, scopes,
and lists that cost a fixed number of queries."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.models import Campaign, CampaignState, Delivery, DeliveryStatus
from campaigns.services.campaigns import VariantInput, campaign_launch, campaign_plan
from segments.models import Segment
from tests.campaigns.support import (
    audience,
    campaign_body,
    make_campaign,
    opt_out,
    statuses,
    wecom_customers,
)
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/campaigns"
NO_DELIVERIES = dict.fromkeys(DeliveryStatus.values, 0)


@pytest.fixture
def client(api_client_with_scopes: Callable[..., APIClient]) -> APIClient:
    return api_client_with_scopes("campaigns:read", "campaigns:write")


def test_create_read_change_delete(client: APIClient, segment: Segment) -> None:
    excluded = audience([], name="投诉")
    created = client.post(
        LIST_URL,
        {
            "name": "春季上新",
            "channel": "wecom_customer",
            "include_segment_ids": [segment.pk],
            "variants": [
                {"name": "A", "content": "{{ display_name }}，新品上市", "weight": 2},
                {"name": "B", "content": "新品上市，限时八折"},
            ],
            "description": "三月",
            "labels": ["promo"],
            "exclude_segment_ids": [excluded.pk],
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "08:30",
            "holdout_share": "0.2",
            "throttle_per_minute": 100,
            "conversion_min_amount": "99.00",
            "priority": 5,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    campaign = Campaign.objects.get()
    variant_ids = dict(campaign.variants.values_list("name", "pk"))
    assert body == {
        "id": campaign.pk,
        "name": "春季上新",
        "description": "三月",
        "state": "draft",
        "channel": "wecom_customer",
        "consent_channel": "wecom",
        "labels": ["promo"],
        "webhook_url": "",
        "variants": [
            {
                "id": variant_ids["A"],
                "name": "A",
                "weight": 2,
                "content": "{{ display_name }}，新品上市",
            },
            {"id": variant_ids["B"], "name": "B", "weight": 1, "content": "新品上市，限时八折"},
        ],
        "include_segment_ids": [segment.pk],
        "exclude_segment_ids": [excluded.pk],
        "extra_rule": None,
        "schedule_kind": "now",
        "scheduled_at": None,
        "trigger_lifecycle_state": "",
        "trigger_segment_id": None,
        "trigger_ends_at": None,
        "quiet_hours_start": "22:00",
        "quiet_hours_end": "08:30",
        "throttle_per_minute": 100,
        "holdout_share": "0.200",
        "conversion_window_days": 7,
        "conversion_min_amount": "99.00",
        "conversion_sku": "",
        "conversion_category": "",
        "attribution_model": "last_touch",
        "priority": 5,
        "respects_caps": True,
        "counts_toward_caps": True,
        "created_by": campaign.created_by,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
        "launched_at": None,
        "planned_at": None,
        "finished_at": None,
        "delivery_counts": NO_DELIVERIES,
    }
    assert campaign.created_by.startswith("api_key:test:")
    url = f"{LIST_URL}/{campaign.pk}"
    assert client.get(url).json() == body

    changed = client.patch(
        url,
        {
            "content": "{{ city }}的新朋友，你好",
            "holdout_share": "0.3",
            "quiet_hours_start": None,
            "quiet_hours_end": None,
        },
        format="json",
    )
    assert changed.status_code == 200, changed.json()
    after = changed.json()
    assert [(v["name"], v["weight"], v["content"]) for v in after["variants"]] == [
        ("A", 1, "{{ city }}的新朋友，你好")
    ]
    assert (after["holdout_share"], after["quiet_hours_start"], after["quiet_hours_end"]) == (
        "0.300",
        None,
        None,
    )
    # Left out, kept.
    assert (after["labels"], after["priority"], after["exclude_segment_ids"]) == (
        ["promo"],
        5,
        [excluded.pk],
    )

    assert client.delete(url).status_code == 204
    missing = client.get(url)
    assert missing.status_code == 404
    assert missing.json()["code"] == "campaign_not_found"
    assert not Campaign.objects.exists()


def test_content_alone_makes_variant_a_and_the_defaults_apply(
    client: APIClient, segment: Segment
) -> None:
    response = client.post(LIST_URL, campaign_body(segment), format="json")
    assert response.status_code == 201
    body = response.json()
    assert [(v["name"], v["weight"]) for v in body["variants"]] == [("A", 1)]
    assert body["variants"][0]["content"] == "{{ display_name }}，春季新品上市"
    assert (body["quiet_hours_start"], body["quiet_hours_end"]) == ("21:00", "09:00")
    assert (body["holdout_share"], body["schedule_kind"], body["consent_channel"]) == (
        "0.100",
        "now",
        "wecom",
    )


@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        (
            {"content": "{{ foo }}，你好"},
            {
                "variants[0].content": [
                    "Unknown variables: foo. Known: display_name, city, province, "
                    "member_level, owner_name."
                ]
            },
        ),
        (
            {"channel": "webhook", "consent_channel": "sms"},
            {"webhook_url": ["A webhook campaign needs the URL it posts to."]},
        ),
        (
            {"holdout_share": "0.6"},
            {"holdout_share": ["The holdout share is from 0 to 0.5."]},
        ),
        (
            {"include_segment_ids": [999999, 999998]},
            {"include_segment_ids": ["No such segments: [999998, 999999]."]},
        ),
        (
            {"schedule_kind": "at"},
            {"scheduled_at": ["A scheduled campaign needs its time."]},
        ),
        (
            {"quiet_hours_end": None},
            {"quiet_hours_end": ["Quiet hours have a start and an end, or neither."]},
        ),
    ],
)
def test_an_invalid_campaign_is_refused_naming_the_field(
    client: APIClient, segment: Segment, overrides: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    response = client.post(LIST_URL, campaign_body(segment, **overrides), format="json")
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_campaign",
        "detail": "The campaign is not valid.",
        "errors": errors,
    }
    assert not Campaign.objects.exists()


def test_field_shapes_are_checked_before_the_campaign(client: APIClient, segment: Segment) -> None:
    response = client.post(
        LIST_URL,
        campaign_body(segment, channel="pigeon", quiet_hours_start="9pm", holdout_share="12"),
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"channel", "quiet_hours_start", "holdout_share"}
    both = client.post(
        LIST_URL, campaign_body(segment, variants=[{"name": "A", "content": "x"}]), format="json"
    )
    assert both.status_code == 400
    assert both.json()["errors"] == {"content": ["Give either variants or content, not both."]}
    assert not Campaign.objects.exists()


def test_a_patch_giving_a_variant_without_its_name_changes_nothing(
    client: APIClient, segment: Segment
) -> None:
    campaign = make_campaign(segment)
    response = client.patch(
        f"{LIST_URL}/{campaign.pk}", {"variants": [{"content": "新文案"}]}, format="json"
    )
    assert response.status_code == 400
    # DRF keys a partial update's list errors by index.
    assert response.json()["errors"] == {"variants.0.name": ["This field is required."]}
    assert list(campaign.variants.values_list("name", "content")) == [("A", "新品上市")]


def test_a_change_the_service_refuses_changes_nothing(client: APIClient, segment: Segment) -> None:
    campaign = make_campaign(segment, name="周年庆")
    response = client.patch(
        f"{LIST_URL}/{campaign.pk}",
        {"name": "新名字", "include_segment_ids": [segment.pk, 999999]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"include_segment_ids": ["No such segments: [999999]."]}
    campaign.refresh_from_db()
    assert campaign.name == "周年庆"
    assert list(campaign.include_segments.values_list("pk", flat=True)) == [segment.pk]


def test_scopes_deny_by_default(
    api_client_with_scopes: Callable[..., APIClient], anonymous_client: APIClient, segment: Segment
) -> None:
    campaign = make_campaign(segment)
    assert anonymous_client.get(LIST_URL).status_code in (401, 403)
    reader = api_client_with_scopes("campaigns:read")
    assert reader.get(LIST_URL).status_code == 200
    assert reader.get(f"{LIST_URL}/{campaign.pk}/deliveries").status_code == 200
    assert reader.post(LIST_URL, campaign_body(segment), format="json").status_code == 403
    for action in ("launch", "pause", "resume", "cancel"):
        assert reader.post(f"{LIST_URL}/{campaign.pk}/{action}").status_code == 403
    assert reader.delete(f"{LIST_URL}/{campaign.pk}").status_code == 403
    other = api_client_with_scopes("segments:read", "segments:write", "customers:read")
    assert other.get(LIST_URL).status_code == 403
    assert other.post(f"{LIST_URL}/{campaign.pk}/launch").status_code == 403
    customer = CustomerFactory()
    assert other.get(f"/api/v1/customers/{customer.pk}/deliveries").status_code == 403
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.DRAFT
    assert Campaign.objects.count() == 1


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/launch"),
        ("post", "/pause"),
        ("post", "/resume"),
        ("post", "/cancel"),
        ("get", "/deliveries"),
    ],
)
def test_an_unknown_campaign_is_404(client: APIClient, method: str, suffix: str) -> None:
    response = getattr(client, method)(f"{LIST_URL}/999999{suffix}", {}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "campaign_not_found"


def test_launch_pause_resume_cancel(
    client: APIClient, segment: Segment, django_capture_on_commit_callbacks: Callable
) -> None:
    # No holdout: every delivery is reserved, so that pausing puts all three back in the queue
    # (a held-out member would stay held out). No quiet hours: the default ones (21:00-09:00
    # business time) would leave the deliveries pending when the test runs in them.
    body = campaign_body(segment, holdout_share="0", quiet_hours_start=None, quiet_hours_end=None)
    campaign_id = client.post(LIST_URL, body, format="json").json()["id"]
    url = f"{LIST_URL}/{campaign_id}"

    def refused(action: str, state: str) -> None:
        response = client.post(f"{url}/{action}")
        assert response.status_code == 409, action
        assert response.json()["code"] == "campaign_wrong_state"
        assert response.json()["errors"] == {"state": [state]}
        assert Campaign.objects.get(pk=campaign_id).state == state

    refused("pause", "draft")
    refused("resume", "draft")
    refused("cancel", "draft")

    with django_capture_on_commit_callbacks() as callbacks:
        launched = client.post(f"{url}/launch")
    assert launched.status_code == 200
    assert launched.json()["state"] == "sending"
    assert launched.json()["launched_at"] is not None
    assert len(callbacks) == 1  # planning queued after commit
    assert campaign_plan(campaign_id=campaign_id) == 3
    planned = statuses(Campaign.objects.get(pk=campaign_id))
    assert planned == {"reserved": 3}
    assert client.get(url).json()["delivery_counts"] == NO_DELIVERIES | planned

    refused("launch", "sending")
    refused("resume", "sending")
    changed = client.patch(url, {"name": "改名"}, format="json")
    assert changed.status_code == 409
    assert changed.json()["code"] == "campaign_not_a_draft"
    deleted = client.delete(url)
    assert deleted.status_code == 409
    assert deleted.json()["code"] == "campaign_not_a_draft"
    assert Campaign.objects.get(pk=campaign_id).name == "春季上新"

    paused = client.post(f"{url}/pause")
    assert (paused.status_code, paused.json()["state"]) == (200, "paused")
    # Reserved sends went back to the queue.
    assert paused.json()["delivery_counts"] == NO_DELIVERIES | {"pending": 3}
    refused("pause", "paused")
    resumed = client.post(f"{url}/resume")
    assert (resumed.status_code, resumed.json()["state"]) == (200, "sending")

    cancelled = client.post(f"{url}/cancel")
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["state"] == "cancelled"
    assert body["finished_at"] is not None
    assert body["delivery_counts"] == NO_DELIVERIES | {"cancelled": 3}
    deliveries = client.get(f"{url}/deliveries").json()["results"]
    assert [(d["status"], d["reason"]) for d in deliveries] == [
        ("cancelled", "campaign_cancelled")
    ] * 3
    for action in ("launch", "pause", "resume", "cancel"):
        refused(action, "cancelled")


def test_a_campaign_s_deliveries_filter_by_status_reason_holdout_and_variant(
    client: APIClient,
) -> None:
    customers = wecom_customers(6)
    opt_out(customers[0], at=customers[0].created_at)
    campaign = make_campaign(
        audience(customers),
        variants=[VariantInput(name="A", content="甲"), VariantInput(name="B", content="乙")],
    )
    campaign_launch(campaign_id=campaign.pk, actor="test")
    assert campaign_plan(campaign_id=campaign.pk) == 6
    # A holdout member, set by hand: the stable hash decides who, which a test cannot pin.
    held = (
        Delivery.objects.filter(campaign=campaign)
        .exclude(customer=customers[0])
        .order_by("pk")
        .first()
    )
    assert held is not None
    Delivery.objects.filter(pk=held.pk).update(
        is_holdout=True, status=DeliveryStatus.HELD_OUT, variant=None
    )
    url = f"{LIST_URL}/{campaign.pk}/deliveries"

    def ids(**params: Any) -> list[int]:
        response = client.get(url, params)
        assert response.status_code == 200, response.json()
        return [d["id"] for d in response.json()["results"]]

    everyone = Delivery.objects.filter(campaign=campaign)
    assert ids() == sorted(everyone.values_list("pk", flat=True), reverse=True)
    suppressed = everyone.get(customer=customers[0])
    assert ids(status="suppressed") == [suppressed.pk]
    assert ids(reason="opted_out") == [suppressed.pk]
    assert ids(is_holdout="true") == [held.pk]
    assert len(ids(is_holdout="false")) == 5
    for name in ("A", "B"):
        expected = everyone.filter(variant__name=name).values_list("pk", flat=True)
        assert ids(variant=name) == sorted(expected, reverse=True)
    assert len(ids(variant="A")) + len(ids(variant="B")) == 5  # the holdout has none
    row = next(d for d in client.get(url).json()["results"] if d["id"] == suppressed.pk)
    assert (row["customer_id"], row["status"], row["reason"], row["is_holdout"]) == (
        customers[0].pk,
        "suppressed",
        "opted_out",
        False,
    )
    assert row["variant"] in ("A", "B")
    bad = client.get(url, {"status": "lost"})
    assert bad.status_code == 400
    assert "status" in bad.json()["errors"]


def test_deliveries_page_by_cursor(client: APIClient) -> None:
    campaign = make_campaign(audience(wecom_customers(5)))
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    first = client.get(f"{LIST_URL}/{campaign.pk}/deliveries", {"page_size": 3}).json()
    second = client.get(first["next"]).json()
    seen = [d["id"] for d in first["results"] + second["results"]]
    assert seen == sorted(
        Delivery.objects.filter(campaign=campaign).values_list("pk", flat=True), reverse=True
    )
    assert second["next"] is None


def test_list_filters_newest_first(client: APIClient, segment: Segment) -> None:
    older = make_campaign(segment, name="老活动", labels=["promo"])
    hook = make_campaign(
        segment,
        name="回调",
        channel="webhook",
        consent_channel="sms",
        webhook_url="https://example.com/hook",
    )
    newer = make_campaign(segment, name="新活动 promo", labels=["vip", "promo"])
    campaign_launch(campaign_id=newer.pk, actor="test")

    def names(**params: str) -> list[str]:
        response = client.get(LIST_URL, params)
        assert response.status_code == 200
        return [c["name"] for c in response.json()["results"]]

    assert names() == ["新活动 promo", "回调", "老活动"]
    assert names(state="sending") == ["新活动 promo"]
    assert names(state="draft") == ["回调", "老活动"]
    assert names(channel="webhook") == ["回调"]
    assert names(label="promo") == ["新活动 promo", "老活动"]
    assert names(label="vip") == ["新活动 promo"]
    assert names(search="活动") == ["新活动 promo", "老活动"]
    assert client.get(LIST_URL, {"state": "lost"}).status_code == 400
    assert older.pk < hook.pk < newer.pk


def test_the_list_costs_the_same_queries_for_1_or_10_campaigns(
    client: APIClient, segment: Segment
) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(LIST_URL)
        assert response.status_code == 200
        return len(captured)

    launched = make_campaign(segment, name="已发")
    campaign_launch(campaign_id=launched.pk, actor="test")
    campaign_plan(campaign_id=launched.pk)
    client.get(LIST_URL)  # warm-up: the key's first use is recorded
    one = queries()
    other = audience(wecom_customers(2), name="其他")
    for number in range(9):
        campaign = make_campaign(
            segment,
            name=f"活动{number}",
            include_segment_ids=[segment.pk, other.pk],
            exclude_segment_ids=[],
        )
        campaign_launch(campaign_id=campaign.pk, actor="test")
        campaign_plan(campaign_id=campaign.pk)
    ten = queries()
    assert ten == one
    results = client.get(LIST_URL).json()["results"]
    assert len(results) == 10
    assert results[0]["include_segment_ids"] == sorted([segment.pk, other.pk])
    newest, oldest = Campaign.objects.get(name="活动8"), launched
    assert (results[0]["id"], results[-1]["id"]) == (newest.pk, oldest.pk)
    assert results[0]["delivery_counts"] == NO_DELIVERIES | statuses(newest)
    assert results[-1]["delivery_counts"] == NO_DELIVERIES | statuses(oldest)
    assert sum(statuses(newest).values()) == 5


def test_customer_deliveries_in_the_last_days(
    client: APIClient, api_client_with_scopes: Callable[..., APIClient]
) -> None:
    customer, other = wecom_customers(2)
    recent = make_campaign(audience([customer, other], name="近"), name="近期活动")
    old = make_campaign(audience([customer], name="远"), name="老活动", channel="wecom_customer")
    for campaign in (recent, old):
        campaign_launch(campaign_id=campaign.pk, actor="test")
        campaign_plan(campaign_id=campaign.pk)
    forty_days_ago = timezone.now() - timedelta(days=40)
    Delivery.objects.filter(campaign=old).update(
        planned_at=forty_days_ago, reserved_at=forty_days_ago, sent_at=forty_days_ago
    )
    Delivery.objects.filter(campaign=recent, customer=customer).update(
        status=DeliveryStatus.SENT, reserved_at=timezone.now(), sent_at=timezone.now()
    )
    url = f"/api/v1/customers/{customer.pk}/deliveries"
    response = client.get(url)
    assert response.status_code == 200
    (row,) = response.json()["results"]
    delivery = Delivery.objects.get(campaign=recent, customer=customer)
    assert {k: row[k] for k in ("id", "campaign_id", "campaign_name", "channel")} == {
        "id": delivery.pk,
        "campaign_id": recent.pk,
        "campaign_name": "近期活动",
        "channel": "wecom_customer",
    }
    assert (row["status"], row["reason"], row["is_holdout"], row["variant"]) == (
        "sent",
        "",
        False,
        "A",
    )
    assert row["reserved_at"] is not None and row["sent_at"] is not None

    older = client.get(url, {"days": 60}).json()["results"]
    assert [d["campaign_name"] for d in older] == ["老活动", "近期活动"]
    for days in ("0", "366", "soon"):
        bad = client.get(url, {"days": days})
        assert bad.status_code == 400
        assert "days" in bad.json()["errors"]
    missing = client.get("/api/v1/customers/999999/deliveries")
    assert missing.status_code == 404
    assert missing.json()["code"] == "customer_not_found"
    reader = api_client_with_scopes("campaigns:read")
    assert reader.get(url).status_code == 200
