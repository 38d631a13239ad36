"""The tag API names a group's mirroring to WeCom and the WeCom ids of groups and tags."""

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from crm.models import TagGroup
from tests.factories.crm import TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db


def test_a_group_is_mirrored_through_the_api_and_its_wecom_ids_are_read_only(
    api_client_with_scopes: Callable[..., APIClient],
) -> None:
    client = api_client_with_scopes("tags")
    created = client.post(
        "/api/v1/tag-groups",
        {"name": "购买意向", "is_wecom_mirrored": True, "wecom_group_id": "etFORGED"},
        format="json",
    )
    assert created.status_code == 201
    assert (created.json()["is_wecom_mirrored"], created.json()["wecom_group_id"]) == (True, None)

    group = TagGroupFactory(name="会员等级", wecom_group_id="etG1", is_wecom_mirrored=True)
    TagFactory(group=group, name="金卡", wecom_tag_id="etT1")
    # A partial update leaves the switch as it is.
    client.patch(f"/api/v1/tag-groups/{group.pk}", {"description": "等级"}, format="json")
    assert TagGroup.objects.get(pk=group.pk).is_wecom_mirrored is True
    switched = client.patch(
        f"/api/v1/tag-groups/{group.pk}", {"is_wecom_mirrored": False}, format="json"
    ).json()
    assert (switched["is_wecom_mirrored"], switched["wecom_group_id"]) == (False, "etG1")
    tags = client.get("/api/v1/tags", {"group": group.pk}).json()["results"]
    assert [t["wecom_tag_id"] for t in tags] == ["etT1"]
