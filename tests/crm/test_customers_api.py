import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.services.api_keys import api_key_create, api_key_revoke
from crm.models import Customer, CustomerMerge, Identity
from tests.crm.support import arrival_outcome, bulk_answer
from tests.factories import (
    CustomerFactory,
    IdentityFactory,
    StaffMemberFactory,
    TagFactory,
)

pytestmark = pytest.mark.django_db

PHONE = "13812341234"


def test_list_without_a_key_is_refused(anonymous_client) -> None:
    response = anonymous_client.get("/api/v1/customers")
    assert response.status_code == 401


def test_list_with_another_scope_is_refused(api_client_with_scopes) -> None:
    response = api_client_with_scopes("orders:read").get("/api/v1/customers")
    assert response.status_code == 403


def test_revoked_key_is_refused(anonymous_client) -> None:
    api_key, raw_key = api_key_create(name="t", scopes=["customers:read"])
    api_key_revoke(prefix=api_key.prefix)
    anonymous_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert anonymous_client.get("/api/v1/customers").status_code == 401


def test_list_masks_phones_without_the_personal_data_scope(api_client_with_scopes) -> None:
    IdentityFactory(provider="phone", raw_value=PHONE)
    masked = api_client_with_scopes("customers:read").get("/api/v1/customers").json()
    assert masked["results"][0]["identities"][0]["value"] == "13****34"
    full = api_client_with_scopes("customers:read", "personal_data:read").get("/api/v1/customers")
    assert full.json()["results"][0]["identities"][0]["value"] == "+8613812341234"


def test_every_identity_value_is_masked_without_the_personal_data_scope(
    api_client_with_scopes,
) -> None:
    """WeCom ids and unionids are 敏感个人信息 too, whatever the sender's is_sensitive flag."""
    customer = CustomerFactory()
    IdentityFactory(customer=customer, provider="wecom", raw_value="wmAbCdEf0123456789xyz")
    IdentityFactory(customer=customer, provider="unionid", raw_value="oUnion0123456789abcdef")
    assert not customer.identities.filter(is_sensitive=True).exists()
    masked = api_client_with_scopes("customers:read").get("/api/v1/customers").json()
    values = sorted(identity["value"] for identity in masked["results"][0]["identities"])
    assert values == sorted(customer.identities.values_list("value_masked", flat=True))
    assert all("****" in value for value in values)
    full = api_client_with_scopes("customers:read", "personal_data:read").get("/api/v1/customers")
    values = sorted(identity["value"] for identity in full.json()["results"][0]["identities"])
    assert values == ["oUnion0123456789abcdef", "wmAbCdEf0123456789xyz"]


def test_list_filters_by_tag_and_source_channel(api_client_with_scopes) -> None:
    tagged, _untagged = CustomerFactory(source_channel="douyin"), CustomerFactory()
    tag = TagFactory()
    tagged.customer_tags.create(tag=tag)
    client = api_client_with_scopes("customers:read")
    ids = [c["id"] for c in client.get(f"/api/v1/customers?tag={tag.pk}").json()["results"]]
    assert ids == [tagged.pk]
    response = client.get("/api/v1/customers?source_channel=kuaishou")
    assert response.json()["results"] == []


def test_list_searches_by_phone(api_client_with_scopes) -> None:
    wanted = IdentityFactory(provider="phone", raw_value=PHONE).customer
    IdentityFactory(provider="phone", raw_value="13900000000")
    response = api_client_with_scopes("customers:read").get(
        "/api/v1/customers?search=138-1234-1234"
    )
    assert [c["id"] for c in response.json()["results"]] == [wanted.pk]


def test_list_has_no_n_plus_one(api_client_with_scopes) -> None:
    client = api_client_with_scopes("customers:read")

    def queries_for_page() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/v1/customers?page_size=100").status_code == 200
        return len(captured)

    queries_for_page()  # the key's first use records last_used_at once
    owner = StaffMemberFactory()
    for _ in range(3):
        IdentityFactory(provider="phone", customer=CustomerFactory(owner=owner))
    few = queries_for_page()
    for _ in range(30):
        IdentityFactory(customer=CustomerFactory(owner=owner))
    assert queries_for_page() == few


def test_bulk_upsert_reports_each_bad_row_and_keeps_the_good(api_client_with_scopes) -> None:
    client = api_client_with_scopes("customers:write")
    payload = {
        "customers": [
            {"identities": [{"provider": "unionid", "value": "u1"}], "display_name": "甲"},
            {"identities": [{"provider": "openid", "value": "o1"}]},  # namespace missing
            {"identities": [], "display_name": "乙"},
            {"identities": [{"provider": "phone", "value": PHONE}], "gender": "female"},
        ]
    }
    response = client.post("/api/v1/customers/bulk", payload, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"], body["stale"]) == (2, 0, 0, 0)
    assert [r["index"] for r in body["rejected"]] == [1, 2]
    assert body["rejected"][0]["errors"] == {
        "identities.0.namespace": ["Provider openid needs a namespace."]
    }
    assert list(body["rejected"][1]["errors"]) == ["identities"]
    again = client.post("/api/v1/customers/bulk", payload, format="json").json()
    assert (again["created"], again["updated"], again["unchanged"], again["stale"]) == (0, 0, 2, 0)


def test_bulk_upsert_merges_customers_named_together(api_client_with_scopes) -> None:
    first = IdentityFactory(provider="unionid", raw_value="u1").customer
    second = IdentityFactory(provider="phone", raw_value=PHONE).customer
    payload = {
        "customers": [
            {
                "identities": [
                    {"provider": "phone", "value": PHONE},
                    {"provider": "unionid", "value": "u1"},
                ]
            }
        ]
    }
    body = (
        api_client_with_scopes("customers:write")
        .post("/api/v1/customers/bulk", payload, format="json")
        .json()
    )
    assert body["updated"] == 1
    assert list(Customer.objects.values_list("pk", flat=True)) == [first.pk]
    assert Identity.objects.filter(customer=first).count() == 2
    assert CustomerMerge.objects.get().merged_customer_id == second.pk


def test_bulk_rejects_more_than_the_limit(api_client_with_scopes, settings) -> None:
    settings.API_BULK_MAX_ROWS = 2
    rows = [{"identities": [{"provider": "unionid", "value": f"u{i}"}]} for i in range(3)]
    response = api_client_with_scopes("customers:write").post(
        "/api/v1/customers/bulk", {"customers": rows}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_rows"
    assert Customer.objects.count() == 0


def test_no_phone_number_reaches_the_logs(api_client_with_scopes, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client = api_client_with_scopes("customers:write", "customers:read")
    client.put(f"/api/v1/customers/by-identity/phone/{PHONE}", {"city": "北京"}, format="json")
    client.get(f"/api/v1/customers/by-identity/phone/{PHONE}")
    client.get(f"/api/v1/customers?search={PHONE}")
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records
    assert PHONE not in logged
    assert PHONE[3:] not in logged


# Versions of one customer's profile from a pipeline, oldest first.
PROFILE_VERSIONS = [
    ("2026-10-01T08:00:00+08:00", {"display_name": "小王", "city": "杭州", "member_level": 1}),
    ("2026-10-02T08:00:00+08:00", {"display_name": "王小姐", "city": "上海", "member_level": 2}),
    ("2026-10-03T08:00:00+08:00", {"display_name": "王女士", "member_level": 3}),
]
BULK_URL = "/api/v1/customers/bulk"


def profile_row(version: int) -> dict:
    at, profile = PROFILE_VERSIONS[version]
    identities = [{"provider": "unionid", "value": "u-wang"}]
    return {"identities": identities, **profile, "source_updated_at": at}


@pytest.mark.parametrize("arrival", [(0, 2, 1), (2, 1, 0), (1, 2, 0)])
def test_an_older_profile_version_arriving_late_sets_nothing(
    api_client_with_scopes, arrival
) -> None:
    client = api_client_with_scopes("customers:write")
    newest_so_far = -1
    for step, version in enumerate(arrival):
        before = list(Customer.objects.values())
        body = client.post(BULK_URL, {"customers": [profile_row(version)]}, format="json").json()
        expected = arrival_outcome(step=step, version=version, newest_so_far=newest_so_far)
        if expected["stale"]:
            assert list(Customer.objects.values()) == before  # written nowhere
        assert body == expected, (arrival, step)
        newest_so_far = max(newest_so_far, version)
    customer = Customer.objects.get()
    # The newest version's fields, and the city only older versions set, from the last of
    # them that was applied (arrived before any newer one).
    applied = [v for step, v in enumerate(arrival) if v == max(arrival[: step + 1])]
    city = next(
        (PROFILE_VERSIONS[v][1]["city"] for v in reversed(applied) if v < 2),
        "",
    )
    assert (customer.display_name, customer.city, customer.member_level) == ("王女士", city, 3)
    assert customer.profile_source_updated_at.isoformat() == "2026-10-03T00:00:00+00:00"


def test_an_equal_profile_version_is_unchanged_and_rows_without_one_apply(
    api_client_with_scopes,
) -> None:
    client = api_client_with_scopes("customers:write")
    client.post(BULK_URL, {"customers": [profile_row(1)]}, format="json")
    same_version = {**profile_row(1), "display_name": "别名"}
    body = client.post(BULK_URL, {"customers": [same_version]}, format="json").json()
    assert (body["updated"], body["unchanged"], body["stale"]) == (0, 1, 0)
    assert Customer.objects.get().display_name == "王小姐"
    unversioned = {"identities": profile_row(1)["identities"], "display_name": "别名"}
    body = client.post(BULK_URL, {"customers": [unversioned]}, format="json").json()
    assert (body["updated"], body["unchanged"], body["stale"]) == (1, 0, 0)
    customer = Customer.objects.get()
    assert customer.display_name == "别名"
    assert customer.profile_source_updated_at.isoformat() == "2026-10-02T00:00:00+00:00"


def test_rows_of_one_customer_in_one_batch_are_judged_in_turn(api_client_with_scopes) -> None:
    rows = [profile_row(2), profile_row(0), profile_row(1)]
    body = (
        api_client_with_scopes("customers:write")
        .post(BULK_URL, {"customers": rows}, format="json")
        .json()
    )
    assert body == bulk_answer(created=1)
    customer = Customer.objects.get()
    assert (customer.display_name, customer.city, customer.member_level) == ("王女士", "", 3)


def test_a_profile_version_out_of_range_is_rejected(api_client_with_scopes) -> None:
    row = {**profile_row(0), "source_updated_at": "1999-12-31T23:59:59+00:00"}
    body = (
        api_client_with_scopes("customers:write")
        .post(BULK_URL, {"customers": [row]}, format="json")
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
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    "term",
    [
        "13870717759",
        "+8613870717759",
        "8613870717759",
        "008613870717759",
        "+86 138 7071 7759",
        "86-138-7071-7759",
        "138 7071 7759",
    ],
)
def test_list_search_finds_a_phone_in_any_usual_form(api_client_with_scopes, term) -> None:
    wanted = IdentityFactory(provider="phone", raw_value="13870717759").customer
    IdentityFactory(provider="phone", raw_value="13870717750")
    client = api_client_with_scopes("customers:read")
    response = client.get("/api/v1/customers", {"search": term})
    assert [c["id"] for c in response.json()["results"]] == [wanted.pk]
    # "+" unescaped in a query string arrives as a space.
    raw = client.get(f"/api/v1/customers?search={term}")
    assert [c["id"] for c in raw.json()["results"]] == [wanted.pk]
