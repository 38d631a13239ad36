"""Every change to campaigns and frequency rules writes exactly one audit event with the actor
who made it and the fields before -> after (a signing secret only as "changed"), through the
service, the API or the admin; a refused change writes none."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, FrequencyRule
from campaigns.services.campaigns import (
    campaign_cancel,
    campaign_delete,
    campaign_launch,
    campaign_pause,
    campaign_resume,
    campaign_update,
    campaign_webhook_secret_rotate,
)
from campaigns.services.frequency_rules import (
    frequency_rule_create,
    frequency_rule_delete,
    frequency_rule_update,
)
from core.errors import DomainError
from core.models import ApiKey, AuditAction, AuditEvent
from core.services.audit import SECRET_CHANGED
from segments.models import Segment
from tests.campaigns.support import campaign_body, make_campaign, webhook_campaign
from tests.factories import FrequencyRuleFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/campaigns"


def _events_after(marker: int) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(pk__gt=marker).exclude(object_type="api_key").order_by("id")
    )


def _marker() -> int:
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    return last or 0


def _one_event_after(marker: int) -> AuditEvent:
    events = _events_after(marker)
    assert len(events) == 1, [(e.action, e.object_type, e.detail) for e in events]
    return events[0]


def test_a_campaign_create_records_its_settings() -> None:
    marker = _marker()
    campaign = make_campaign(name="双十一预热")
    event = _one_event_after(marker)
    assert (event.actor, event.action, event.object_type, event.object_id) == (
        "test",
        AuditAction.CREATE,
        "campaign",
        str(campaign.pk),
    )
    after = event.detail["after"]
    assert after["name"] == "双十一预热"
    assert after["state"] == "draft"
    assert after["variants"] == [{"name": "A", "content": "新品上市", "weight": 1}]
    assert event.detail["before"] == {}


def test_a_webhook_campaign_never_writes_its_secret() -> None:
    marker = _marker()
    campaign = webhook_campaign()
    created = _one_event_after(marker)
    assert created.detail["after"]["webhook_secret"] == SECRET_CHANGED
    marker = _marker()
    rotated = campaign_webhook_secret_rotate(campaign_id=campaign.pk, actor="user:9")
    event = _one_event_after(marker)
    assert event.actor == "user:9"
    assert event.detail == {
        "before": {"webhook_secret": SECRET_CHANGED},
        "after": {"webhook_secret": SECRET_CHANGED},
        "operation": "rotate_webhook_secret",
    }
    everything = str(list(AuditEvent.objects.values_list("detail", flat=True)))
    assert rotated.issued_webhook_secret not in everything
    assert rotated.webhook_secret_encrypted not in everything


def _launched(**overrides: Any) -> Campaign:
    campaign = make_campaign(**overrides)
    campaign_launch(campaign_id=campaign.pk, actor="test")
    return campaign


@pytest.mark.parametrize(
    ("prepare", "act", "operation", "before", "after"),
    [
        (make_campaign, campaign_launch, "launch", "draft", "sending"),
        (_launched, campaign_pause, "pause", "sending", "paused"),
        (
            lambda: campaign_pause(campaign_id=_launched().pk, actor="test"),
            campaign_resume,
            "resume",
            "paused",
            "sending",
        ),
        (_launched, campaign_cancel, "cancel", "sending", "cancelled"),
    ],
    ids=["launch", "pause", "resume", "cancel"],
)
def test_each_state_change_is_one_event(prepare, act, operation, before, after) -> None:
    campaign = prepare()
    marker = _marker()
    act(campaign_id=campaign.pk, actor="user:9")
    event = _one_event_after(marker)
    assert (event.actor, event.action, event.object_id) == (
        "user:9",
        AuditAction.CHANGE,
        str(campaign.pk),
    )
    assert event.detail == {
        "before": {"state": before},
        "after": {"state": after},
        "operation": operation,
    }


def test_a_launch_at_a_later_time_records_the_scheduled_state() -> None:
    campaign = make_campaign(schedule_kind="at", scheduled_at=timezone.now() + timedelta(days=1))
    marker = _marker()
    campaign_launch(campaign_id=campaign.pk, actor="user:9")
    assert _one_event_after(marker).detail["after"] == {"state": "scheduled"}


def test_an_update_records_only_what_changed_and_a_delete_what_it_was() -> None:
    campaign = make_campaign(name="旧名")
    marker = _marker()
    campaign_update(
        campaign_id=campaign.pk, actor="user:9", changes={"name": "新名", "priority": 3}
    )
    event = _one_event_after(marker)
    assert event.detail == {
        "before": {"name": "旧名", "priority": 0},
        "after": {"name": "新名", "priority": 3},
    }
    marker = _marker()
    campaign_delete(campaign_id=campaign.pk, actor="user:9")
    deleted = _one_event_after(marker)
    assert (deleted.action, deleted.object_id) == (AuditAction.DELETE, str(campaign.pk))
    assert deleted.detail["before"]["name"] == "新名"
    assert deleted.detail["after"] == {}


def test_refused_changes_write_nothing() -> None:
    campaign = _launched()
    marker = _marker()
    for refused in (
        lambda: campaign_update(campaign_id=campaign.pk, actor="u", changes={"name": "x"}),
        lambda: campaign_delete(campaign_id=campaign.pk, actor="u"),
        lambda: campaign_resume(campaign_id=campaign.pk, actor="u"),
        lambda: campaign_webhook_secret_rotate(campaign_id=campaign.pk, actor="u"),
        lambda: frequency_rule_create(actor="u", name="坏规则", scope="all", max_count=0),
    ):
        with pytest.raises(DomainError):
            refused()
    assert _events_after(marker) == []


# --- Frequency rules ---


def test_frequency_rule_create_update_delete_are_one_event_each() -> None:
    marker = _marker()
    rule = frequency_rule_create(
        actor="user:9",
        name="每日一次",
        scope="all_channels",
        max_count=1,
        window_kind="rolling",
        window_hours=24,
    )
    frequency_rule_update(rule_id=rule.pk, actor="api_key:ops:abc", max_count=2)
    frequency_rule_delete(rule_id=rule.pk, actor="user:9")
    created, changed, deleted = _events_after(marker)
    assert (created.actor, created.action, created.object_type) == (
        "user:9",
        AuditAction.CREATE,
        "frequency_rule",
    )
    assert created.detail["after"]["max_count"] == 1
    assert (changed.actor, changed.detail) == (
        "api_key:ops:abc",
        {"before": {"max_count": 1}, "after": {"max_count": 2}},
    )
    assert (deleted.action, deleted.object_id) == (AuditAction.DELETE, str(rule.pk))
    assert {e.object_id for e in (created, changed, deleted)} == {str(rule.pk)}


# --- The same actions from the API and the admin: one event each, the caller as actor. ---


def test_every_api_write_is_one_event_by_the_key(
    api_client_with_scopes: Callable[..., Any], segment: Segment
) -> None:
    client = api_client_with_scopes("campaigns:read", "campaigns:write", "segments:read")
    prefix = ApiKey.objects.get(name="test").prefix
    marker = _marker()
    body = campaign_body(segment, holdout_share="0", quiet_hours_start=None, quiet_hours_end=None)
    campaign_id = client.post(LIST_URL, body, format="json").json()["id"]
    url = f"{LIST_URL}/{campaign_id}"
    assert client.patch(url, {"priority": 2}, format="json").status_code == 200
    for action in ("launch", "pause", "resume", "cancel"):
        assert client.post(f"{url}/{action}").status_code == 200, action
    rule = client.post(
        "/api/v1/frequency-rules",
        {
            "name": "每周两次",
            "scope": "all_channels",
            "max_count": 2,
            "window_kind": "rolling",
            "window_hours": 168,
        },
        format="json",
    ).json()
    assert (
        client.patch(
            f"/api/v1/frequency-rules/{rule['id']}", {"max_count": 3}, format="json"
        ).status_code
        == 200
    )
    assert client.delete(f"/api/v1/frequency-rules/{rule['id']}").status_code == 204
    events = _events_after(marker)
    assert [(e.object_type, e.action, e.detail.get("operation", "")) for e in events] == [
        ("campaign", AuditAction.CREATE, ""),
        ("campaign", AuditAction.CHANGE, ""),
        ("campaign", AuditAction.CHANGE, "launch"),
        ("campaign", AuditAction.CHANGE, "pause"),
        ("campaign", AuditAction.CHANGE, "resume"),
        ("campaign", AuditAction.CHANGE, "cancel"),
        ("frequency_rule", AuditAction.CREATE, ""),
        ("frequency_rule", AuditAction.CHANGE, ""),
        ("frequency_rule", AuditAction.DELETE, ""),
    ]
    assert {e.actor for e in events} == {f"api_key:test:{prefix}"}


def test_admin_actions_are_one_event_per_campaign(admin_client_en: Client, admin_user) -> None:
    first, second = make_campaign(), make_campaign()
    marker = _marker()
    response = admin_client_en.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": "launch", "_selected_action": [first.pk, second.pk], "confirm": "yes"},
    )
    assert response.status_code == 302
    events = _events_after(marker)
    assert sorted(e.object_id for e in events) == sorted([str(first.pk), str(second.pk)])
    assert {(e.actor, e.detail["operation"]) for e in events} == {
        (f"user:{admin_user.pk}", "launch")
    }


def test_admin_frequency_rule_save_and_delete_are_one_event_each(
    admin_client_en: Client, admin_user
) -> None:
    rule = FrequencyRuleFactory(name="每日一次")
    marker = _marker()
    url = reverse("admin:campaigns_frequencyrule_change", args=[rule.pk])
    response = admin_client_en.post(
        url,
        {
            "name": "每日一次",
            "description": "",
            "is_active": "on",
            "scope": "all_channels",
            "channel": "",
            "label": "",
            "max_count": "2",
            "window_kind": "rolling",
            "window_hours": "24",
            "calendar_unit": "",
            "on_hit": "skip",
            "max_delay_hours": "",
        },
    )
    assert response.status_code == 302
    deleted = admin_client_en.post(
        reverse("admin:campaigns_frequencyrule_delete", args=[rule.pk]), {"post": "yes"}
    )
    assert deleted.status_code == 302
    changed, gone = _events_after(marker)
    assert changed.detail == {"before": {"max_count": 1}, "after": {"max_count": 2}}
    assert gone.action == AuditAction.DELETE
    assert {changed.actor, gone.actor} == {f"user:{admin_user.pk}"}
    assert not FrequencyRule.objects.filter(pk=rule.pk).exists()
