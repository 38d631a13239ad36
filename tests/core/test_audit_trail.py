"""The audit trail: append-only in the database (no UPDATE, DELETE or TRUNCATE, through the ORM
or raw SQL; the prune alone deletes), pruned after AUDIT_RETENTION_DAYS, and one event per
merge, export and view of unmasked personal data, with the right actor and no personal value."""

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

import core.services.audit
from core.models import ApiKey, ApiKeyUsage, AuditAction, AuditEvent
from core.services.api_keys import api_key_create
from core.services.audit import (
    SECRET_CHANGED,
    audit_diff,
    audit_prune,
    audit_record,
    personal_data_view_record,
)
from core.tasks import audit_prune_task
from crm.services.merges import customers_merge
from tests.factories import (
    CustomerFactory,
    IdentityFactory,
    SegmentMembershipFactory,
    UserFactory,
)
from tests.factories.users import seeing_every_customer
from tests.support import client_of

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
PHONE = "13812341234"


def _event(**overrides) -> AuditEvent:
    fields = {"actor": "user:1", "action": AuditAction.CHANGE, "object_type": "segment"}
    return audit_record(**{**fields, **overrides})


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# --- Append-only in the database ---


def test_an_update_through_the_orm_is_refused() -> None:
    event = _event(object_id="7")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(object_id="8")
    event.object_id = "9"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.save()
    assert AuditEvent.objects.get().object_id == "7"


def test_a_delete_through_the_orm_is_refused() -> None:
    event = _event()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [event.pk]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE core_auditevent SET actor = 'someone'",
        "DELETE FROM core_auditevent",
        "TRUNCATE core_auditevent",
    ],
)
def test_raw_sql_cannot_change_the_trail(statement: str) -> None:
    event = _event()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        # The test database allows a flush's TRUNCATE (tests/conftest.py); no other does.
        cursor.execute("SET LOCAL crm.audit_truncate = 'off'")
        cursor.execute(statement)
    assert list(AuditEvent.objects.values_list("pk", "actor")) == [(event.pk, "user:1")]


def test_the_prune_setting_is_off_again_after_the_prune() -> None:
    _event()
    with transaction.atomic():
        audit_prune(now=NOW)
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.all().delete()
    assert AuditEvent.objects.count() == 1


# --- Retention ---


def _aged(days: float) -> AuditEvent:
    return AuditEvent.objects.create(
        actor="user:1",
        action=AuditAction.CHANGE,
        occurred_at=NOW - timedelta(days=days),
        object_id=str(days),
    )


def test_prune_deletes_events_older_than_the_retention_in_batches(
    settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    monkeypatch.setattr(core.services.audit, "PRUNE_BATCH", 2)
    for days in (400, 90, 31, 30.5, 29, 1):
        _aged(days)
    api_key, _raw = api_key_create(name="erp", scopes=["orders:read"])
    ApiKeyUsage.objects.create(api_key=api_key, hour=NOW - timedelta(days=31), request_count=5)
    kept_usage = ApiKeyUsage.objects.create(
        api_key=api_key, hour=NOW - timedelta(days=29), request_count=7
    )
    created_event = AuditEvent.objects.get(action=AuditAction.CREATE)  # the key's, made now

    assert audit_prune(now=NOW) == 4
    assert sorted(AuditEvent.objects.values_list("object_id", flat=True)) == sorted(
        ["29", "1", created_event.object_id]
    )
    assert list(ApiKeyUsage.objects.values_list("pk", flat=True)) == [kept_usage.pk]
    assert audit_prune(now=NOW) == 0  # a second run finds nothing more


def test_the_default_retention_is_a_year(settings) -> None:
    assert settings.AUDIT_RETENTION_DAYS == 365
    _aged(366)
    kept = _aged(364)
    assert audit_prune(now=NOW) == 1
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [kept.pk]


def test_the_prune_task_runs_the_prune(settings) -> None:
    settings.AUDIT_RETENTION_DAYS = 1
    AuditEvent.objects.create(
        actor="user:1", action="change", occurred_at=datetime(2020, 1, 1, tzinfo=UTC)
    )
    assert audit_prune_task.run() == 1
    assert AuditEvent.objects.count() == 0


def test_the_nightly_prune_and_the_fold_are_scheduled() -> None:
    from django_celery_beat.models import PeriodicTask

    tasks = dict(PeriodicTask.objects.values_list("task", "name"))
    assert tasks["core.audit_prune"] == "清理过期审计日志"
    assert tasks["core.api_key_usage_fold"] == "汇总 API 密钥调用次数"
    prune = PeriodicTask.objects.get(task="core.audit_prune")
    assert (prune.crontab.hour, prune.crontab.minute) == ("3", "40")


# --- Changes: before -> after, secrets never written ---


def test_a_diff_holds_only_changed_fields_and_never_a_secret() -> None:
    before = {"name": "A", "max_count": 3, "secret": "s1", "at": None}
    after = {"name": "A", "max_count": 5, "secret": "s2", "at": NOW}
    assert audit_diff(before, after, secret_fields={"secret"}) == {
        "before": {"max_count": 3, "secret": SECRET_CHANGED, "at": None},
        "after": {"max_count": 5, "secret": SECRET_CHANGED, "at": "2026-12-05T12:00:00Z"},
    }


# --- Merges and exports ---


def test_a_merge_writes_one_event_naming_the_survivor_and_the_absorbed() -> None:
    survivor, loser_a, loser_b = CustomerFactory(), CustomerFactory(), CustomerFactory()
    customers_merge(
        customer_ids=[loser_b.pk, survivor.pk, loser_a.pk], actor="user:5", reason="dup"
    )
    (event,) = _events(AuditAction.MERGE)
    assert event.actor == "user:5"
    assert event.customer_id == survivor.pk
    assert event.object_id == str(survivor.pk)
    assert event.detail == {"survivor_id": survivor.pk, "absorbed_ids": [loser_a.pk, loser_b.pk]}


def test_a_merge_of_one_customer_writes_nothing() -> None:
    customer = CustomerFactory()
    customers_merge(customer_ids=[customer.pk], actor="user:5", reason="dup")
    assert _events(AuditAction.MERGE) == []


def _customer_viewer(*, personal_data: bool):
    """An operator who sees every customer (not a 导购 scoped to their own) and may export."""
    codenames = ["view_customer", "view_identity"]
    codenames += ["view_personal_data"] if personal_data else []
    crm = Permission.objects.filter(content_type__app_label="crm", codename__in=codenames)
    export = Permission.objects.filter(
        content_type__app_label="console", codename="add_customerexport"
    )
    return UserFactory(permissions=seeing_every_customer([*crm, *export]))


def test_an_export_writes_one_event_with_its_filter_count_and_format() -> None:
    CustomerFactory(display_name="王小美", member_level=3)
    CustomerFactory(display_name="王大明", member_level=3)
    CustomerFactory(display_name="李四", member_level=1)
    user = _customer_viewer(personal_data=False)
    response = client_of(user).get(
        reverse("admin:crm_customer_export", args=["csv"]),
        {"member_level": "3", "q": "王"},
    )
    assert response.status_code == 200
    b"".join(response.streaming_content)
    (event,) = _events(AuditAction.EXPORT)
    assert event.actor == f"user:{user.pk}"
    assert event.object_type == "customer_export"
    assert event.detail == {
        "filter": {"member_level": "3"},
        "is_searched": True,
        "row_count": 2,
        "format": "csv",
        "is_unmasked": False,
    }
    assert "王" not in json.dumps(event.detail, ensure_ascii=False)  # the search term stays out


# --- Views of unmasked personal data ---


def _customer_with_phone(phone: str = PHONE):
    customer = CustomerFactory(display_name="王小美")
    IdentityFactory(customer=customer, provider="phone", raw_value=phone)
    return customer


def test_one_event_per_admin_customer_page_viewed_unmasked() -> None:
    customer = _customer_with_phone()
    user = _customer_viewer(personal_data=True)
    page = client_of(user).get(reverse("admin:crm_customer_change", args=[customer.pk]))
    assert page.status_code == 200
    assert PHONE in page.content.decode()
    (event,) = _events(AuditAction.VIEW_PERSONAL_DATA)
    assert (event.actor, event.customer_id, event.object_id) == (
        f"user:{user.pk}",
        customer.pk,
        str(customer.pk),
    )
    assert event.fields == ["birthday", "identities"]
    assert PHONE not in json.dumps(event.detail)


def test_the_admin_customer_list_viewed_unmasked_is_one_event_naming_its_customers() -> None:
    first, second = _customer_with_phone(), _customer_with_phone("13912341234")
    CustomerFactory()  # no phone: nothing of it shown unmasked
    user = _customer_viewer(personal_data=True)
    page = client_of(user).get(reverse("admin:crm_customer_changelist"))
    assert page.status_code == 200
    (event,) = _events(AuditAction.VIEW_PERSONAL_DATA)
    assert event.customer_id is None
    assert event.detail == {"customer_ids": sorted([first.pk, second.pk])}
    assert event.fields == ["identities"]


@pytest.mark.parametrize("url_name", ["admin:crm_customer_change", "admin:crm_customer_changelist"])
def test_masked_admin_pages_write_no_event(url_name: str) -> None:
    customer = _customer_with_phone()
    args = [customer.pk] if url_name.endswith("change") else []
    page = client_of(_customer_viewer(personal_data=False)).get(reverse(url_name, args=args))
    assert page.status_code == 200
    assert PHONE not in page.content.decode()
    assert _events(AuditAction.VIEW_PERSONAL_DATA) == []


def test_the_api_customer_list_is_one_insert_naming_its_customers(api_client_with_scopes) -> None:
    customers = [_customer_with_phone(f"1381234123{n}") for n in range(3)]
    client = api_client_with_scopes("customers:read", "personal_data:read")
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/customers")
    assert response.status_code == 200
    inserts = [q for q in queries.captured_queries if 'INSERT INTO "core_auditevent"' in q["sql"]]
    assert len(inserts) == 1
    (event,) = _events(AuditAction.VIEW_PERSONAL_DATA)
    assert event.actor.startswith("api_key:test:")
    assert event.customer_id is None
    assert event.detail == {"customer_ids": sorted(c.pk for c in customers)}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/customers/{id}",
        f"/api/v1/customers/by-identity/phone/{PHONE}",
    ],
)
def test_one_event_per_api_customer_answer_with_personal_data(api_client_with_scopes, path) -> None:
    customer = _customer_with_phone()
    client = api_client_with_scopes("customers:read", "personal_data:read")
    response = client.get(path.format(id=customer.pk))
    assert response.status_code == 200
    (event,) = _events(AuditAction.VIEW_PERSONAL_DATA)
    assert event.customer_id == customer.pk
    assert event.fields == ["birthday", "identities"]
    assert event.actor.startswith("api_key:test:")


def test_a_new_endpoint_using_the_mixin_is_audited_too(api_client_with_scopes) -> None:
    """The segment member list answers customers through PersonalDataContextMixin."""
    member = _customer_with_phone()
    segment = SegmentMembershipFactory(customer=member).segment
    client = api_client_with_scopes("segments:read", "personal_data:read")
    response = client.get(f"/api/v1/segments/{segment.pk}/members")
    assert response.status_code == 200
    (event,) = _events(AuditAction.VIEW_PERSONAL_DATA)
    assert (event.customer_id, event.detail) == (member.pk, {})


def test_an_upsert_answer_with_personal_data_is_one_view(api_client_with_scopes) -> None:
    client = api_client_with_scopes("customers:read", "customers:write", "personal_data:read")
    response = client.put(f"/api/v1/customers/by-identity/phone/{PHONE}", {}, format="json")
    assert response.status_code == 201
    (event,) = _events(AuditAction.VIEW_PERSONAL_DATA)
    assert event.customer_id == response.json()["customer"]["id"]


@pytest.mark.parametrize(
    "path", ["/api/v1/customers", "/api/v1/customers/{id}", "/api/v1/customers/999999"]
)
def test_no_event_for_masked_or_missing_answers(api_client_with_scopes, path) -> None:
    customer = _customer_with_phone()
    scopes = (
        ["customers:read"] if "999999" not in path else ["customers:read", "personal_data:read"]
    )
    client = api_client_with_scopes(*scopes)
    response = client.get(path.format(id=customer.pk))
    assert response.status_code in (200, 404)
    assert _events(AuditAction.VIEW_PERSONAL_DATA) == []


def test_an_empty_view_records_nothing() -> None:
    assert personal_data_view_record(actor="user:1", customer_ids=[]) is None
    assert AuditEvent.objects.count() == 0


def test_the_create_api_key_command_is_recorded_as_the_command_line() -> None:
    call_command("create_api_key", "--name", "erp", "--scopes", "orders:read", stdout=io.StringIO())
    (event,) = _events(AuditAction.CREATE)
    assert (event.actor, event.object_type) == ("command", "api_key")
    assert event.detail["after"]["secret_hash"] == SECRET_CHANGED


# --- API keys: created and revoked, in the admin and by command ---


def test_admin_key_create_and_revoke_are_one_event_each(admin_user) -> None:
    client = client_of(admin_user)
    response = client.post(
        reverse("admin:core_apikey_add"), {"name": "erp", "scope_choices": ["orders:read"]}
    )
    assert response.status_code == 302
    api_key = ApiKey.objects.get(name="erp")
    for _ in range(2):  # a second revocation changes nothing, and records nothing
        revoked = client.post(
            reverse("admin:core_apikey_changelist"),
            {"action": "revoke", "_selected_action": [api_key.pk]},
        )
        assert revoked.status_code == 302
    created, revoke = AuditEvent.objects.order_by("id")
    assert (created.actor, created.action, created.object_id) == (
        f"user:{admin_user.pk}",
        AuditAction.CREATE,
        str(api_key.pk),
    )
    assert created.detail["after"]["name"] == "erp"
    assert created.detail["after"]["scopes"] == ["orders:read"]
    assert created.detail["after"]["secret_hash"] == SECRET_CHANGED
    assert api_key.secret_hash not in json.dumps(created.detail)
    assert (revoke.actor, revoke.action, revoke.detail["operation"]) == (
        f"user:{admin_user.pk}",
        AuditAction.CHANGE,
        "revoke",
    )
    assert revoke.detail["before"] == {"revoked_at": None}
    assert revoke.fields == ["revoked_at"]


def test_the_revoke_command_is_recorded_as_the_command_line() -> None:
    api_key, _raw = api_key_create(name="erp", scopes=["orders:read"], actor="user:1")
    call_command("revoke_api_key", api_key.prefix, stdout=io.StringIO())
    revoke = AuditEvent.objects.order_by("id").last()
    assert (revoke.actor, revoke.detail["operation"]) == ("command", "revoke")
