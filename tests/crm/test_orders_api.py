"""Orders over the API: bulk upsert idempotency, later versions, bad rows, dirty marks, reads."""

import copy
import itertools
import logging
from datetime import timedelta
from decimal import Decimal
from functools import partial

import msgspec
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.services.api_keys import api_key_create, api_key_revoke
from crm.inputs import OrderIn
from crm.models import Customer, DirtyMark, Identity, Order, OrderItem
from crm.selectors.customers import dirty_customer_ids
from crm.services.orders import orders_bulk_upsert
from tests.crm.support import arrival_outcome, bulk_answer, second_waits_for_first
from tests.factories import CustomerFactory, OrderFactory, OrderItemFactory
from tests.support import run_together

pytestmark = pytest.mark.django_db

PHONE = "13912345678"
URL = "/api/v1/orders/bulk"


def order_row(external_id: str = "SO1", **overrides) -> dict:
    row = {
        "source": "youzan",
        "external_id": external_id,
        "customer": {"identities": [{"provider": "phone", "value": PHONE}]},
        "status": "paid",
        "total_amount": "398.00",
        "refunded_amount": "0.00",
        "currency": "CNY",
        "paid_at": "2026-06-18T20:15:00+08:00",
        "channel": "miniprogram",
        "items": [
            {
                "sku": "SERUM-30",
                "name": "精华 30ml",
                "category": "护肤",
                "quantity": 2,
                "unit_price": "199.00",
            }
        ],
    }
    row.update(overrides)
    return row


def test_without_a_key_is_refused(anonymous_client) -> None:
    response = anonymous_client.post(URL, {"orders": [order_row()]}, format="json")
    assert response.status_code in (401, 403)
    assert Order.objects.count() == 0


def test_wrong_scope_is_refused(api_client_with_scopes) -> None:
    for scopes in (("customers:write",), ("orders:read",)):
        response = api_client_with_scopes(*scopes).post(
            URL, {"orders": [order_row()]}, format="json"
        )
        assert response.status_code == 403
    assert Order.objects.count() == 0


def test_revoked_key_is_refused(anonymous_client) -> None:
    api_key, raw_key = api_key_create(name="shop", scopes=["orders:write"])
    api_key_revoke(prefix=api_key.prefix)
    anonymous_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    response = anonymous_client.post(URL, {"orders": [order_row()]}, format="json")
    assert response.status_code in (401, 403)
    assert Order.objects.count() == 0


def test_creates_orders_items_and_the_customer(api_client_with_scopes) -> None:
    client = api_client_with_scopes("orders:write")
    response = client.post(URL, {"orders": [order_row("SO1"), order_row("SO2")]}, format="json")
    assert response.status_code == 200
    assert response.json() == bulk_answer(created=2)
    customer = Customer.objects.get()
    assert Identity.objects.get().customer_id == customer.pk
    assert customer.first_seen_at.isoformat() == "2026-06-18T12:15:00+00:00"
    order = Order.objects.get(external_id="SO1")
    assert (order.customer_id, order.total_amount, order.status) == (
        customer.pk,
        Decimal("398.00"),
        "paid",
    )
    item = OrderItem.objects.get(order=order)
    assert (item.line_no, item.sku, item.quantity, item.unit_price, item.customer_id) == (
        1,
        "SERUM-30",
        2,
        Decimal("199.00"),
        customer.pk,
    )
    assert sorted(dirty_customer_ids()) == [customer.pk]


def test_same_batch_twice_changes_nothing(api_client_with_scopes) -> None:
    client = api_client_with_scopes("orders:write")
    batch = {"orders": [order_row("SO1"), order_row("SO2")]}
    client.post(URL, batch, format="json")
    before = list(Order.objects.values_list("id", "updated_at").order_by("id"))
    items_before = list(OrderItem.objects.values_list("id", flat=True).order_by("id"))
    DirtyMark.objects.all().delete()

    response = client.post(URL, batch, format="json")
    assert response.json() == bulk_answer(unchanged=2)
    assert list(Order.objects.values_list("id", "updated_at").order_by("id")) == before
    assert list(OrderItem.objects.values_list("id", flat=True).order_by("id")) == items_before
    assert Customer.objects.count() == 1
    assert not DirtyMark.objects.exists()


def test_a_later_version_updates_the_order_and_replaces_items(api_client_with_scopes) -> None:
    client = api_client_with_scopes("orders:write")
    client.post(URL, {"orders": [order_row("SO1")]}, format="json")
    DirtyMark.objects.all().delete()
    refund = order_row(
        "SO1",
        status="partially_refunded",
        refunded_amount="199.00",
        items=[{"sku": "SERUM-30", "quantity": 1, "unit_price": "199.00"}],
    )
    response = client.post(URL, {"orders": [refund]}, format="json")
    assert response.json() == bulk_answer(updated=1)
    order = Order.objects.get()
    assert (order.status, order.refunded_amount) == ("partially_refunded", Decimal("199.00"))
    assert list(order.items.values_list("line_no", "quantity")) == [(1, 1)]
    assert order.customer_id in dirty_customer_ids()


def test_items_carry_the_purchase_time_while_their_order_counts(api_client_with_scopes) -> None:
    client = api_client_with_scopes("orders:write")
    client.post(URL, {"orders": [order_row("SO1")]}, format="json")
    paid_at = Order.objects.get().paid_at
    assert paid_at is not None
    assert list(OrderItem.objects.values_list("purchased_at", flat=True)) == [paid_at]

    partly = order_row("SO1", status="partially_refunded", refunded_amount="100.00")
    client.post(URL, {"orders": [partly]}, format="json")
    assert list(OrderItem.objects.values_list("purchased_at", flat=True)) == [paid_at]

    refunded = order_row("SO1", status="refunded", refunded_amount="398.00")
    assert client.post(URL, {"orders": [refunded]}, format="json").json()["updated"] == 1
    assert list(OrderItem.objects.values_list("purchased_at", flat=True)) == [None]

    client.post(URL, {"orders": [order_row("SO2", status="cancelled")]}, format="json")
    assert OrderItem.objects.get(order__external_id="SO2").purchased_at is None


def test_naming_another_customer_moves_the_order_and_marks_both(api_client_with_scopes) -> None:
    client = api_client_with_scopes("orders:write")
    client.post(URL, {"orders": [order_row("SO1")]}, format="json")
    first = Customer.objects.get()
    DirtyMark.objects.all().delete()
    moved = order_row("SO1", customer={"identities": [{"provider": "unionid", "value": "u-2"}]})
    assert client.post(URL, {"orders": [moved]}, format="json").json()["updated"] == 1
    second = Customer.objects.exclude(pk=first.pk).get()
    assert Order.objects.get().customer_id == second.pk
    assert OrderItem.objects.get().customer_id == second.pk
    assert dirty_customer_ids() == {
        first.pk,
        second.pk,
    }


def test_bad_rows_are_listed_and_good_rows_kept(api_client_with_scopes) -> None:
    client = api_client_with_scopes("orders:write")
    rows = [
        order_row("SO1"),
        order_row("SO2", total_amount="-1"),
        order_row("SO3", status="shipped"),
        order_row("SO4", customer={"identities": [{"provider": "phone", "value": "12"}]}),
        order_row("SO5", refunded_amount="999.00"),
        order_row("SO6", paid_at=None),
        order_row("SO7", items=[{"sku": "A", "quantity": 0, "unit_price": "1.00"}]),
        {"external_id": "SO8"},
        "not an object",
        order_row("SO10", total_amount="1.001"),
    ]
    response = client.post(URL, {"orders": rows}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (1, 0, 0)
    rejected = {r["index"]: r["errors"] for r in body["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert rejected[1] == {"total_amount": ["Must be a number not below 0."]}
    assert list(rejected[2]) == ["status"]
    assert rejected[3] == {"customer.identities.0.value": ["Not a valid phone number."]}
    assert rejected[4] == {"refunded_amount": ["Must not exceed total_amount."]}
    assert rejected[5] == {"paid_at": ["Required unless the order is cancelled."]}
    assert rejected[6] == {"items.0.quantity": ["Expected `int` >= 1"]}
    assert list(rejected[7]) == ["source"]  # the first missing field
    assert list(rejected[8]) == ["non_field_errors"]
    assert rejected[9] == {
        "total_amount": ["At most 12 digits before the decimal point and 2 after it."]
    }
    assert list(Order.objects.values_list("external_id", flat=True)) == ["SO1"]


def test_a_repeated_order_in_one_batch_keeps_the_last_version(api_client_with_scopes) -> None:
    rows = [order_row("SO1"), order_row("SO1", status="refunded", refunded_amount="398.00")]
    body = api_client_with_scopes("orders:write").post(URL, {"orders": rows}, format="json").json()
    assert body["created"] == 1
    assert body["rejected"] == [
        {"index": 0, "errors": {"external_id": ["Superseded by row 1 of the same batch."]}}
    ]
    assert Order.objects.get().status == "refunded"


@pytest.mark.parametrize(
    ("body", "code"),
    [({"orders": []}, "rows_not_a_list"), ({"orders": {}}, "rows_not_a_list"), ({}, None)],
)
def test_a_malformed_envelope_is_a_400(api_client_with_scopes, body, code) -> None:
    response = api_client_with_scopes("orders:write").post(URL, body, format="json")
    assert response.status_code == 400
    assert "orders" in response.json()["errors"]


def test_malformed_json_is_a_400(api_client_with_scopes) -> None:
    response = api_client_with_scopes("orders:write").post(
        URL, b'{"orders": [', content_type="application/json"
    )
    assert response.status_code == 400


def test_more_rows_than_the_limit_are_refused(api_client_with_scopes, settings) -> None:
    settings.API_BULK_MAX_ROWS = 2
    rows = [order_row(f"SO{i}") for i in range(3)]
    response = api_client_with_scopes("orders:write").post(URL, {"orders": rows}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_rows"
    assert Order.objects.count() == 0


def test_a_batch_costs_the_same_queries_for_one_or_many_orders(api_client_with_scopes) -> None:
    client = api_client_with_scopes("orders:write")
    client.post(URL, {"orders": [order_row("warm")]}, format="json")  # key's last_used_at

    def queries_for(rows: list[dict]) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.post(URL, {"orders": rows}, format="json").status_code == 200
        return len(captured)

    one = queries_for(
        [order_row("A1", customer={"identities": [{"provider": "unionid", "value": "new"}]})]
    )
    many = [
        order_row(f"B{i}", customer={"identities": [{"provider": "unionid", "value": f"u{i}"}]})
        for i in range(50)
    ]
    assert queries_for(many) == one


def test_list_filters_and_has_no_n_plus_one(api_client_with_scopes) -> None:
    customer = CustomerFactory()
    for _ in range(3):
        order = OrderFactory(customer=customer)
        OrderItemFactory(order=order, sku="A", unit_price=1)
    OrderFactory(status="refunded")
    client = api_client_with_scopes("orders:read")
    client.get("/api/v1/orders?page_size=1")  # touches the key's last_used_at once

    with CaptureQueriesContext(connection) as few:
        response = client.get(f"/api/v1/orders?customer_id={customer.pk}&status=paid")
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 3
    assert results[0]["items"][0]["sku"] == "A"
    for _ in range(10):
        OrderFactory(customer=customer)
    with CaptureQueriesContext(connection) as more:
        client.get(f"/api/v1/orders?customer_id={customer.pk}&status=paid")
    assert len(more) == len(few), [q["sql"] for q in more.captured_queries]


def test_detail(api_client_with_scopes) -> None:
    order = OrderFactory()
    client = api_client_with_scopes("orders:read")
    assert client.get(f"/api/v1/orders/{order.pk}").json()["external_id"] == order.external_id
    assert client.get("/api/v1/orders/999999").status_code == 404


def test_no_phone_number_reaches_the_logs(api_client_with_scopes, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client = api_client_with_scopes("orders:write")
    client.post(URL, {"orders": [order_row("SO1"), order_row("SO2", total_amount="x")]})
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records
    assert PHONE not in logged
    assert PHONE[3:] not in logged


@pytest.mark.django_db(transaction=True)
def test_parallel_batches_naming_one_new_customer_create_it_once() -> None:
    """Threads send overlapping batches (the same new phone, some of the same orders)."""
    from rest_framework.test import APIClient

    _, raw_key = api_key_create(name="shop", scopes=["orders:write"])

    def send(thread_no: int) -> None:
        client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
        rows = [order_row(f"T{thread_no}"), order_row("SHARED")]
        response = client.post(URL, {"orders": copy.deepcopy(rows)}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["rejected"] == []

    errors = run_together(*(partial(send, n) for n in range(6)))
    assert errors == []
    assert Customer.objects.count() == 1
    assert Order.objects.count() == 7
    assert OrderItem.objects.count() == 7


def test_row_errors_speak_chinese_by_default() -> None:
    from rest_framework.test import APIClient

    _, raw_key = api_key_create(name="shop", scopes=["orders:write"])
    client = APIClient()  # no Accept-Language: the default language, zh-hans
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    body = client.post(URL, {"orders": [order_row(total_amount="-1")]}, format="json").json()
    assert body["rejected"][0]["errors"] == {"total_amount": ["必须是不小于 0 的数。"]}


def test_a_body_over_the_size_limit_is_a_413(api_client_with_scopes, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    rows = [order_row(f"SO{i}") for i in range(5)]
    response = api_client_with_scopes("orders:write").post(URL, {"orders": rows}, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert Order.objects.count() == 0


def test_a_customer_merged_away_before_the_orders_are_written_is_resolved_again(
    api_client_with_scopes, monkeypatch, caplog
) -> None:
    """Orders have no foreign-key constraint; the batch's customers are locked instead, and a
    customer that a concurrent merge removed sends the batch back to resolution."""
    from crm.services import orders as orders_service
    from crm.services.merges import customers_merge

    survivor = CustomerFactory()
    resolve = orders_service._customers_of
    merged: list[int] = []

    def resolve_then_lose_the_race(orders, *, actor):
        customer_ids = resolve(orders, actor=actor)
        if not merged:  # another request merges the new customer away meanwhile
            merged.append(customer_ids[0])
            customers_merge(customer_ids=[survivor.pk, customer_ids[0]], actor="t", reason="t")
        return customer_ids

    monkeypatch.setattr(orders_service, "_customers_of", resolve_then_lose_the_race)
    body = api_client_with_scopes("orders:write").post(
        URL, {"orders": [order_row("SO1")]}, format="json"
    )
    assert body.json()["created"] == 1
    assert "orders.bulk_upsert.retry_after_merge" in caplog.messages
    assert merged and not Customer.objects.filter(pk=merged[0]).exists()
    assert Order.objects.get().customer_id == survivor.pk
    assert OrderItem.objects.get().customer_id == survivor.pk


# Versions of one order from its shop, oldest first (the shop's own update times). "progress":
# paid, partly refunded, refunded; "reversal": paid, refunded, then the refund reversed (paid
# again, other items, another store): a version may undo a refund, an older one may not.
V1_AT, V2_AT, V3_AT = (
    "2026-11-01T10:00:00+08:00",
    "2026-11-02T10:00:00+08:00",
    "2026-11-03T10:00:00+08:00",
)
ONE_SERUM = [{"sku": "SERUM-30", "quantity": 1, "unit_price": "199.00"}]
SERUM_AND_MASK = [
    {"sku": "SERUM-30", "quantity": 1, "unit_price": "199.00"},
    {"sku": "MASK-5", "quantity": 1, "unit_price": "199.00"},
]
VERSIONS = {
    "progress": [
        order_row("o-1", source_updated_at=V1_AT),
        order_row(
            "o-1",
            status="partially_refunded",
            refunded_amount="199.00",
            items=ONE_SERUM,
            source_updated_at=V2_AT,
        ),
        order_row(
            "o-1",
            status="refunded",
            refunded_amount="398.00",
            store="徐汇店",
            items=ONE_SERUM,
            source_updated_at=V3_AT,
        ),
    ],
    "reversal": [
        order_row("o-1", source_updated_at=V1_AT),
        order_row("o-1", status="refunded", refunded_amount="398.00", source_updated_at=V2_AT),
        order_row("o-1", store="静安店", items=SERUM_AND_MASK, source_updated_at=V3_AT),
    ],
}


def order_state(order: Order) -> tuple:
    order.refresh_from_db()
    items = list(order.items.order_by("line_no").values_list("sku", "quantity", "purchased_at"))
    return (
        order.status,
        order.refunded_amount,
        order.store,
        order.source_updated_at.isoformat() if order.source_updated_at else None,
        items,
    )


@pytest.mark.parametrize("scenario", sorted(VERSIONS))
@pytest.mark.parametrize("arrival", list(itertools.permutations(range(3))))
def test_every_arrival_order_of_three_versions_ends_with_the_newest(
    api_client_with_scopes, scenario, arrival
) -> None:
    client = api_client_with_scopes("orders:write")
    versions = VERSIONS[scenario]
    newest_so_far = -1
    for step, version in enumerate(arrival):
        DirtyMark.objects.all().delete()
        before = list(Order.objects.values_list("id", "updated_at", "content_hash"))
        items_before = list(OrderItem.objects.values_list("id", flat=True).order_by("id"))
        body = client.post(URL, {"orders": [versions[version]]}, format="json").json()
        expected = arrival_outcome(step=step, version=version, newest_so_far=newest_so_far)
        assert body == expected, (arrival, step)
        if version < newest_so_far:  # written nowhere, nobody marked for recomputation
            assert list(Order.objects.values_list("id", "updated_at", "content_hash")) == before
            assert list(OrderItem.objects.values_list("id", flat=True).order_by("id")) == (
                items_before
            )
            assert not DirtyMark.objects.exists()
        else:
            assert dirty_customer_ids() == {Order.objects.get().customer_id}
        newest_so_far = max(newest_so_far, version)

    order = Order.objects.get()
    paid_at = order.paid_at
    newest = VERSIONS[scenario][2]
    expected_items = [
        (item["sku"], item["quantity"], paid_at if newest["status"] == "paid" else None)
        for item in newest["items"]
    ]
    assert order_state(order) == (
        newest["status"],
        Decimal(newest["refunded_amount"]),
        newest.get("store", ""),
        "2026-11-03T02:00:00+00:00",
        expected_items,
    )
    again = client.post(URL, {"orders": [newest]}, format="json").json()
    assert again == bulk_answer(unchanged=1)


def test_the_issue_example_a_late_paid_version_leaves_the_refund(
    api_client_with_scopes, django_capture_on_commit_callbacks
) -> None:
    """`o-1` refunded (100.00 refunded), then, late, its earlier paid version: nothing is
    written, nobody marked for recomputation, no attribution run is asked for."""
    client = api_client_with_scopes("orders:write")
    refunded = order_row(
        "o-1",
        total_amount="100.00",
        status="refunded",
        refunded_amount="100.00",
        items=[],
        source_updated_at="2026-12-01T12:00:00+08:00",
    )
    paid = {**refunded, "status": "paid", "refunded_amount": "0.00"}
    paid["source_updated_at"] = "2026-12-01T11:00:00+08:00"
    with django_capture_on_commit_callbacks() as first_callbacks:
        client.post(URL, {"orders": [refunded]}, format="json")
    assert first_callbacks  # the orders-changed subscribers (attribution), for the new order
    DirtyMark.objects.all().delete()
    with django_capture_on_commit_callbacks() as callbacks:
        body = client.post(URL, {"orders": [paid]}, format="json").json()
    assert body == bulk_answer(stale=1)
    assert callbacks == []
    order = Order.objects.get()
    assert (order.status, order.refunded_amount) == ("refunded", Decimal("100.00"))
    assert not DirtyMark.objects.exists()


@pytest.mark.parametrize(
    ("stored", "late", "expected"),
    [
        # (status, refunded_amount, source_updated_at) of the stored and the late version.
        (("refunded", "398.00", None), ("paid", "0.00", None), ("refunded", "398.00")),
        (
            ("partially_refunded", "199.00", None),
            ("paid", "0.00", None),
            ("partially_refunded", "199.00"),
        ),
        (
            ("refunded", "398.00", None),
            ("partially_refunded", "100.00", None),
            ("refunded", "398.00"),
        ),
        (
            ("partially_refunded", "199.00", None),
            ("partially_refunded", "100.00", None),
            ("partially_refunded", "199.00"),
        ),
        (("cancelled", "0.00", None), ("paid", "0.00", None), ("cancelled", "0.00")),
        # A version on one side only is no ordering: the same rules hold.
        (("refunded", "398.00", V2_AT), ("paid", "0.00", None), ("refunded", "398.00")),
        (("refunded", "398.00", None), ("paid", "0.00", V1_AT), ("refunded", "398.00")),
    ],
)
def test_without_versions_on_both_sides_a_refund_is_never_undone(
    api_client_with_scopes, stored, late, expected
) -> None:
    client = api_client_with_scopes("orders:write")

    def version(status: str, refunded: str, at: str | None, store: str) -> dict:
        row = order_row("o-1", status=status, refunded_amount=refunded, store=store)
        return {**row, "source_updated_at": at} if at else row

    client.post(URL, {"orders": [version(*stored, store="徐汇店")]}, format="json")
    body = client.post(URL, {"orders": [version(*late, store="静安店")]}, format="json").json()
    assert body == bulk_answer(updated=1)
    order = Order.objects.get()
    # The other fields update as they always did; the status and the refund stay.
    assert (order.status, order.refunded_amount, order.store) == (
        expected[0],
        Decimal(expected[1]),
        "静安店",
    )
    purchased_at = order.paid_at if expected[0] in ("paid", "partially_refunded") else None
    assert list(OrderItem.objects.values_list("purchased_at", flat=True)) == [purchased_at]


def test_the_same_content_under_a_newer_version_records_only_the_version(
    api_client_with_scopes,
) -> None:
    client = api_client_with_scopes("orders:write")
    v1, v2, _v3 = VERSIONS["progress"]
    client.post(URL, {"orders": [v1]}, format="json")
    DirtyMark.objects.all().delete()
    before = list(Order.objects.values_list("updated_at", "content_hash", "status"))
    items_before = list(OrderItem.objects.values_list("id", flat=True))

    body = client.post(URL, {"orders": [{**v1, "source_updated_at": V3_AT}]}, format="json")
    assert body.json() == bulk_answer(unchanged=1)
    assert list(Order.objects.values_list("updated_at", "content_hash", "status")) == before
    assert list(OrderItem.objects.values_list("id", flat=True)) == items_before
    assert Order.objects.get().source_updated_at.isoformat() == "2026-11-03T02:00:00+00:00"
    assert not DirtyMark.objects.exists()
    # So v2, sent before v3 but arriving after it, is known to be stale.
    late = client.post(URL, {"orders": [v2]}, format="json").json()
    assert late == bulk_answer(stale=1)
    assert Order.objects.get().status == "paid"


def test_an_equal_version_is_unchanged_even_with_other_content(api_client_with_scopes) -> None:
    client = api_client_with_scopes("orders:write")
    v1 = VERSIONS["progress"][0]
    client.post(URL, {"orders": [v1]}, format="json")
    other = {**v1, "status": "refunded", "refunded_amount": "398.00"}
    body = client.post(URL, {"orders": [other]}, format="json").json()
    assert body == bulk_answer(unchanged=1)
    assert Order.objects.get().status == "paid"


def test_in_one_batch_the_newest_version_of_an_order_stands(api_client_with_scopes) -> None:
    v1, v2, v3 = VERSIONS["progress"]
    rows = [v3, v1, {**order_row("o-2"), "source_updated_at": V1_AT}, v2]
    body = api_client_with_scopes("orders:write").post(URL, {"orders": rows}, format="json")
    assert body.json() == bulk_answer(
        created=2,
        rejected=[
            {"index": 1, "errors": {"external_id": ["Superseded by row 0 of the same batch."]}},
            {"index": 3, "errors": {"external_id": ["Superseded by row 0 of the same batch."]}},
        ],
    )
    assert Order.objects.get(external_id="o-1").status == "refunded"


@pytest.mark.parametrize(
    "value",
    ["1999-12-31T23:59:59+00:00", "2026-11-01T10:00:00", "far future", "not a time"],
)
def test_a_source_update_time_out_of_range_is_rejected(api_client_with_scopes, value) -> None:
    if value == "far future":
        value = (timezone.now() + timedelta(days=2)).isoformat()
    rows = [order_row("o-1", source_updated_at=value)]
    body = api_client_with_scopes("orders:write").post(URL, {"orders": rows}, format="json").json()
    assert body["created"] == 0
    assert [(r["index"], list(r["errors"])) for r in body["rejected"]] == [
        (0, ["source_updated_at"])
    ]
    assert not Order.objects.exists()
    assert not Customer.objects.exists()


def test_the_range_of_source_update_times_is_named_in_the_error(api_client_with_scopes) -> None:
    rows = [order_row("o-1", source_updated_at="1999-12-31T23:59:59+00:00")]
    body = api_client_with_scopes("orders:write").post(URL, {"orders": rows}, format="json").json()
    assert body["rejected"][0]["errors"] == {
        "source_updated_at": ["Must lie between 2000-01-01T00:00:00Z and one day from now."]
    }
    from rest_framework.test import APIClient

    _, raw_key = api_key_create(name="shop", scopes=["orders:write"])
    client = APIClient()  # no Accept-Language: the default language, zh-hans
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    body = client.post(URL, {"orders": rows}, format="json").json()
    assert body["rejected"][0]["errors"] == {
        "source_updated_at": ["时间须在 2000-01-01T00:00:00Z（UTC）至此刻之后一天以内。"]
    }


def _order_in(row: dict) -> OrderIn:
    return msgspec.json.decode(msgspec.json.encode(row), type=OrderIn)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("first", "second"), [(2, 1), (1, 2)])
def test_of_two_concurrent_versions_the_newer_wins_whatever_commits_last(first, second) -> None:
    """The first batch writes its version and holds its transaction open; the second waits for
    its row, then runs once the first commits: the newer version stands either way."""
    v1, v2, v3 = VERSIONS["progress"]
    versions = {1: v2, 2: v3}
    orders_bulk_upsert(orders=[_order_in(v1)], actor="test")
    outcomes = second_waits_for_first(
        lambda: orders_bulk_upsert(orders=[_order_in(versions[first])], actor="test"),
        lambda: orders_bulk_upsert(orders=[_order_in(versions[second])], actor="test"),
    )
    assert (outcomes[0].updated, outcomes[0].stale) == (1, 0)
    assert (outcomes[1].updated, outcomes[1].stale) == ((1, 0) if second == 2 else (0, 1))
    order = Order.objects.get()
    assert (order.status, order.refunded_amount, order.store) == (
        "refunded",
        Decimal("398.00"),
        "徐汇店",
    )
    assert order.source_updated_at.isoformat() == "2026-11-03T02:00:00+00:00"
    assert list(OrderItem.objects.values_list("sku", "quantity")) == [("SERUM-30", 1)]
