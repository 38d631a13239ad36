"""Concurrent writers on real PostgreSQL: threads, each with its own connection."""

import threading

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
