"""The CRM's lists at scale: tag and group-chat counts read per listed row (a tag held by very
many customers shows the statistics' estimate), orders searched by their whole number and
filtered by date."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import crm.admin
from core.admin import EstimatedCount
from tests.factories import (
    CustomerTagFactory,
    GroupFactory,
    GroupMembershipFactory,
    OrderFactory,
    TagFactory,
)

pytestmark = pytest.mark.django_db


def listed(client: Client, name: str, **query: str) -> list[object]:
    page = client.get(reverse(f"admin:crm_{name}_changelist"), query)
    assert page.status_code == 200
    return list(page.context["cl"].result_list)


def test_the_tags_list_counts_each_tags_holders(admin_client_en: Client) -> None:
    held = TagFactory(name="敏感肌")
    TagFactory(name="油皮")
    CustomerTagFactory.create_batch(3, tag=held)

    counts = {tag.name: tag.customer_count for tag in listed(admin_client_en, "tag")}

    assert counts == {"敏感肌": 3, "油皮": 0}
    assert not any(isinstance(count, EstimatedCount) for count in counts.values())


def test_a_tag_held_by_many_shows_the_statistics_estimate(
    admin_client_en: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crm.admin, "EXACT_COUNT_LIMIT", 5)
    monkeypatch.setattr("core.admin.EXACT_COUNT_LIMIT", 5)
    many, few = TagFactory(name="敏感肌"), TagFactory(name="油皮")
    CustomerTagFactory.create_batch(12, tag=many)
    CustomerTagFactory.create_batch(4, tag=few)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_customertag")

    counts = {tag.name: tag.customer_count for tag in listed(admin_client_en, "tag")}
    page = admin_client_en.get(reverse("admin:crm_tag_changelist")).content.decode()

    assert counts == {"敏感肌": 12, "油皮": 4}
    assert isinstance(counts["敏感肌"], EstimatedCount)
    assert not isinstance(counts["油皮"], EstimatedCount)
    assert "about 12" in page


def test_the_groups_list_counts_current_members_only(admin_client_en: Client) -> None:
    group = GroupFactory(name="会员福利群")
    GroupFactory(name="新品体验群")
    GroupMembershipFactory.create_batch(2, group=group)
    left = GroupMembershipFactory(group=group)
    left.left_at = left.joined_at + timedelta(days=1)
    left.save()

    counts = {row.name: row.member_count for row in listed(admin_client_en, "group")}

    assert counts == {"会员福利群": 2, "新品体验群": 0}


def test_orders_are_searched_by_their_whole_number(admin_client_en: Client) -> None:
    order = OrderFactory(external_id="DM0000012345")
    OrderFactory(external_id="DM0000012346")

    assert listed(admin_client_en, "order", q="DM0000012345") == [order]
    assert listed(admin_client_en, "order", q="12345") == []


def test_orders_are_filtered_by_the_date_paid(admin_client_en: Client) -> None:
    recent = OrderFactory(paid_at=timezone.now() - timedelta(days=1))
    OrderFactory(paid_at=timezone.now() - timedelta(days=40))
    week_ago = timezone.localtime() - timedelta(days=7)
    since = week_ago.replace(hour=0, minute=0, second=0, microsecond=0).isoformat(" ")

    found = listed(admin_client_en, "order", paid_at__gte=since)

    assert found == [recent]
