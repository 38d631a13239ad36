"""The CRM admin writes staff members, tag groups, tags and groups through their services, and
the services' refusals reach the change form on the field they name; the services added for
it: staff members, moving a tag to another group, changing a group's kind or external id."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

import crm.admin
from core.errors import Conflict, NotFound
from crm.models import Customer, CustomerTag, Group, StaffMember, Tag, TagGroup
from crm.services.groups import group_update
from crm.services.staff_members import (
    staff_member_create,
    staff_member_delete,
    staff_member_update,
)
from crm.services.tags import tag_update
from tests.factories import (
    CustomerFactory,
    CustomerTagFactory,
    GroupFactory,
    StaffMemberFactory,
    TagFactory,
    TagGroupFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def service_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the services the CRM admin called, in order (each still runs)."""
    calls: list[str] = []
    names = [
        "customer_create",
        "customer_update",
        "staff_member_create",
        "staff_member_update",
        "staff_member_delete",
        "tag_group_create",
        "tag_group_update",
        "tag_group_delete",
        "tag_create",
        "tag_update",
        "tag_delete",
        "group_create",
        "group_update",
        "group_delete",
    ]
    for name in names:
        service = getattr(crm.admin, name)

        def spy(*args: Any, _service: Callable[..., Any] = service, **kwargs: Any) -> Any:
            calls.append(_service.__name__)
            return _service(*args, **kwargs)

        monkeypatch.setattr(crm.admin, name, spy)
    return calls


# --- Through the admin ----------------------------------------------------------------------


def _inline_management(page: Any) -> dict[str, str]:
    """The management forms of a change page's inlines, with no inline row added."""
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    return data


def test_a_customer_is_added_and_changed_through_the_services(
    admin_client_en: Client, service_calls: list[str]
) -> None:
    owner = StaffMemberFactory(wecom_userid="lisi")
    url = reverse("admin:crm_customer_add")
    form = {
        "display_name": "王小明",
        "gender": "female",
        "source_channel": "douyin",
        "owner": str(owner.pk),
        "member_level": "2",
        "member_points": "30",
    }
    added = admin_client_en.post(url, form | _inline_management(admin_client_en.get(url)))
    assert added.status_code == 302
    customer = Customer.objects.get()
    assert (
        customer.display_name,
        customer.gender,
        customer.source_channel,
        customer.owner_id,
        customer.member_level,
        customer.member_points,
    ) == ("王小明", "female", "douyin", owner.pk, 2, 30)

    url = reverse("admin:crm_customer_change", args=[customer.pk])
    page = admin_client_en.get(url)
    form |= {"display_name": "王明", "owner": ""}
    changed = admin_client_en.post(url, form | _inline_management(page))
    assert changed.status_code == 302
    customer.refresh_from_db()
    assert (customer.display_name, customer.owner_id) == ("王明", None)
    assert service_calls == ["customer_create", "customer_update"]


def test_a_refused_customer_change_is_shown_on_the_form_and_changes_nothing(
    admin_client_en: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customer page answers a service's refusal as every other page does (ServiceAdmin):
    the form again, as entered, with the refusal on it."""
    customer = CustomerFactory(display_name="王小明")

    def refuse(**_: Any) -> Customer:
        raise NotFound("customer_not_found", "No such customer.")

    monkeypatch.setattr(crm.admin, "customer_update", refuse)
    url = reverse("admin:crm_customer_change", args=[customer.pk])
    page = admin_client_en.get(url)
    form = {
        "display_name": "王明",
        "gender": customer.gender,
        "source_channel": customer.source_channel,
        "member_level": str(customer.member_level),
        "member_points": str(customer.member_points),
    }
    refused = admin_client_en.post(url, form | _inline_management(page))

    assert refused.status_code == 200
    shown = refused.context["adminform"].form
    assert shown.non_field_errors() == ["No such customer."]
    assert shown["display_name"].value() == "王明"
    customer.refresh_from_db()
    assert customer.display_name == "王小明"


def test_staff_members_are_added_changed_and_deleted_through_the_service(
    admin_client_en: Client, service_calls: list[str], admin_user: User
) -> None:
    added = admin_client_en.post(
        reverse("admin:crm_staffmember_add"),
        {"wecom_userid": "zhangsan", "name": "张三", "is_active": "on"},
    )
    assert added.status_code == 302
    staff_member = StaffMember.objects.get()
    assert (staff_member.wecom_userid, staff_member.name, staff_member.is_active) == (
        "zhangsan",
        "张三",
        True,
    )
    customer = CustomerFactory(owner=staff_member)

    changed = admin_client_en.post(
        reverse("admin:crm_staffmember_change", args=[staff_member.pk]),
        {"wecom_userid": "zhangsan2", "name": "张三丰"},
    )
    assert changed.status_code == 302
    staff_member.refresh_from_db()
    assert (staff_member.wecom_userid, staff_member.name, staff_member.is_active) == (
        "zhangsan2",
        "张三丰",
        False,
    )

    deleted = admin_client_en.post(
        reverse("admin:crm_staffmember_delete", args=[staff_member.pk]), {"post": "yes"}
    )
    assert deleted.status_code == 302
    assert not StaffMember.objects.exists()
    customer.refresh_from_db()
    assert customer.owner_id is None
    assert service_calls == ["staff_member_create", "staff_member_update", "staff_member_delete"]


def test_tag_groups_are_written_through_the_service_whose_refusal_reaches_the_form(
    admin_client_en: Client, service_calls: list[str]
) -> None:
    added = admin_client_en.post(
        reverse("admin:crm_taggroup_add"), {"name": "肤质", "description": "皮肤类型"}
    )
    assert added.status_code == 302
    group = TagGroup.objects.get()
    dry, oily = TagFactory(group=group, name="干性"), TagFactory(group=group, name="油性")
    customer = CustomerFactory()
    CustomerTagFactory(customer=customer, tag=dry)
    CustomerTagFactory(customer=customer, tag=oily)

    url = reverse("admin:crm_taggroup_change", args=[group.pk])
    refused = admin_client_en.post(
        url, {"name": "肤质类型", "is_exclusive": "on", "description": "皮肤类型"}
    )
    assert refused.status_code == 200
    form = refused.context["adminform"].form
    message = "1 customers hold more than one tag of this group; remove the extra tags first."
    assert form.errors == {"is_exclusive": [message]}
    assert refused.content.decode().count(message) == 1
    assert 'value="肤质类型"' in refused.content.decode()  # as entered
    group.refresh_from_db()
    assert (group.name, group.is_exclusive) == ("肤质", False)

    CustomerTag.objects.filter(tag=oily).delete()
    made_exclusive = admin_client_en.post(
        url, {"name": "肤质类型", "is_exclusive": "on", "description": "皮肤类型"}
    )
    assert made_exclusive.status_code == 302
    group.refresh_from_db()
    assert (group.name, group.is_exclusive) == ("肤质类型", True)
    assert CustomerTag.objects.get().exclusive_group_id == group.pk

    empty = TagGroupFactory(name="空组")
    deleted = admin_client_en.post(
        reverse("admin:crm_taggroup_changelist"),
        {"action": "delete_selected", "_selected_action": [empty.pk], "post": "yes"},
    )
    assert deleted.status_code == 302
    assert list(TagGroup.objects.values_list("name", flat=True)) == ["肤质类型"]
    # The refused change called the service once: the form shown again saves nothing.
    assert service_calls == [
        "tag_group_create",
        "tag_group_update",
        "tag_group_update",
        "tag_group_delete",
    ]


def test_tags_are_written_through_the_service_and_moved_with_their_holdings(
    admin_client_en: Client, service_calls: list[str]
) -> None:
    interests = TagGroupFactory(name="兴趣")
    skin = TagGroupFactory(name="肤质", is_exclusive=True)
    added = admin_client_en.post(
        reverse("admin:crm_tag_add"), {"group": interests.pk, "name": "干性", "description": ""}
    )
    assert added.status_code == 302
    tag = Tag.objects.get()
    customer, other = CustomerFactory(), CustomerFactory()
    CustomerTagFactory(customer=customer, tag=tag)
    CustomerTagFactory(customer=other, tag=tag)
    CustomerTagFactory(customer=other, tag=TagFactory(group=skin, name="油性"))

    url = reverse("admin:crm_tag_change", args=[tag.pk])
    refused = admin_client_en.post(url, {"group": skin.pk, "name": "干性", "description": ""})
    assert refused.status_code == 200
    message = "1 customers hold more than one tag of this group; remove the extra tags first."
    assert refused.context["adminform"].form.errors == {"group": [message]}
    tag.refresh_from_db()
    assert tag.group_id == interests.pk
    assert set(CustomerTag.objects.filter(tag=tag).values_list("exclusive_group", flat=True)) == {
        None
    }

    CustomerTag.objects.filter(customer=other).delete()
    moved = admin_client_en.post(url, {"group": skin.pk, "name": "干性肌", "description": "x"})
    assert moved.status_code == 302
    tag.refresh_from_db()
    assert (tag.group_id, tag.name, tag.description) == (skin.pk, "干性肌", "x")
    assert CustomerTag.objects.get(tag=tag).exclusive_group_id == skin.pk

    deleted = admin_client_en.post(reverse("admin:crm_tag_delete", args=[tag.pk]), {"post": "yes"})
    assert deleted.status_code == 302
    assert not Tag.objects.filter(pk=tag.pk).exists()
    assert not CustomerTag.objects.filter(customer=customer).exists()
    assert service_calls == ["tag_create", "tag_update", "tag_update", "tag_delete"]


def test_groups_are_written_through_the_service(
    admin_client_en: Client, service_calls: list[str]
) -> None:
    owner = StaffMemberFactory(wecom_userid="lisi")
    added = admin_client_en.post(
        reverse("admin:crm_group_add"),
        {"kind": "wecom_group", "external_id": "wr001", "name": "会员群", "owner": owner.pk},
    )
    assert added.status_code == 302
    group = Group.objects.get()
    assert (group.kind, group.external_id, group.name, group.owner_id) == (
        "wecom_group",
        "wr001",
        "会员群",
        owner.pk,
    )
    taken = GroupFactory(kind="community", external_id="c001")

    url = reverse("admin:crm_group_change", args=[group.pk])
    changed = admin_client_en.post(
        url, {"kind": "community", "external_id": "c002", "name": "社区", "owner": ""}
    )
    assert changed.status_code == 302
    group.refresh_from_db()
    assert (group.kind, group.external_id, group.name, group.owner_id) == (
        "community",
        "c002",
        "社区",
        None,
    )

    deleted = admin_client_en.post(
        reverse("admin:crm_group_delete", args=[group.pk]), {"post": "yes"}
    )
    assert deleted.status_code == 302
    assert list(Group.objects.all()) == [taken]
    assert service_calls == ["group_create", "group_update", "group_delete"]


# --- The services added for the admin ----------------------------------------------------------


def test_a_staff_member_s_userid_is_unique_and_a_missing_one_is_named() -> None:
    first = staff_member_create(wecom_userid="wangwu", name="王五", actor="test")
    second = staff_member_create(wecom_userid="zhaoliu", actor="test")
    with pytest.raises(Conflict) as refusal:
        staff_member_create(wecom_userid="wangwu", actor="test")
    assert refusal.value.detail == {"wecom_userid": [refusal.value.message]}
    with pytest.raises(Conflict):
        staff_member_update(staff_member_id=second.pk, wecom_userid="wangwu", actor="test")
    second.refresh_from_db()
    assert second.wecom_userid == "zhaoliu"

    kept = staff_member_update(staff_member_id=first.pk, is_active=False, actor="test")
    assert (kept.wecom_userid, kept.name, kept.is_active) == ("wangwu", "王五", False)
    staff_member_delete(staff_member_id=first.pk, actor="test")
    with pytest.raises(NotFound):
        staff_member_delete(staff_member_id=first.pk, actor="test")
    assert list(StaffMember.objects.values_list("wecom_userid", flat=True)) == ["zhaoliu"]


def test_a_moved_tag_s_holdings_follow_the_exclusivity_of_its_new_group() -> None:
    exclusive = TagGroupFactory(is_exclusive=True)
    open_group = TagGroupFactory()
    tag = TagFactory(group=exclusive, name="高")
    TagFactory(group=open_group, name="高")
    customer = CustomerFactory()
    CustomerTagFactory(customer=customer, tag=tag)

    with pytest.raises(Conflict) as refusal:
        tag_update(tag_id=tag.pk, group_id=open_group.pk)
    assert refusal.value.detail == {"name": ["This group has a tag with this name."]}
    assert CustomerTag.objects.get().exclusive_group_id == exclusive.pk

    moved = tag_update(tag_id=tag.pk, group_id=open_group.pk, name="中")
    assert (moved.group_id, moved.name) == (open_group.pk, "中")
    assert CustomerTag.objects.get().exclusive_group_id is None

    back = tag_update(tag_id=tag.pk, group_id=exclusive.pk)
    assert (back.group_id, back.name) == (exclusive.pk, "中")
    assert CustomerTag.objects.get().exclusive_group_id == exclusive.pk
    with pytest.raises(NotFound):
        tag_update(tag_id=tag.pk, group_id=999_999)


def test_a_group_s_kind_and_external_id_change_unless_another_group_has_them() -> None:
    owner = StaffMemberFactory(wecom_userid="owner1")
    group = GroupFactory(kind="wecom_group", external_id="wr1", owner=owner)
    GroupFactory(kind="community", external_id="c1")

    with pytest.raises(Conflict) as refusal:
        group_update(group_id=group.pk, kind="community", external_id="c1")
    assert refusal.value.detail == {"external_id": [refusal.value.message]}
    group.refresh_from_db()
    assert (group.kind, group.external_id) == ("wecom_group", "wr1")

    changed = group_update(group_id=group.pk, kind="community")
    assert (changed.kind, changed.external_id, changed.owner_id) == ("community", "wr1", owner.pk)
    changed = group_update(group_id=group.pk, external_id="c2", owner="")
    assert (changed.kind, changed.external_id, changed.owner_id) == ("community", "c2", None)
