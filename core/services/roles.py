"""The operator roles (数据分级授权), shipped as Django permission groups with Chinese names, and
the one write that makes the groups hold exactly the permissions defined here.

Kept in step on every `migrate` (a post_migrate hook, see core.apps: permissions are created
after the last migration, so a data migration would find those of new models missing) and by
`manage.py sync_roles`. A group of these names holds what is defined here and nothing else
(a permission given by hand is taken back at the next sync); a role of the brand's own is a
group of another name, which the sync leaves alone.

Permissions are named as strings ("app_label.codename"), so that this module imports no app
above core."""

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

logger = logging.getLogger(__name__)

BRAND_ADMIN = "品牌管理员"
OPERATIONS = "运营"
SALES = "导购"  # 导购 / 客户经理: the staff who own customers
ANALYST = "数据分析"
AUDITOR = "审计"

# Every permission of these apps goes to the brand's administrator.
PRODUCT_APPS = ("crm", "segments", "campaigns", "console", "core", "django_celery_beat")
# ...and of the admin login's libraries: login lockouts (axes) and second-factor devices.
LOGIN_APPS = ("axes", "otp_totp")
# ...and of these models of Django's auth: the admin's users and permission groups.
AUTH_MODELS = ("user", "group")
# Never given: the audit trail is written by the product alone, never by a person.
NEVER = ("core.add_auditevent", "core.change_auditevent", "core.delete_auditevent")

PERSONAL_DATA = "crm.view_personal_data"
VIEW_ALL_CUSTOMERS = "crm.view_all_customers"


def _crud(app_label: str, model: str, actions: str = "view") -> list[str]:
    return [f"{app_label}.{action}_{model}" for action in actions.split()]


@dataclass(frozen=True)
class Role:
    name: str
    # "app_label.codename" permissions; `apps` adds every permission of those apps.
    permissions: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    # Every `view_` permission of these apps.
    view_apps: tuple[str, ...] = ()
    # Permissions left out even when `apps` would give them.
    excluded: tuple[str, ...] = ()


_CRM_READ = [
    *_crud("crm", "customer"),
    *_crud("crm", "identity"),
    *_crud("crm", "order"),
    *_crud("crm", "orderitem"),
    *_crud("crm", "interaction"),
    *_crud("crm", "consent"),
    *_crud("crm", "consentevent"),
    *_crud("crm", "groupmembership"),
    *_crud("crm", "staffmember"),
    *_crud("crm", "tag"),
    *_crud("crm", "taggroup"),
    *_crud("crm", "group"),
    *_crud("crm", "customertag"),
]
# A customer's own scores, as the customer page shows them.
_CUSTOMER_SCORES = [
    *_crud("segments", "customermetrics"),
    *_crud("segments", "customerprediction"),
    *_crud("segments", "lifecycletransition"),
    *_crud("segments", "segmentmembership"),
]
_CUSTOMER_EXPORT = [*_crud("console", "customerexport", "view add")]

ROLES: tuple[Role, ...] = (
    Role(
        name=BRAND_ADMIN,
        apps=(*PRODUCT_APPS, *LOGIN_APPS),
        permissions=tuple(
            permission
            for model in AUTH_MODELS
            for permission in _crud("auth", model, "view add change delete")
        ),
        excluded=NEVER,
    ),
    Role(
        # Segments, campaigns, frequency rules, reports and the overview over every
        # customer; personal data masked.
        name=OPERATIONS,
        apps=("segments", "campaigns"),
        permissions=(
            VIEW_ALL_CUSTOMERS,
            *_CRM_READ,
            *_crud("crm", "tag", "add change"),
            *_crud("crm", "taggroup", "add change"),
            *_crud("crm", "group", "change"),
            *_crud("crm", "customertag", "add change delete"),
            # Channel QR codes (渠道活码): made, changed and stopped by operations.
            *_crud("crm", "contactway", "view add change"),
            *_CUSTOMER_EXPORT,
        ),
    ),
    Role(
        # Their own customers (crm.selectors.scoping), contact details included; their tags.
        name=SALES,
        permissions=(
            PERSONAL_DATA,
            *_crud("crm", "customer", "view change"),
            *_crud("crm", "identity"),
            *_crud("crm", "order"),
            *_crud("crm", "orderitem"),
            *_crud("crm", "interaction"),
            *_crud("crm", "consent"),
            *_crud("crm", "consentevent"),
            *_crud("crm", "groupmembership"),
            *_crud("crm", "tag"),
            *_crud("crm", "taggroup"),
            *_crud("crm", "customertag", "view add change delete"),
            *_CUSTOMER_SCORES,
        ),
    ),
    Role(
        # Aggregates and masked lists and exports of every customer.
        name=ANALYST,
        permissions=(
            VIEW_ALL_CUSTOMERS,
            *_CRM_READ,
            *_crud("crm", "contactway"),
            *_CUSTOMER_EXPORT,
        ),
        view_apps=("segments", "campaigns"),
        excluded=(PERSONAL_DATA,),
    ),
    Role(name=AUDITOR, permissions=("core.view_auditevent", "core.view_apikeyusage")),
)


def _permission_ids(role: Role) -> set[int]:
    condition = Q(content_type__app_label__in=role.apps) if role.apps else Q(pk__in=[])
    for name in role.permissions:
        app_label, codename = name.split(".", 1)
        condition |= Q(content_type__app_label=app_label, codename=codename)
    if role.view_apps:
        condition |= Q(content_type__app_label__in=role.view_apps, codename__startswith="view_")
    permissions = Permission.objects.filter(condition)
    for name in role.excluded:
        app_label, codename = name.split(".", 1)
        permissions = permissions.exclude(content_type__app_label=app_label, codename=codename)
    return set(permissions.values_list("pk", flat=True))


def role_missing_permissions(role: Role) -> list[str]:
    """The permissions a role names that the database lacks (an app not migrated yet)."""
    existing = {
        f"{app_label}.{codename}"
        for app_label, codename in Permission.objects.values_list(
            "content_type__app_label", "codename"
        )
    }
    return sorted(set(role.permissions) - existing)


@transaction.atomic
def roles_sync(*, roles: Iterable[Role] = ROLES) -> dict[str, int]:
    """Create the role groups missing and set each one's permissions to exactly its
    definition; returns each group's permission count. Safe to run any number of times."""
    counts = {}
    for role in roles:
        group, _created = Group.objects.get_or_create(name=role.name)
        wanted = _permission_ids(role)
        group.permissions.set(wanted)
        counts[role.name] = len(wanted)
    logger.info("roles.synced", extra={"counts": counts})
    return counts
