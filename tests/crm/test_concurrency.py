"""Concurrent writers on real PostgreSQL: threads, each with its own connection."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial

import pytest
from django.db import connection

from crm.models import Customer, Identity
from crm.personal_data import identity_key
from crm.services.customers import customer_upsert
from tests.support import run_together

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8


def _run_in_threads(target: Callable[[int], object]) -> list[BaseException]:
    """`target(n)` for each of THREADS threads, run together."""
    return run_together(*(partial(target, n) for n in range(THREADS)))


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
    from crm.services.merges import customers_merge
    from crm.services.removals import customers_removal_lock
    from tests.factories import CustomerFactory, OrderFactory

    survivor, loser = CustomerFactory(), CustomerFactory()
    writing, merged = threading.Event(), threading.Event()

    def write_orders() -> None:
        with transaction.atomic():
            customers_removal_lock(exclusive=False)
            writing.set()
            OrderFactory(customer=loser, external_id="in-flight")
            # The merge has started meanwhile and must not finish before this commits.
            assert not merged.wait(timeout=1.0)

    def merge() -> None:
        writing.wait(timeout=10)
        customers_merge(customer_ids=[survivor.pk, loser.pk], actor="t", reason="t")
        merged.set()

    errors = run_together(write_orders, merge)
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


@contextmanager
def _held_like_a_call_in_flight(customer_id: int) -> Iterator[None]:
    """Another connection holds the customer FOR KEY SHARE, as a campaign's call does while it
    posts (campaigns.services.channel_calls.consent_hold), until the block exits."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(
                    "SELECT id FROM crm_customer WHERE id = %s FOR KEY SHARE", [customer_id]
                )
                held.set()
                release.wait(30)
                cursor.execute("COMMIT")
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        yield
    finally:
        release.set()
        holder.join()


def test_profile_writes_do_not_wait_for_a_call_holding_its_customers() -> None:
    """A campaign's call holds its customers FOR KEY SHARE while it posts (so that an opt-out
    waits for it): a profile write, by the bulk upsert or by PATCH, goes ahead meanwhile."""
    from crm.services.customers import customer_update

    key = identity_key(provider="unionid", namespace="", value="u-in-flight")
    customer, _created = customer_upsert(identities=[key], profile={}, actor="test")
    with _held_like_a_call_in_flight(customer.pk):
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # a wait fails the test, not hangs it
        try:
            customer_upsert(identities=[key], profile={"display_name": "批量"}, actor="test")
            customer_update(customer_id=customer.pk, profile={"city": "杭州"}, actor="test")
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
    customer.refresh_from_db()
    assert (customer.display_name, customer.city) == ("批量", "杭州")


def test_an_opt_out_waits_for_a_call_in_flight_for_a_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An opt-out waits for a call holding its customer (so that no post follows its answer),
    but not for good: past OPT_OUT_WAIT_SECONDS it is refused with a code, recorded nowhere,
    and the same request succeeds once the call is over."""
    from core.errors import Conflict
    from crm.models import ConsentEvent
    from crm.services import consents

    monkeypatch.setattr(consents, "OPT_OUT_WAIT_SECONDS", 1)
    key = identity_key(provider="unionid", namespace="", value="u-opt-out")
    customer, _created = customer_upsert(identities=[key], profile={}, actor="test")

    def opt_out() -> consents.ConsentOutcome:
        return consents.consent_record(
            customer_id=customer.pk,
            channel="sms",
            status="opted_out",
            source="test",
            occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
            actor="test",
        )

    with _held_like_a_call_in_flight(customer.pk):
        with pytest.raises(Conflict) as refused:
            opt_out()
        assert refused.value.code == "consent_busy"
        assert not ConsentEvent.objects.exists()
    assert opt_out().consent.status == "opted_out"
