"""The operator roles: permission groups with Chinese names that `migrate` creates (the test
database is made by migrate) and `sync_roles` puts back as defined."""

import io

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from core.services.roles import (
    ANALYST,
    AUDITOR,
    BRAND_ADMIN,
    OPERATIONS,
    ROLES,
    SALES,
    role_missing_permissions,
    roles_sync,
)

pytestmark = pytest.mark.django_db


def _permissions(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {
        f"{app_label}.{codename}"
        for app_label, codename in group.permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def test_migrate_created_every_role() -> None:
    assert set(Group.objects.values_list("name", flat=True)) >= {
        "品牌管理员",
        "运营",
        "导购",
        "数据分析",
        "审计",
    }


def test_every_permission_a_role_names_exists() -> None:
    assert {role.name: role_missing_permissions(role) for role in ROLES} == {
        role.name: [] for role in ROLES
    }


def test_the_brand_admin_holds_every_permission_of_the_product() -> None:
    held = _permissions(BRAND_ADMIN)
    product = {
        f"{app_label}.{codename}"
        for app_label, codename in Permission.objects.filter(
            content_type__app_label__in=[
                "crm",
                "segments",
                "campaigns",
                "console",
                "core",
                "django_celery_beat",
                "axes",
                "otp_totp",
            ]
        ).values_list("content_type__app_label", "codename")
    }
    never = {"core.add_auditevent", "core.change_auditevent", "core.delete_auditevent"}
    assert held - {p for p in held if p.startswith("auth.")} == product - never
    assert {"auth.change_user", "auth.add_group", "auth.view_user"} <= held
    assert "auth.change_permission" not in held
    assert "core.view_auditevent" in held
    assert not never & held


@pytest.mark.parametrize(
    ("role", "present", "absent"),
    [
        (
            OPERATIONS,
            {
                "crm.view_all_customers",
                "crm.view_customer",
                "crm.change_tag",
                "crm.change_group",
                "segments.add_segment",
                "segments.change_segment",
                "campaigns.launch_campaign",
                "campaigns.change_frequencyrule",
                "campaigns.view_conversion",
            },
            {"crm.view_personal_data", "crm.change_customer", "crm.delete_customer"},
        ),
        (
            SALES,
            {
                "crm.view_customer",
                "crm.view_order",
                "crm.view_interaction",
                "crm.add_customertag",
                "crm.delete_customertag",
                "crm.view_personal_data",
            },
            {
                "crm.view_all_customers",
                "segments.view_segment",
                "segments.change_segment",
                "campaigns.view_campaign",
                "campaigns.change_campaign",
                "console.add_customerexport",
            },
        ),
        (
            ANALYST,
            {
                "crm.view_all_customers",
                "crm.view_customer",
                "segments.view_segment",
                "segments.view_retentioncohort",
                "campaigns.view_campaign",
                "campaigns.view_conversion",
                "console.add_customerexport",
            },
            {
                "crm.view_personal_data",
                "segments.change_segment",
                "campaigns.launch_campaign",
                "crm.change_customer",
            },
        ),
        (AUDITOR, {"core.view_auditevent"}, {"crm.view_customer", "core.change_auditevent"}),
    ],
)
def test_a_role_holds_what_it_needs_and_not_more(role, present, absent) -> None:
    held = _permissions(role)
    assert present <= held
    assert not absent & held


def test_the_auditor_holds_the_audit_trails_view_alone() -> None:
    assert _permissions(AUDITOR) == {"core.view_auditevent", "core.view_apikeyusage"}


def test_sync_puts_back_a_role_edited_by_hand_and_leaves_other_groups() -> None:
    sales = Group.objects.get(name=SALES)
    expected = _permissions(SALES)
    sales.permissions.add(Permission.objects.get(codename="view_all_customers"))
    sales.permissions.remove(Permission.objects.get(codename="view_personal_data"))
    own = Group.objects.create(name="门店店长")
    own.permissions.add(Permission.objects.get(codename="view_all_customers"))

    output = io.StringIO()
    call_command("sync_roles", stdout=output)

    assert _permissions(SALES) == expected
    assert _permissions("门店店长") == {"crm.view_all_customers"}
    assert f"{SALES}: {len(expected)}" in output.getvalue()


def test_sync_is_idempotent() -> None:
    first = {role.name: _permissions(role.name) for role in ROLES}
    counts = roles_sync()
    assert {name: _permissions(name) for name in first} == first
    assert counts == {name: len(held) for name, held in first.items()}
    assert Group.objects.filter(name__in=[role.name for role in ROLES]).count() == len(ROLES)


def test_migrate_puts_the_roles_back() -> None:
    """The post_migrate hook: a `migrate` with nothing to apply still sets the roles."""
    expected = _permissions(SALES)
    Group.objects.get(name=SALES).permissions.clear()
    Group.objects.filter(name=AUDITOR).delete()

    call_command("migrate", verbosity=0)

    assert _permissions(SALES) == expected
    assert _permissions(AUDITOR) == {"core.view_auditevent", "core.view_apikeyusage"}
