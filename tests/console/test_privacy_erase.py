"""The PIPL erasure of one customer (console.services.privacy.customer_erase): no personal
value of the person is left anywhere in the database, in any form (raw, encrypted, hashed,
masked); the brand's orders stay, detached; segments and campaign reports still add up; a
second request changes nothing; the person comes back only as a new customer."""

from collections import defaultdict
from decimal import Decimal

import msgspec
import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Sum

from campaigns.models import Conversion, Delivery, LinkClick
from campaigns.services.report import campaign_report
from console.models import CustomerExport, PrivacyRequest, PrivacyRequestKind
from console.services.privacy import customer_erase
from core.errors import NotFound
from crm.inputs import OrderIn
from crm.models import Customer, CustomerMerge, Identity, Order, OrderItem, WeComEvent
from crm.personal_data import hash_identity, identity_key
from crm.selectors.customers import customer_find_by_identity
from crm.services.orders import orders_bulk_upsert
from segments.models import CustomerMetrics, Segment, SegmentMembership
from tests.console.privacy_support import Person, privacy_events, two_people
from tests.crm.support import second_waits_for_first

pytestmark = pytest.mark.django_db

TEXT_TYPES = ["character varying", "character", "text", "json", "jsonb", "ARRAY"]


def _text_columns() -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND data_type = ANY(%s)"
            " ORDER BY table_name, ordinal_position",
            [TEXT_TYPES],
        )
        columns: dict[str, list[str]] = defaultdict(list)
        for table, column in cursor.fetchall():
            columns[table].append(column)
    return columns


def scan(needles: list[str]) -> list[tuple[str, str, str]]:
    """Every (table, column, needle) where a text-like column (char, text, json/jsonb and
    arrays, cast to text) of any table of the public schema holds one of the needles."""
    found = []
    with connection.cursor() as cursor:
        for table, columns in _text_columns().items():
            for column in columns:
                cursor.execute(
                    f'SELECT DISTINCT v FROM "{table}", unnest(%s::text[]) AS v'  # noqa: S608
                    f' WHERE strpos("{column}"::text, v) > 0',
                    [needles],
                )
                found += [(table, column, needle) for (needle,) in cursor.fetchall()]
    return found


def traces_of(person: Person) -> list[str]:
    """Every form the person's values take in the database: raw, encrypted, hashed (as
    stored and as computed again) and masked."""
    needles = list(person.values)
    for identity in person.identities:
        key = identity_key(
            provider=identity.provider,
            namespace=identity.namespace,
            value=next(
                v
                for v in person.values
                if identity_key_or_none(identity.provider, identity.namespace, v)
                == identity.value_hash
            ),
        )
        needles += [
            identity.value_encrypted,
            identity.value_hash,
            hash_identity(key.provider, key.namespace, key.value),
            identity.value_masked,
        ]
    return needles


def identity_key_or_none(provider: str, namespace: str, value: str) -> str | None:
    try:
        return identity_key(provider=provider, namespace=namespace, value=value).value_hash
    except ValueError:
        return None


def _report_figures(campaign: object) -> dict[str, object]:
    report = campaign_report(campaign=campaign)  # type: ignore[arg-type]
    total = report.total
    return {
        "audience": total.audience,
        "sent": total.sent,
        "holdout": total.holdout,
        "converted": total.converted,
        "revenue": total.revenue,
        "window_revenue": total.window_revenue,
        "holdout_converted": report.holdout_converted,
    }


@pytest.fixture
def people(admin_user: User) -> tuple[Person, Person, dict[str, object]]:
    first, second, setting = two_people(admin_user=admin_user)
    # A list exported after a search for the person's name, and one for their phone.
    CustomerExport.objects.create(
        actor=f"user:{admin_user.pk}",
        filters=f"搜索：{first.values[2]}",
        query_string="q=%E6%B5%8B%E8%AF%95%E9%A1%BE%E5%AE%A2%E7%94%B21%E5%8F%B7",
        row_count=1,
        file_format="csv",
        is_unmasked=True,
    )
    CustomerExport.objects.create(
        actor=f"user:{admin_user.pk}",
        filters="搜索：13912340001",
        query_string="q=%2B8613912340001",
        row_count=1,
        file_format="csv",
        is_unmasked=True,
    )
    return first, second, setting


def test_the_scan_finds_the_values_before_the_erasure(people) -> None:
    """The scan can fail: every kind of trace is found while the customer is there."""
    first, _second, _setting = people
    found = {(table, needle) for table, _column, needle in scan(traces_of(first))}
    tables = {table for table, _needle in found}
    assert {
        "crm_customer",
        "crm_identity",
        "crm_interaction",
        "crm_customermerge",
        "django_admin_log",
        "console_customerexport",
        "crm_wecomevent",
    } <= tables
    for identity in first.identities:
        assert ("crm_identity", identity.value_encrypted) in found
        assert ("crm_identity", identity.value_hash) in found
        assert ("crm_identity", identity.value_masked) in found


def test_erasure_leaves_no_personal_value_anywhere(people) -> None:
    first, second, _setting = people
    needles = traces_of(first)
    orders_before = (Order.objects.count(), Order.objects.aggregate(s=Sum("total_amount"))["s"])
    items_before = OrderItem.objects.count()

    request = customer_erase(customer_id=first.pk, actor="user:1", reason="本人来电要求删除")

    assert scan(needles) == []
    # The other person is untouched.
    left = {needle for _t, _c, needle in scan(traces_of(second))}
    assert second.values[2] in left  # the name
    for identity in second.identities:
        assert {identity.value_encrypted, identity.value_hash, identity.value_masked} <= left
    assert not Customer.objects.filter(pk=first.pk).exists()
    assert Customer.objects.filter(pk=second.pk).exists()
    assert not Identity.objects.filter(customer_id=first.pk).exists()
    assert Identity.objects.filter(customer_id=second.pk).count() == 5
    assert not CustomerMerge.objects.filter(survivor_id=first.pk).exists()
    assert CustomerMerge.objects.filter(survivor_id=second.pk).count() == 1
    assert LogEntry.objects.filter(object_id=str(second.pk)).count() == 1
    assert not LogEntry.objects.filter(object_id=str(first.pk)).exists()
    assert not CustomerMetrics.objects.filter(customer_id=first.pk).exists()
    # The other person's WeCom event stays.
    assert list(WeComEvent.objects.values_list("subject_hash", flat=True)) == [
        second.identities[1].value_hash
    ]
    # The brand's accounts stay, with their amounts, detached from the person.
    assert (
        Order.objects.count(),
        Order.objects.aggregate(s=Sum("total_amount"))["s"],
    ) == orders_before
    assert OrderItem.objects.count() == items_before
    order = Order.objects.get(pk=first.order.pk)
    assert (order.customer_id, order.total_amount, order.paid_at) == (
        None,
        Decimal("299.00"),
        first.order.paid_at,
    )
    assert set(OrderItem.objects.filter(order=order).values_list("customer_id", flat=True)) == {
        None
    }
    assert request.outcome == {
        "link_clicks": 1,
        "conversions": 1,
        "deliveries": 2,
        "segment_membership_events": 1,
        "segment_memberships": 1,
        "predictions": 1,
        "metrics": 1,
        "lifecycle_transitions": 1,
        "consent_events": 2,
        "consents": 1,
        "interactions": 1,
        "group_stays": 1,
        "tags": 1,
        "wecom_events": 1,
        "identities": 5,
        "merges": 1,
        "order_items_detached": 2,
        "orders_detached": 1,
        "admin_log_entries": 1,
        "customer": 1,
        "list_export_records_scrubbed": 2,
    }
    assert CustomerExport.objects.filter(filters__contains="[erased]").count() == 2


def test_segments_and_campaign_reports_still_add_up(people) -> None:
    first, second, setting = people
    segment, sent, holdout = (
        setting["segment"],
        setting["campaign_sent"],
        setting["campaign_holdout"],
    )
    assert Segment.objects.get(pk=segment.pk).member_count == 2
    assert _report_figures(sent) == {
        "audience": 2,
        "sent": 2,
        "holdout": 0,
        "converted": 2,
        "revenue": Decimal("598.00"),
        "window_revenue": Decimal("598.00"),
        "holdout_converted": 0,
    }
    assert _report_figures(holdout)["holdout"] == 2

    customer_erase(customer_id=first.pk, actor="user:1")

    assert Segment.objects.get(pk=segment.pk).member_count == 1
    assert SegmentMembership.objects.filter(segment=segment).count() == 1
    after = _report_figures(sent)
    assert after == {
        "audience": 1,
        "sent": 1,
        "holdout": 0,
        "converted": 1,
        "revenue": Decimal("299.00"),
        "window_revenue": Decimal("299.00"),
        "holdout_converted": 0,
    }
    # What the report adds up is what the ledger holds.
    assert Delivery.objects.filter(campaign=sent).count() == after["audience"]
    assert (
        Conversion.objects.filter(campaign=sent).aggregate(s=Sum("revenue"))["s"]
        == (after["revenue"])
    )
    assert LinkClick.objects.filter(campaign=sent).count() == 1
    assert _report_figures(holdout)["holdout"] == 1
    assert Delivery.objects.filter(customer_id=second.pk).count() == 2


def test_erasure_is_recorded_and_audited_once(people) -> None:
    first, _second, _setting = people
    request = customer_erase(customer_id=first.pk, actor="admin:user:7", reason="本人要求")
    stored = PrivacyRequest.objects.get()
    assert stored == request
    assert (stored.kind, stored.customer_id, stored.requested_by, stored.reason) == (
        PrivacyRequestKind.ERASE,
        first.pk,
        "admin:user:7",
        "本人要求",
    )
    assert stored.completed_at is not None
    [event] = privacy_events().all()
    assert (event.action, event.actor, event.customer_id) == ("erase", "admin:user:7", first.pk)
    assert event.detail["counts"] == stored.outcome
    assert event.detail["privacy_request_id"] == stored.pk


def test_a_second_erasure_changes_nothing_and_answers_the_first(people) -> None:
    first, second, _setting = people
    request = customer_erase(customer_id=first.pk, actor="user:1")
    orders = list(Order.objects.order_by("pk").values_list("pk", "customer_id", "updated_at"))

    again = customer_erase(customer_id=first.pk, actor="user:2")

    assert again.pk == request.pk
    assert again.requested_by == "user:1"
    assert PrivacyRequest.objects.count() == 1
    assert privacy_events().count() == 1
    assert list(Order.objects.order_by("pk").values_list("pk", "customer_id", "updated_at")) == (
        orders
    )
    assert Customer.objects.filter(pk=second.pk).exists()


def test_erasure_of_an_unknown_customer_is_refused_and_changes_nothing(people) -> None:
    customers = Customer.objects.count()
    with pytest.raises(NotFound) as refusal:
        customer_erase(customer_id=987654, actor="user:1")
    assert refusal.value.code == "customer_not_found"
    assert Customer.objects.count() == customers
    assert not PrivacyRequest.objects.exists()
    assert not privacy_events().exists()


def test_a_later_order_from_the_same_phone_makes_a_new_customer(people) -> None:
    first, _second, _setting = people
    phone_key = identity_key(provider="phone", value="13912340001")
    assert customer_find_by_identity(phone_key) == first.customer

    customer_erase(customer_id=first.pk, actor="user:1")

    assert customer_find_by_identity(phone_key) is None
    row = {
        "source": "youzan",
        "external_id": "AFTER-ERASURE-1",
        "customer": {"identities": [{"provider": "phone", "value": "13912340001"}]},
        "status": "paid",
        "total_amount": "99.00",
        "refunded_amount": "0.00",
        "currency": "CNY",
        "paid_at": "2026-06-18T20:15:00+08:00",
        "items": [{"sku": "SERUM-30", "quantity": 1, "unit_price": "99.00"}],
    }
    order_in = msgspec.json.decode(msgspec.json.encode(row), type=OrderIn)
    outcome = orders_bulk_upsert(orders=[order_in], actor="test")

    [new_id] = outcome.customer_ids
    assert new_id != first.pk
    assert new_id > first.pk
    new = Customer.objects.get(pk=new_id)
    assert new.display_name == ""
    assert customer_find_by_identity(phone_key) == new
    # The old order stays nobody's: it is not given to the new customer.
    assert Order.objects.get(pk=first.order.pk).customer_id is None
    assert Order.objects.filter(customer_id=new_id).count() == 1


def test_a_re_sent_old_order_of_an_erased_customer_is_written_without_error(people) -> None:
    """The shop sends an erased customer's order again, changed (a refund): it is written,
    to whoever its identities now name, and the erased id is nobody's to recompute."""
    first, _second, _setting = people
    customer_erase(customer_id=first.pk, actor="user:1")
    row = {
        "source": first.order.source,
        "external_id": first.order.external_id,
        "customer": {"identities": [{"provider": "unionid", "value": "oUnionSomeoneElse9"}]},
        "status": "refunded",
        "total_amount": "299.00",
        "refunded_amount": "299.00",
        "currency": "CNY",
        "paid_at": first.order.paid_at.isoformat(),
        "items": [],
    }
    order_in = msgspec.json.decode(msgspec.json.encode(row), type=OrderIn)
    outcome = orders_bulk_upsert(orders=[order_in], actor="test")
    assert outcome.updated == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_erasures_erase_once_and_answer_the_same_record() -> None:
    """The second request waits for the first's locks, then finds the customer gone and
    answers the first one's record."""
    first, second, _setting = two_people()
    answers = second_waits_for_first(
        lambda: customer_erase(customer_id=first.pk, actor="user:1"),
        lambda: customer_erase(customer_id=first.pk, actor="user:2"),
    )
    assert answers[0].pk == answers[1].pk
    assert answers[1].requested_by == "user:1"
    assert PrivacyRequest.objects.count() == 1
    assert privacy_events().count() == 1
    assert not Customer.objects.filter(pk=first.pk).exists()
    assert Customer.objects.filter(pk=second.pk).exists()
