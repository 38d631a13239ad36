"""The admin of tags both ways: a tag group's mirror switch and WeCom id, and the read-only
list of tag pushes (标签同步记录)."""

import pytest
from django.test import Client
from django.urls import reverse

from crm.models import TagPushStatus, WeComTagPush
from tests.factories.crm import CustomerFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db


def test_a_tag_group_is_mirrored_from_its_form_and_shows_its_wecom_id(
    admin_client_en: Client,
) -> None:
    group = TagGroupFactory(name="会员等级", wecom_group_id="etGROUP")
    url = reverse("admin:crm_taggroup_change", args=[group.pk])

    page = admin_client_en.get(url).content.decode()
    assert "Mirrored to WeCom" in page
    assert "etGROUP" in page
    assert 'name="wecom_group_id"' not in page  # read-only

    response = admin_client_en.post(
        url,
        {
            "name": "会员等级",
            "description": "",
            "is_wecom_mirrored": "on",
            "wecom_group_id": "etFORGED",
        },
    )
    assert response.status_code == 302
    group.refresh_from_db()
    assert (group.is_wecom_mirrored, group.wecom_group_id) == (True, "etGROUP")

    admin_client_en.post(url, {"name": "会员等级", "description": ""})
    group.refresh_from_db()
    assert group.is_wecom_mirrored is False


def test_tag_pushes_are_listed_with_their_outcome_and_cannot_be_edited(
    admin_client_en: Client,
) -> None:
    tag = TagFactory(name="高意向", group=TagGroupFactory(name="意向"))
    customer = CustomerFactory(display_name="王五")
    WeComTagPush.objects.create(
        customer=customer, tag=tag, action="add", status=TagPushStatus.FAILED, error_code="84061"
    )
    WeComTagPush.objects.create(customer=customer, tag=tag, action="remove")

    page = admin_client_en.get(reverse("admin:crm_wecomtagpush_changelist")).content.decode()

    assert "王五" in page and "意向/高意向" in page
    assert "No longer this staff member&#x27;s customer in WeCom" in page
    assert "84061" not in page
    assert "Take away" in page and "Waiting" in page
    assert admin_client_en.get(reverse("admin:crm_wecomtagpush_add")).status_code == 403
