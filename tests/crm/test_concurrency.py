"""Concurrent writers on real PostgreSQL: threads, each with its own connection."""

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection

from crm.models import Customer, Identity
from crm.personal_data import identity_key
from crm.services.customers import customer_upsert

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8


def _run_in_threads(target) -> list[BaseException]:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            target(n)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_parallel_upserts_of_one_identity_create_one_customer() -> None:
    def upsert(n: int) -> None:
        customer_upsert(
            identities=[identity_key(provider="phone", value="13800001111")],
            profile={"city": f"city{n}"},
            actor=f"thread{n}",
        )

    assert _run_in_threads(upsert) == []
    assert Customer.objects.count() == 1
    assert Identity.objects.count() == 1


def test_parallel_upserts_linking_identities_end_in_one_customer() -> None:
    """Each thread names the shared phone plus an identity of its own: one person."""

    def upsert(n: int) -> None:
        customer_upsert(
            identities=[
                identity_key(provider="unionid", value=f"union{n}"),
                identity_key(provider="phone", value="13800001111"),
            ],
            profile={},
            actor=f"thread{n}",
        )

    assert _run_in_threads(upsert) == []
    assert Customer.objects.count() == 1
    assert Identity.objects.count() == THREADS + 1


def test_a_merge_waits_for_orders_being_written_to_its_customers() -> None:
    """Orders have no foreign-key constraint: an order write holds the customer-removal lock
    shared, so a merge (which removes a customer) waits until those orders are committed and
    then moves them; nothing is left pointing at a removed customer."""
    from django.db import transaction

    from crm.models import Order
    from crm.services.customers import customers_merge, customers_removal_lock
    from tests.factories import CustomerFactory, OrderFactory

    survivor, loser = CustomerFactory(), CustomerFactory()
    writing, merged = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def write_orders() -> None:
        try:
            with transaction.atomic():
                customers_removal_lock(exclusive=False)
                writing.set()
                OrderFactory(customer=loser, external_id="in-flight")
                # The merge has started meanwhile and must not finish before this commits.
                assert not merged.wait(timeout=1.0)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    def merge() -> None:
        try:
            writing.wait(timeout=10)
            customers_merge(customer_ids=[survivor.pk, loser.pk], actor="t", reason="t")
            merged.set()
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=write_orders), threading.Thread(target=merge)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert merged.is_set()
    assert list(Order.objects.values_list("external_id", "customer_id")) == [
        ("in-flight", survivor.pk)
    ]


@pytest.mark.parametrize(("first", "second"), [("newer", "older"), ("older", "newer")])
def test_of_two_concurrent_profile_versions_the_newer_stands(first, second) -> None:
    """The first writer holds its transaction open until the second waits for the customer's
    row lock: the newer profile version stands whatever the order of the commits."""
    from crm.services.customers import CustomerInput, customers_bulk_upsert
    from tests.crm.support import second_waits_for_first

    key = identity_key(provider="unionid", namespace="", value="u-race")
    customer_upsert(identities=[key], profile={"display_name": "v0"}, actor="test")
    versions = {
        "older": CustomerInput(
            identities=[key],
            profile={"display_name": "older"},
            source_updated_at=datetime(2026, 10, 1, tzinfo=UTC),
        ),
        "newer": CustomerInput(
            identities=[key],
            profile={"display_name": "newer"},
            source_updated_at=datetime(2026, 10, 2, tzinfo=UTC),
        ),
    }
    outcomes = second_waits_for_first(
        lambda: customers_bulk_upsert(rows=[versions[first]], actor="test"),
        lambda: customers_bulk_upsert(rows=[versions[second]], actor="test"),
    )
    assert (outcomes[1].updated, outcomes[1].stale) == ((1, 0) if second == "newer" else (0, 1))
    customer = Customer.objects.get()
    assert customer.display_name == "newer"
    assert customer.profile_source_updated_at == datetime(2026, 10, 2, tzinfo=UTC)
