"""Accepted values of every input (core.validators) through the ingestion structs and the bulk
endpoints; and the ingestion structs restate some model choices as literals (msgspec validates
them in C): they must not drift apart."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, get_args, get_origin

import pytest
from django.db import models
from django.utils import timezone, translation
from rest_framework.test import APIClient

from core import validators
from core.services.api_keys import api_key_create
from crm.inputs import CustomerIn, IdentityIn, InteractionIn, OrderIn
from crm.models import (
    Consent,
    ConsentEvent,
    Customer,
    Gender,
    GroupMembership,
    IdentityProvider,
    Interaction,
    InteractionKind,
    Order,
    OrderStatus,
    SourceChannel,
)
from tests.crm.input_support import (
    LONE_SURROGATE,
    NUL,
    assert_lists_still_answer,
    invalid,
    send_json,
)
from tests.crm.support import bulk_answer
from tests.factories import CustomerFactory, GroupFactory


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Messages are asserted in English, whatever language an earlier test left active."""
    with translation.override("en"):
        yield


def _literal_values(annotation: object) -> set[str]:
    if get_origin(annotation) is Literal:
        return set(get_args(annotation))
    values: set[str] = set()
    for arg in get_args(annotation):
        values |= _literal_values(arg)
    return values


@pytest.mark.parametrize(
    ("struct", "field", "choices", "extra"),
    [
        (OrderIn, "status", OrderStatus, set()),
        (InteractionIn, "kind", InteractionKind, set()),
        (IdentityIn, "provider", IdentityProvider, set()),
        (CustomerIn, "gender", Gender, set()),
        (CustomerIn, "source_channel", SourceChannel, {""}),
    ],
)
def test_literals_match_the_model_choices(
    struct: type, field: str, choices: type[models.TextChoices], extra: set[str]
) -> None:
    annotation = struct.__annotations__[field]
    assert _literal_values(annotation) == set(choices.values) | extra


def test_the_event_time_range_is_inclusive_at_both_ends() -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert validators.event_time_error(datetime(2000, 1, 1, tzinfo=UTC), now=now) is None
    assert validators.event_time_error(now + timedelta(days=1), now=now) is None
    for value in (
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
        now + timedelta(days=1, microseconds=1),
        datetime(1, 1, 1, 1, 0, tzinfo=timezone.get_fixed_timezone(14 * 60)),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    ):
        assert validators.event_time_error(value, now=now) == EVENT_TIME


def test_currencies_amounts_and_birthdays() -> None:
    assert validators.currency_error("CNY") is None
    assert validators.currency_error("USD") is None
    for code in ("XXX", "XTS", "XAU", "cny", "ABC"):
        assert validators.currency_error(code) == CURRENCY
    assert validators.money_error(Decimal("999999999999.99")) is None
    assert validators.money_error(Decimal(10**12)) == (
        "At most 12 digits before the decimal point and 2 after it."
    )
    assert validators.birthday_error(date(1900, 1, 1)) is None
    assert validators.birthday_error(date(1899, 12, 31)) == "Must lie between 1900-01-01 and today."


def test_json_error_names_the_first_unstorable_string_and_bounds_the_size() -> None:
    assert validators.json_error({"a": [1, "ok", {"b": None}]}) is None
    assert validators.json_error({"a": [1, {"b": NUL}]}) == ("a.1.b", TEXT)
    assert validators.json_error([LONE_SURROGATE]) == ("0", TEXT)
    assert validators.json_error({"a": "x" * 20}, max_bytes=16) == (
        "",
        "At most 16 bytes of JSON.",
    )


# Accepted values (core.validators) through the bulk endpoints: a poisoned row is rejected
# alone, the rows around it land, and every list reading them still answers.

EVENT_TIME = "Must lie between 2000-01-01T00:00:00Z and one day from now."
TEXT = "Must not contain a NUL character or a lone surrogate."
CURRENCY = "Not an ISO 4217 currency code in circulation."


def _in(delta: timedelta) -> str:
    return (timezone.now() + delta).isoformat()


def order_row(key: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "source": "youzan",
        "external_id": key,
        "customer": {"identities": [{"provider": "phone", "value": "13912345678"}]},
        "status": "paid",
        "total_amount": "398.00",
        "currency": "CNY",
        "paid_at": "2026-06-18T20:15:00+08:00",
        "items": [{"sku": "SERUM-30", "name": "精华", "quantity": 2, "unit_price": "199.00"}],
    }
    row.update(overrides)
    return row


def _bad_item(**overrides: Any) -> list[dict[str, Any]]:
    return [{"sku": "SERUM-30", "name": "精华", "quantity": 1, "unit_price": "1.00", **overrides}]


@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        ({"paid_at": "0001-01-01T01:00:00+14:00"}, {"paid_at": [EVENT_TIME]}),
        ({"paid_at": "9999-12-31T23:59:59Z"}, {"paid_at": [EVENT_TIME]}),
        ({"paid_at": "2000-01-01T09:59:59+10:00"}, {"paid_at": [EVENT_TIME]}),
        ({"paid_at": "+2d"}, {"paid_at": [EVENT_TIME]}),
        ({"currency": "XXX"}, {"currency": [CURRENCY]}),
        ({"external_id": NUL}, {"external_id": [TEXT]}),
        ({"store": NUL}, {"store": [TEXT]}),
        ({"channel": LONE_SURROGATE}, {"channel": [TEXT]}),
        ({LONE_SURROGATE: "an unknown field"}, {"a\ufffdb": [TEXT]}),
        ({"items": _bad_item(name=NUL)}, {"items.0.name": [TEXT]}),
        ({"items": _bad_item(category=LONE_SURROGATE)}, {"items.0.category": [TEXT]}),
        (
            {
                "customer": {
                    "identities": [{"provider": "external", "namespace": NUL, "value": "x"}]
                }
            },
            {"customer.identities.0.namespace": [TEXT]},
        ),
        (
            {
                "customer": {
                    "identities": [
                        {"provider": "external", "namespace": LONE_SURROGATE, "value": "x"}
                    ]
                }
            },
            {"customer.identities.0.namespace": [TEXT]},
        ),
    ],
)
def test_a_poisoned_order_is_rejected_alone(
    api_client_with_scopes, overrides: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    if overrides.get("paid_at") == "+2d":
        overrides = {"paid_at": _in(timedelta(days=1, minutes=5))}
    rows = [order_row("SO1"), order_row("SO2", **overrides), order_row("SO3")]
    client = api_client_with_scopes("orders:write")
    response = send_json(client, "post", "/api/v1/orders/bulk", {"orders": rows})
    assert response.status_code == 200
    assert response.json() == bulk_answer(created=2, rejected=[{"index": 1, "errors": errors}])
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["SO1", "SO3"]
    assert_lists_still_answer()


def test_orders_at_the_ends_of_the_range_and_in_real_currencies_are_accepted(
    api_client_with_scopes,
) -> None:
    rows = [
        order_row("SO1", paid_at="2000-01-01T00:00:00Z", currency="CNY"),
        order_row("SO2", paid_at="2000-01-01T13:00:00+13:00", currency="USD"),
        order_row("SO3", paid_at=_in(timedelta(hours=23)), currency="EUR"),
    ]
    client = api_client_with_scopes("orders:write")
    response = send_json(client, "post", "/api/v1/orders/bulk", {"orders": rows})
    assert response.json()["rejected"] == []
    assert sorted(Order.objects.values_list("currency", flat=True)) == ["CNY", "EUR", "USD"]
    assert_lists_still_answer()


def customer_row(value: str, **overrides: Any) -> dict[str, Any]:
    return {"identities": [{"provider": "unionid", "value": value}], **overrides}


@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        ({"first_seen_at": "0001-01-01T01:00:00+14:00"}, {"first_seen_at": [EVENT_TIME]}),
        ({"first_seen_at": "9999-12-31T23:59:59Z"}, {"first_seen_at": [EVENT_TIME]}),
        ({"birthday": "0001-01-01"}, {"birthday": ["Must lie between 1900-01-01 and today."]}),
        ({"display_name": NUL}, {"display_name": [TEXT]}),
        ({"display_name": LONE_SURROGATE}, {"display_name": [TEXT]}),
        ({"city": NUL}, {"city": [TEXT]}),
        ({"owner": LONE_SURROGATE}, {"owner": [TEXT]}),
    ],
)
def test_a_poisoned_customer_is_rejected_alone(
    api_client_with_scopes, overrides: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    rows = [customer_row("u1"), customer_row("u2", **overrides), customer_row("u3")]
    client = api_client_with_scopes("customers:write")
    response = send_json(client, "post", "/api/v1/customers/bulk", {"customers": rows})
    assert response.status_code == 200
    assert response.json() == bulk_answer(created=2, rejected=[{"index": 1, "errors": errors}])
    assert Customer.objects.count() == 2
    assert_lists_still_answer()


def interaction_row(key: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "customer": {"identities": [{"provider": "unionid", "value": "u1"}]},
        "kind": "link_click",
        "occurred_at": "2026-11-11T00:05:00+08:00",
        "source": "wecom_sidebar",
        "idempotency_key": key,
        "properties": {"url": "https://shop.example.com/p/1"},
    }
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        ({"occurred_at": "0001-01-01T01:00:00+14:00"}, {"occurred_at": [EVENT_TIME]}),
        ({"occurred_at": "9999-12-31T23:59:59Z"}, {"occurred_at": [EVENT_TIME]}),
        ({"source": NUL}, {"source": [TEXT]}),
        ({"idempotency_key": LONE_SURROGATE}, {"idempotency_key": [TEXT]}),
        ({"properties": {"a": {"b": ["ok", NUL]}}}, {"properties": [f"a.b.1: {TEXT}"]}),
        ({"properties": {NUL: 1}}, {"properties": [f"a\ufffdb: {TEXT}"]}),
        ({"properties": {LONE_SURROGATE: 1}}, {"properties": [f"a\ufffdb: {TEXT}"]}),
        ({"properties": {"a": LONE_SURROGATE}}, {"properties": [f"a: {TEXT}"]}),
        (
            {"properties": {"a": "x" * 17_000}},
            {"properties": ["At most 16384 bytes of JSON."]},
        ),
    ],
)
def test_a_poisoned_interaction_is_rejected_alone(
    api_client_with_scopes, overrides: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    rows = [interaction_row("k1"), interaction_row("k2", **overrides), interaction_row("k3")]
    client = api_client_with_scopes("interactions:write")
    response = send_json(client, "post", "/api/v1/interactions/bulk", {"interactions": rows})
    assert response.status_code == 200
    assert response.json() == bulk_answer(created=2, rejected=[{"index": 1, "errors": errors}])
    assert sorted(Interaction.objects.values_list("idempotency_key", flat=True)) == ["k1", "k3"]
    assert_lists_still_answer()


# The same ranges through the DRF endpoints (their CharFields refuse NUL bytes and lone
# surrogates already; DRF itself refuses a time that overflows the business time zone).

DRF_TIMES = ["0001-01-02T00:00:00+14:00", "1999-12-31T23:59:59+00:30", "9999-12-30T00:00:00Z"]


@pytest.mark.parametrize("value", DRF_TIMES)
def test_patch_and_put_refuse_a_first_seen_at_out_of_range(api_client_with_scopes, value) -> None:
    customer = CustomerFactory(display_name="甲")
    before = customer.first_seen_at
    client = api_client_with_scopes("customers:write")
    patched = send_json(
        client, "patch", f"/api/v1/customers/{customer.pk}", {"first_seen_at": value}
    )
    assert (patched.status_code, patched.json()) == (400, invalid({"first_seen_at": [EVENT_TIME]}))
    put = send_json(
        client, "put", "/api/v1/customers/by-identity/unionid/u9", {"first_seen_at": value}
    )
    assert (put.status_code, put.json()) == (400, invalid({"first_seen_at": [EVENT_TIME]}))
    assert list(Customer.objects.values_list("first_seen_at", flat=True)) == [before]
    assert_lists_still_answer()


def test_patch_refuses_a_birthday_out_of_range(api_client_with_scopes) -> None:
    customer = CustomerFactory(birthday=date(1990, 5, 1))
    client = api_client_with_scopes("customers:write")
    response = send_json(
        client, "patch", f"/api/v1/customers/{customer.pk}", {"birthday": "0001-01-01"}
    )
    assert (response.status_code, response.json()) == (
        400,
        invalid({"birthday": ["Must lie between 1900-01-01 and today."]}),
    )
    customer.refresh_from_db()
    assert customer.birthday == date(1990, 5, 1)


@pytest.mark.parametrize("value", DRF_TIMES)
def test_a_consent_at_a_time_out_of_range_is_refused(api_client_with_scopes, value) -> None:
    customer = CustomerFactory()
    body = {
        "customer_id": customer.pk,
        "channel": "wecom",
        "status": "opted_out",
        "source": "shop",
        "occurred_at": value,
    }
    response = send_json(api_client_with_scopes("consents:write"), "post", "/api/v1/consents", body)
    assert (response.status_code, response.json()) == (400, invalid({"occurred_at": [EVENT_TIME]}))
    assert not ConsentEvent.objects.exists()
    assert not Consent.objects.exists()
    assert_lists_still_answer()


@pytest.mark.parametrize("value", DRF_TIMES)
def test_a_member_list_observed_out_of_range_is_refused(api_client_with_scopes, value) -> None:
    group, customer = GroupFactory(), CustomerFactory()
    response = send_json(
        api_client_with_scopes("groups:write"),
        "put",
        f"/api/v1/groups/{group.pk}/members",
        {"customer_ids": [customer.pk], "observed_at": value},
    )
    assert (response.status_code, response.json()) == (400, invalid({"observed_at": [EVENT_TIME]}))
    assert not GroupMembership.objects.exists()
    assert_lists_still_answer()


def test_refusals_speak_chinese_by_default(db) -> None:
    _, raw_key = api_key_create(name="shop", scopes=["orders:write"])
    client = APIClient(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    rows = [
        order_row("SO1", currency="XXX"),
        order_row("SO2", store=NUL),
        order_row("SO3", paid_at="0001-01-01T01:00:00+14:00"),
    ]
    body = send_json(client, "post", "/api/v1/orders/bulk", {"orders": rows}).json()
    assert [r["errors"] for r in body["rejected"]] == [
        {"currency": ["不是现行流通的 ISO 4217 币种代码（如 CNY、USD）。"]},
        {"store": ["不能包含空字符（NUL）或无效的 Unicode 字符（孤立代理项）。"]},
        {"paid_at": ["时间须在 2000-01-01T00:00:00Z（UTC）至此刻之后一天以内。"]},
    ]
    assert not Order.objects.exists()
