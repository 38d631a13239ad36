"""The PIPL export of one customer (console.services.privacy.customer_personal_export):
every kind of data held about the person, values unmasked, nothing of anyone else, read one
query per kind, recorded and audited once."""

import json

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console.models import PrivacyRequest, PrivacyRequestKind
from console.services.privacy import (
    ERROR_CUSTOMER_ERASED,
    customer_erase,
    customer_personal_export,
)
from core.errors import NotFound
from tests.console.privacy_support import privacy_events, two_people

pytestmark = pytest.mark.django_db

# One query per kind of data (profile, identities, tags, group stays, orders, items,
# interactions, consents, consent events, metrics, transitions, predictions, memberships,
# membership events, deliveries, link clicks, conversions, merges), the existence check, and
# the two writes (the request and its audit event), inside a savepoint's two statements.
EXPORT_QUERIES = 1 + 18 + 2 + 2


def test_export_holds_every_kind_of_data_unmasked() -> None:
    first, _second, _setting = two_people()
    data = customer_personal_export(customer_id=first.pk, actor="user:1")

    assert data["profile"]["id"] == first.pk
    assert data["profile"]["display_name"] == "测试顾客甲1号"
    assert data["profile"]["birthday"] == first.customer.birthday.isoformat()
    assert data["profile"]["owner_name"] == "导购1"
    assert sorted(i["value"] for i in data["identities"]) == sorted(
        [
            "+8613912340001",
            "wmExternalUserZq0001",
            "oUnionPersonIdXy0001",
            "oOpenPersonIdWv0001",
            "MEMBER-CARD-0001",
        ]
    )
    assert [(t["tag"], t["source"]) for t in data["tags"]] == [("敏感肌1", "manual")]
    assert data["tags"][0]["tag_group"]
    assert data["tags"][0]["tagged_at"] == "2026-03-01T10:00:00+00:00"
    assert [(g["group"], g["joined_at"], g["left_at"]) for g in data["group_stays"]] == [
        ("会员群1", "2026-03-01T10:00:00+00:00", "2026-03-04T10:00:00+00:00")
    ]
    [order] = data["orders"]
    assert order["id"] == first.order.pk
    assert order["total_amount"] == "299.00"
    assert [(i["line_no"], i["sku"], i["unit_price"]) for i in order["items"]] == [
        (1, "SKU-A1", "10.00"),
        (2, "SKU-B1", "10.00"),
    ]
    [interaction] = data["interactions"]
    assert interaction["properties"]["address"] == "西湖路1号"
    assert [(c["channel"], c["status"]) for c in data["consents"]] == [("wecom", "opted_in")]
    assert sorted((e["channel"], e["status"]) for e in data["consent_events"]) == [
        ("sms", "opted_out"),
        ("wecom", "opted_in"),
    ]
    assert data["metrics"]["lifetime_net_spend"] == "299.00"
    assert data["metrics"]["lifecycle_state"] == "new"
    assert [(t["from_state"], t["to_state"]) for t in data["lifecycle_transitions"]] == [
        ("prospect", "new")
    ]
    assert data["predictions"]["predicted_value"] == "800.00"
    assert data["predictions"]["cluster"] == 2
    assert [m["segment"] for m in data["segment_memberships"]] == ["高价值人群"]
    assert [(e["segment"], e["kind"]) for e in data["segment_membership_events"]] == [
        ("高价值人群", "entered")
    ]
    assert sorted((d["campaign"], d["status"], d["is_holdout"]) for d in data["deliveries"]) == [
        ("会员召回", "held_out", True),
        ("春季上新", "sent", False),
    ]
    sent = next(d for d in data["deliveries"] if d["status"] == "sent")
    assert sent["sent_at"] == "2026-03-01T10:00:00+00:00"
    assert [(c["campaign"], c["order_id"], c["revenue"]) for c in data["conversions"]] == [
        ("春季上新", first.order.pk, "299.00")
    ]
    assert [c["link_no"] for c in data["link_clicks"]] == [1]
    assert [m["merged_profile"]["display_name"] for m in data["merges"]] == ["被合并顾客1"]
    # Plain JSON already: the standard encoder takes it as it is.
    json.dumps(data, ensure_ascii=False)


def test_export_holds_nothing_of_another_customer() -> None:
    first, second, _setting = two_people()
    text = json.dumps(
        customer_personal_export(customer_id=first.pk, actor="user:1"),
        ensure_ascii=False,
        cls=DjangoJSONEncoder,
    )
    for value in second.values:
        assert value not in text
    for identity in second.identities:
        assert identity.value_masked not in text
        assert identity.value_hash not in text
    data = json.loads(text)
    assert str(second.pk) not in {str(data["profile"]["id"])}
    assert second.order.pk not in [o["id"] for o in data["orders"]]
    assert {d["id"] for d in data["deliveries"]}.isdisjoint({d.pk for d in second.deliveries})
    assert second.ids["interaction"] not in [i["id"] for i in data["interactions"]]
    assert [c["delivery_id"] for c in data["conversions"]] == [first.deliveries[0].pk]


def test_export_reads_one_query_per_kind() -> None:
    first, _second, _setting = two_people()
    with CaptureQueriesContext(connection) as queries:
        customer_personal_export(customer_id=first.pk, actor="user:1")
    assert len(queries) == EXPORT_QUERIES


def test_export_is_recorded_and_audited_once() -> None:
    first, _second, _setting = two_people()
    data = customer_personal_export(customer_id=first.pk, actor="api_key:crm:abc123")

    request = PrivacyRequest.objects.get()
    assert data["request_id"] == request.pk
    assert (request.kind, request.customer_id, request.requested_by) == (
        PrivacyRequestKind.EXPORT,
        first.pk,
        "api_key:crm:abc123",
    )
    assert request.completed_at is not None
    assert request.outcome["identities"] == 5
    assert request.outcome["orders"] == 1
    assert request.outcome["deliveries"] == 2
    assert request.outcome["metrics"] == 1
    [event] = privacy_events().all()
    assert (event.action, event.actor, event.customer_id, event.object_id) == (
        "personal_export",
        "api_key:crm:abc123",
        first.pk,
        str(first.pk),
    )
    assert event.detail["privacy_request_id"] == request.pk
    # Counts only: no personal value in the record or the audit trail.
    stored = json.dumps([request.outcome, event.detail], ensure_ascii=False)
    for value in first.values:
        assert value not in stored


def test_export_of_an_unknown_customer_is_refused_and_records_nothing() -> None:
    with pytest.raises(NotFound) as refusal:
        customer_personal_export(customer_id=987654, actor="user:1")
    assert refusal.value.code == "customer_not_found"
    assert not PrivacyRequest.objects.exists()
    assert not privacy_events().exists()


def test_export_of_an_erased_customer_says_so() -> None:
    first, _second, _setting = two_people()
    customer_erase(customer_id=first.pk, actor="user:1")
    with pytest.raises(NotFound) as refusal:
        customer_personal_export(customer_id=first.pk, actor="user:1")
    assert refusal.value.code == ERROR_CUSTOMER_ERASED
    assert privacy_events().filter(action="personal_export").count() == 0
