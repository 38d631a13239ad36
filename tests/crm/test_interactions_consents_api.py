"""Interactions (bulk, idempotent) and consents (out-of-order events, history) over the API."""

import itertools
from datetime import timedelta

import msgspec
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.services.api_keys import api_key_create, api_key_revoke
from crm.models import Consent, ConsentEvent, Customer, DirtyMark, Interaction
from crm.selectors.customers import dirty_customer_ids
from tests.crm.support import arrival_outcome, bulk_answer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

UNIONID = {"provider": "unionid", "value": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"}


def interaction(key: str = "evt-1", **overrides) -> dict:
    row = {
        "customer": {"identities": [UNIONID]},
        "kind": "link_click",
        "occurred_at": "2026-11-11T00:05:00+08:00",
        "source": "wecom_sidebar",
        "idempotency_key": key,
        "properties": {"url": "https://shop.example.com/p/1", "campaign": 7},
    }
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/api/v1/interactions/bulk"),
        ("get", "/api/v1/interactions"),
        ("post", "/api/v1/consents"),
        ("get", "/api/v1/consents"),
        ("get", "/api/v1/consents/events"),
    ],
)
def test_auth_is_required_and_scoped(api_client_with_scopes, anonymous_client, method, url) -> None:
    assert getattr(anonymous_client, method)(url, {}, format="json").status_code in (401, 403)
    wrong = api_client_with_scopes("orders:write", "orders:read", "customers")
    assert getattr(wrong, method)(url, {}, format="json").status_code == 403
    resource = url.split("/")[3]
    access = "read" if method == "get" else "write"
    other_access = "write" if access == "read" else "read"
    assert (
        getattr(api_client_with_scopes(f"{resource}:{other_access}"), method)(
            url, {}, format="json"
        ).status_code
        == 403
    )
    api_key, raw_key = api_key_create(name="t", scopes=[f"{resource}:{access}"])
    api_key_revoke(prefix=api_key.prefix)
    anonymous_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert getattr(anonymous_client, method)(url, {}, format="json").status_code in (401, 403)


def test_interactions_are_recorded_once(api_client_with_scopes) -> None:
    client = api_client_with_scopes("interactions:write")
    batch = {"interactions": [interaction("evt-1"), interaction("evt-2", kind="content_view")]}
    first = client.post("/api/v1/interactions/bulk", batch, format="json")
    assert first.json() == bulk_answer(created=2)
    customer = Customer.objects.get()
    assert sorted(dirty_customer_ids()) == [customer.pk]
    recorded = Interaction.objects.get(idempotency_key="evt-1")
    assert recorded.properties == {"url": "https://shop.example.com/p/1", "campaign": 7}
    assert recorded.customer_id == customer.pk

    DirtyMark.objects.all().delete()
    again = client.post("/api/v1/interactions/bulk", batch, format="json")
    assert again.json() == bulk_answer(unchanged=2)
    assert Interaction.objects.count() == 2
    assert not DirtyMark.objects.exists()


# Revisions of one interaction's properties by its source, oldest first.
REVISIONS = [
    ("2026-11-11T00:05:00+08:00", {"coupon": "C-1", "state": "claimed"}),
    ("2026-11-12T09:00:00+08:00", {"coupon": "C-1", "state": "used"}),
    ("2026-11-20T00:00:00+08:00", {"coupon": "C-1", "state": "used", "order": "o-1"}),
]
BULK_URL = "/api/v1/interactions/bulk"


def revision(version: int) -> dict:
    at, properties = REVISIONS[version]
    return interaction("evt-9", kind="coupon_claim", properties=properties, source_updated_at=at)


@pytest.mark.parametrize("arrival", list(itertools.permutations(range(3))))
def test_the_newest_revision_of_an_interaction_stands_whatever_the_arrival_order(
    api_client_with_scopes, arrival
) -> None:
    client = api_client_with_scopes("interactions:write")
    newest_so_far = -1
    for step, version in enumerate(arrival):
        DirtyMark.objects.all().delete()
        body = client.post(BULK_URL, {"interactions": [revision(version)]}, format="json").json()
        expected = arrival_outcome(step=step, version=version, newest_so_far=newest_so_far)
        assert body == expected, (arrival, step)
        # Only a new interaction is scored: a revision or a stale one marks nobody.
        assert DirtyMark.objects.exists() == (step == 0)
        newest_so_far = max(newest_so_far, version)
    recorded = Interaction.objects.get()
    assert (recorded.kind, recorded.properties, recorded.occurred_at.isoformat()) == (
        "coupon_claim",
        REVISIONS[2][1],
        "2026-11-10T16:05:00+00:00",
    )
    assert recorded.source_updated_at.isoformat() == "2026-11-19T16:00:00+00:00"
    # Without a version a re-send is no revision: the properties stay.
    unversioned = interaction("evt-9", kind="coupon_claim", properties={"state": "claimed"})
    body = client.post(BULK_URL, {"interactions": [unversioned]}, format="json").json()
    assert (body["updated"], body["unchanged"], body["stale"]) == (0, 1, 0)
    assert Interaction.objects.get().properties == REVISIONS[2][1]


def test_an_interaction_first_sent_without_a_version_takes_a_versioned_revision(
    api_client_with_scopes,
) -> None:
    client = api_client_with_scopes("interactions:write")
    client.post(BULK_URL, {"interactions": [interaction("evt-1")]}, format="json")
    revised = interaction("evt-1", properties={"url": "u"}, source_updated_at=REVISIONS[1][0])
    body = client.post(BULK_URL, {"interactions": [revised]}, format="json").json()
    assert (body["created"], body["updated"]) == (0, 1)
    assert Interaction.objects.get().properties == {"url": "u"}


def test_the_same_properties_under_a_newer_version_record_only_the_version(
    api_client_with_scopes,
) -> None:
    client = api_client_with_scopes("interactions:write")
    client.post(BULK_URL, {"interactions": [revision(0)]}, format="json")
    same = {**revision(0), "source_updated_at": REVISIONS[2][0]}
    body = client.post(BULK_URL, {"interactions": [same]}, format="json").json()
    assert (body["updated"], body["unchanged"], body["stale"]) == (0, 1, 0)
    assert Interaction.objects.get().source_updated_at.isoformat() == "2026-11-19T16:00:00+00:00"
    body = client.post(BULK_URL, {"interactions": [revision(1)]}, format="json").json()
    assert (body["updated"], body["unchanged"], body["stale"]) == (0, 0, 1)
    assert Interaction.objects.get().properties == REVISIONS[0][1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("first", "second"), [(2, 1), (1, 2)])
def test_of_two_concurrent_revisions_the_newer_stands(first, second) -> None:
    """The first revision is held uncommitted until the second waits for its row."""
    from crm.inputs import InteractionIn
    from crm.services.interactions import interactions_ingest
    from tests.crm.support import second_waits_for_first

    def ingest(version: int):  # type: ignore[no-untyped-def]
        row = msgspec.json.decode(msgspec.json.encode(revision(version)), type=InteractionIn)
        return interactions_ingest(interactions=[row], actor="test")

    ingest(0)
    outcomes = second_waits_for_first(lambda: ingest(first), lambda: ingest(second))
    assert (outcomes[0].updated, outcomes[0].stale) == (1, 0)
    assert (outcomes[1].updated, outcomes[1].stale) == ((1, 0) if second == 2 else (0, 1))
    recorded = Interaction.objects.get()
    assert recorded.properties == REVISIONS[2][1]
    assert recorded.source_updated_at.isoformat() == "2026-11-19T16:00:00+00:00"


def test_an_interaction_version_out_of_range_is_rejected(api_client_with_scopes) -> None:
    row = interaction("evt-1", source_updated_at="1999-12-31T23:59:59+00:00")
    body = (
        api_client_with_scopes("interactions:write")
        .post(BULK_URL, {"interactions": [row]}, format="json")
        .json()
    )
    assert body["rejected"] == [
        {
            "index": 0,
            "errors": {
                "source_updated_at": ["Must lie between 2000-01-01T00:00:00Z and one day from now."]
            },
        }
    ]
    assert not Interaction.objects.exists()


def test_bad_interaction_rows_are_listed(api_client_with_scopes) -> None:
    rows = [
        interaction("ok"),
        interaction("naive", occurred_at="2026-11-11T00:05:00"),
        interaction("kind", kind="teleport"),
        interaction("", source="x"),
        interaction("props", properties=["not", "an", "object"]),
    ]
    body = (
        api_client_with_scopes("interactions:write")
        .post("/api/v1/interactions/bulk", {"interactions": rows}, format="json")
        .json()
    )
    assert body["created"] == 1
    rejected = {r["index"]: list(r["errors"]) for r in body["rejected"]}
    assert rejected == {
        1: ["occurred_at"],
        2: ["kind"],
        3: ["idempotency_key"],
        4: ["properties"],
    }
    assert list(Interaction.objects.values_list("idempotency_key", flat=True)) == ["ok"]


def test_interaction_list_filters_without_n_plus_one(api_client_with_scopes) -> None:
    client = api_client_with_scopes("interactions:write", "interactions:read")
    client.post("/api/v1/interactions/bulk", {"interactions": [interaction("a")]}, format="json")
    customer_id = Customer.objects.get().pk
    with CaptureQueriesContext(connection) as few:
        response = client.get(f"/api/v1/interactions?customer_id={customer_id}&kind=link_click")
    assert [r["idempotency_key"] for r in response.json()["results"]] == ["a"]
    rows = [interaction(f"b{i}") for i in range(20)]
    client.post("/api/v1/interactions/bulk", {"interactions": rows}, format="json")
    with CaptureQueriesContext(connection) as more:
        response = client.get(f"/api/v1/interactions?customer_id={customer_id}")
    assert len(response.json()["results"]) == 21
    assert len(more) == len(few)


def test_opt_out_then_an_older_opt_in_arriving_late_keeps_the_opt_out(
    api_client_with_scopes,
) -> None:
    client = api_client_with_scopes("consents:write", "consents:read")
    now = timezone.now()
    opt_out = {
        "identities": [UNIONID],
        "channel": "wecom",
        "status": "opted_out",
        "source": "wecom_callback",
        "occurred_at": now.isoformat(),
    }
    response = client.post("/api/v1/consents", opt_out, format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "opted_out"
    assert response.json()["is_applied"] is True

    late_opt_in = {
        **opt_out,
        "status": "opted_in",
        "occurred_at": (now - timedelta(hours=1)).isoformat(),
    }
    response = client.post("/api/v1/consents", late_opt_in, format="json")
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["is_applied"]) == ("opted_out", False)
    assert Consent.objects.get().status == "opted_out"
    assert ConsentEvent.objects.count() == 2

    # The same event re-sent is not recorded twice.
    again = client.post("/api/v1/consents", late_opt_in, format="json")
    assert again.status_code == 200
    assert again.json()["is_recorded"] is False
    assert ConsentEvent.objects.count() == 2

    newer_opt_in = {
        **opt_out,
        "status": "opted_in",
        "occurred_at": (now + timedelta(1)).isoformat(),
    }
    assert client.post("/api/v1/consents", newer_opt_in, format="json").json()["status"] == (
        "opted_in"
    )
    history = client.get("/api/v1/consents/events?channel=wecom").json()["results"]
    assert [e["status"] for e in history] == ["opted_in", "opted_out", "opted_in"]


def test_at_the_same_instant_opting_out_wins(api_client_with_scopes) -> None:
    customer = CustomerFactory()
    client = api_client_with_scopes("consents:write")
    at = timezone.now().isoformat()
    base = {"customer_id": customer.pk, "channel": "sms", "source": "shop", "occurred_at": at}
    client.post("/api/v1/consents", {**base, "status": "opted_out"}, format="json")
    body = client.post("/api/v1/consents", {**base, "status": "opted_in"}, format="json").json()
    assert (body["status"], body["is_applied"]) == ("opted_out", False)


def test_consent_validation_names_fields(api_client_with_scopes) -> None:
    client = api_client_with_scopes("consents:write")
    response = client.post(
        "/api/v1/consents", {"channel": "fax", "status": "maybe", "source": ""}, format="json"
    )
    assert response.status_code == 400
    assert {"channel", "status", "source"} <= set(response.json()["errors"])
    both = client.post(
        "/api/v1/consents",
        {"channel": "sms", "status": "opted_in", "source": "shop"},
        format="json",
    )
    assert both.status_code == 400
    assert "customer_id" in both.json()["errors"]
    unknown = client.post(
        "/api/v1/consents",
        {"customer_id": 999999, "channel": "sms", "status": "opted_in", "source": "shop"},
        format="json",
    )
    assert unknown.status_code == 404
    assert not ConsentEvent.objects.exists()


def test_consent_list_filters(api_client_with_scopes) -> None:
    first, second = CustomerFactory(), CustomerFactory()
    client = api_client_with_scopes("consents:write", "consents:read")
    for customer, status in ((first, "opted_out"), (second, "opted_in")):
        client.post(
            "/api/v1/consents",
            {"customer_id": customer.pk, "channel": "wecom", "status": status, "source": "s"},
            format="json",
        )
    results = client.get("/api/v1/consents?status=opted_out").json()["results"]
    assert [r["customer_id"] for r in results] == [first.pk]
