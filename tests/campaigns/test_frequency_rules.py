"""Frequency rules: validation shared by API and admin, the API's routes and scopes, the
platform preset, and the windows in business time."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from campaigns.models import FrequencyRule
from campaigns.selectors import frequency_rule_list
from tests.factories import FrequencyRuleFactory

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
LIST_URL = "/api/v1/frequency-rules"


def rolling(**overrides: object) -> dict:
    body = {
        "name": "Two a day",
        "scope": "all_channels",
        "max_count": 2,
        "window_kind": "rolling",
        "window_hours": 24,
    }
    body.update(overrides)
    return body


def test_the_wecom_platform_limit_is_preset() -> None:
    preset = FrequencyRule.objects.get(is_platform_preset=True)
    assert (preset.scope, preset.channel, preset.max_count) == ("channel", "wecom_customer", 1)
    assert (preset.window_kind, preset.calendar_unit, preset.is_active) == ("calendar", "day", True)


def test_create_read_change_delete(api_client_with_scopes) -> None:
    client = api_client_with_scopes("campaigns:read", "campaigns:write")
    created = client.post(LIST_URL, rolling(), format="json")
    assert created.status_code == 201
    body = created.json()
    assert (body["max_count"], body["window_hours"], body["on_hit"]) == (2, 24, "skip")
    url = f"{LIST_URL}/{body['id']}"
    assert client.get(url).json()["name"] == "Two a day"

    changed = client.patch(
        url, {"on_hit": "defer", "max_delay_hours": 12, "label": ""}, format="json"
    )
    assert changed.status_code == 200
    assert (changed.json()["on_hit"], changed.json()["max_delay_hours"]) == ("defer", 12)
    assert changed.json()["max_count"] == 2  # left out, kept

    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    assert not FrequencyRule.objects.filter(name="Two a day").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (rolling(scope="channel"), "channel"),
        (rolling(scope="label"), "label"),
        (rolling(channel="webhook"), "channel"),
        (rolling(window_hours=None), "window_hours"),
        (rolling(window_hours=24 * 400), "window_hours"),
        (rolling(calendar_unit="day"), "calendar_unit"),
        (rolling(window_kind="calendar"), "calendar_unit"),
        (rolling(on_hit="defer"), "max_delay_hours"),
        (rolling(max_delay_hours=5), "max_delay_hours"),
    ],
)
def test_an_incoherent_rule_is_refused_naming_the_field(
    api_client_with_scopes, body: dict, field: str
) -> None:
    client = api_client_with_scopes("campaigns:write")
    before = FrequencyRule.objects.count()
    response = client.post(LIST_URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_frequency_rule"
    assert field in response.json()["errors"]
    assert FrequencyRule.objects.count() == before


def test_the_platform_preset_is_kept(api_client_with_scopes) -> None:
    client = api_client_with_scopes("campaigns:write")
    preset = FrequencyRule.objects.get(is_platform_preset=True)
    response = client.delete(f"{LIST_URL}/{preset.pk}")
    assert response.status_code == 409
    assert response.json()["code"] == "frequency_rule_preset_kept"
    assert FrequencyRule.objects.filter(pk=preset.pk).exists()
    changed = client.patch(f"{LIST_URL}/{preset.pk}", {"is_active": False}, format="json")
    assert changed.status_code == 200
    assert changed.json()["is_active"] is False


def test_the_database_refuses_what_clean_refuses() -> None:
    rule = FrequencyRule.objects.get(is_platform_preset=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        FrequencyRule.objects.filter(pk=rule.pk).update(window_kind="rolling", calendar_unit="")
    with pytest.raises(IntegrityError), transaction.atomic():
        FrequencyRule.objects.filter(pk=rule.pk).update(on_hit="defer")
    with pytest.raises(IntegrityError), transaction.atomic():
        FrequencyRule.objects.filter(pk=rule.pk).update(max_count=0)


def test_field_shapes_are_checked_before_the_rule(api_client_with_scopes) -> None:
    client = api_client_with_scopes("campaigns:write")
    response = client.post(LIST_URL, rolling(max_count=0, scope="everywhere"), format="json")
    assert response.status_code == 400
    assert {"max_count", "scope"} <= set(response.json()["errors"])


def test_a_change_that_breaks_the_rule_is_refused_and_nothing_changes(
    api_client_with_scopes,
) -> None:
    client = api_client_with_scopes("campaigns:write")
    rule_id = client.post(LIST_URL, rolling(), format="json").json()["id"]
    response = client.patch(f"{LIST_URL}/{rule_id}", {"scope": "label"}, format="json")
    assert response.status_code == 400
    assert FrequencyRule.objects.get(pk=rule_id).scope == "all_channels"


def test_scopes_deny_by_default(api_client_with_scopes, anonymous_client) -> None:
    assert anonymous_client.get(LIST_URL).status_code in (401, 403)
    reader = api_client_with_scopes("campaigns:read")
    assert reader.get(LIST_URL).status_code == 200
    assert reader.post(LIST_URL, rolling(), format="json").status_code == 403
    other = api_client_with_scopes("segments:read", "segments:write")
    assert other.get(LIST_URL).status_code == 403
    assert not FrequencyRule.objects.filter(name="Two a day").exists()


def test_list_filters_by_channel_and_activity(api_client_with_scopes) -> None:
    client = api_client_with_scopes("campaigns:read", "campaigns:write")
    client.post(LIST_URL, rolling(name="all"), format="json")
    client.post(LIST_URL, rolling(name="hooks", scope="channel", channel="webhook"), format="json")
    client.post(LIST_URL, rolling(name="promo", scope="label", label="promo"), format="json")
    client.post(LIST_URL, rolling(name="off", is_active=False), format="json")
    names = {r["name"] for r in client.get(LIST_URL, {"channel": "webhook"}).json()["results"]}
    assert names == {"all", "hooks", "promo", "off"}
    names = {r["name"] for r in client.get(LIST_URL, {"is_active": "false"}).json()["results"]}
    assert names == {"off"}
    assert {r.name for r in frequency_rule_list(channel="wecom_customer", is_active=True)} == {
        "all",
        "promo",
        "企业微信平台群发限制",
    }


def test_the_admin_validates_like_the_api(admin_client) -> None:
    url = reverse("admin:campaigns_frequencyrule_add")
    base = {
        "name": "Weekly promo",
        "description": "",
        "is_active": "on",
        "scope": "label",
        "channel": "",
        "label": "",
        "max_count": "1",
        "window_kind": "calendar",
        "window_hours": "",
        "calendar_unit": "week",
        "on_hit": "skip",
        "max_delay_hours": "",
    }
    refused = admin_client.post(url, base)
    assert refused.status_code == 200
    assert "按标签限制的规则须指定标签" in refused.content.decode()  # operators read Chinese
    assert not FrequencyRule.objects.filter(name="Weekly promo").exists()

    saved = admin_client.post(url, {**base, "label": "promo"})
    assert saved.status_code == 302
    rule = FrequencyRule.objects.get(name="Weekly promo")
    assert (rule.label, rule.calendar_unit) == ("promo", "week")
    changelist = admin_client.get(reverse("admin:campaigns_frequencyrule_changelist"))
    assert "Weekly promo" in changelist.content.decode()


def _calendar(unit: str) -> FrequencyRule:
    return FrequencyRuleFactory.build(window_kind="calendar", window_hours=None, calendar_unit=unit)


def test_calendar_windows_are_taken_in_business_time(settings) -> None:
    settings.TIME_ZONE = "Asia/Shanghai"
    # Monday 2026-11-30 23:30 in Shanghai is 15:30 UTC the same day.
    at = datetime(2026, 11, 30, 15, 30, tzinfo=UTC)
    assert _calendar("day").window_start(at) == datetime(2026, 11, 30, tzinfo=SHANGHAI)
    assert _calendar("week").window_start(at) == datetime(2026, 11, 30, tzinfo=SHANGHAI)
    assert _calendar("month").window_start(at) == datetime(2026, 11, 1, tzinfo=SHANGHAI)
    # 16:30 UTC is already Tuesday 00:30 in Shanghai: a new day, the same week.
    later = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)
    assert _calendar("day").window_start(later) == datetime(2026, 12, 1, tzinfo=SHANGHAI)
    assert _calendar("week").window_start(later) == datetime(2026, 11, 30, tzinfo=SHANGHAI)
    assert _calendar("month").window_start(later) == datetime(2026, 12, 1, tzinfo=SHANGHAI)


def test_a_window_frees_at_its_next_start_or_when_the_oldest_send_leaves(settings) -> None:
    settings.TIME_ZONE = "Asia/Shanghai"
    at = datetime(2026, 12, 31, 10, 0, tzinfo=SHANGHAI)
    oldest = datetime(2026, 12, 30, 12, 0, tzinfo=SHANGHAI)
    assert _calendar("day").window_frees_at(oldest, at) == datetime(2027, 1, 1, tzinfo=SHANGHAI)
    assert _calendar("week").window_frees_at(oldest, at) == datetime(2027, 1, 4, tzinfo=SHANGHAI)
    assert _calendar("month").window_frees_at(oldest, at) == datetime(2027, 1, 1, tzinfo=SHANGHAI)
    rule = FrequencyRuleFactory.build(window_hours=48)
    assert rule.window_start(at) == datetime(2026, 12, 29, 10, 0, tzinfo=SHANGHAI)
    assert rule.window_frees_at(oldest, at) == datetime(2027, 1, 1, 12, 0, tzinfo=SHANGHAI)
