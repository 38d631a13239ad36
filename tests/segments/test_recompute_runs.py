"""Recomputation runs: incremental sweeps of marked customers, runs that never interleave,
interrupted and crashed runs repeated safely, the command and the tasks."""

import threading
import time
from datetime import timedelta
from functools import partial
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from crm.models import Customer, DirtyMark
from crm.services.marks import customers_mark_dirty
from crm.services.merges import customers_merge
from segments.models import CustomerMetrics, LifecycleTransition, RecomputeRun, RecomputeStatus
from segments.services import recompute
from segments.services.recompute import (
    ERROR_ANOTHER_RUN,
    ERROR_INTERRUPTED,
    RunSkipped,
    recompute_customers,
    recompute_full,
)
from segments.tasks import recompute_dirty_task, recompute_full_task
from tests.conftest import Enqueued
from tests.factories import CustomerFactory, RecomputeRunFactory, SegmentFactory
from tests.segments.recompute_support import AS_OF, at, buyer, metrics, order
from tests.support import run_together


@pytest.mark.django_db
def test_sweep_recomputes_marked_customers_with_last_full_breakpoints() -> None:
    customers = [buyer(recency=r, orders=1, spend=100 * r) for r in range(1, 11)]
    full = recompute_full(trigger="test", as_of=AS_OF)
    changed = customers[0]
    for extra in range(5):
        order(changed, days_ago=2 + extra, amount="5000.00")
    customers_mark_dirty([changed.pk])
    untouched = {c.pk: metrics(c).changed_at for c in customers[1:]}

    sweep = recompute_customers(trigger="sweep", as_of=AS_OF)

    assert (sweep.kind, sweep.status, sweep.customers_processed) == (
        "incremental",
        "succeeded",
        1,
    )
    assert sweep.breakpoints == full.breakpoints
    assert sweep.rfm_policy_id == full.rfm_policy_id
    row = metrics(changed)
    assert (row.orders_in_window, row.f_score, row.m_score) == (6, 5, 5)
    assert not DirtyMark.objects.exists()
    assert {c.pk: metrics(c).changed_at for c in customers[1:]} == untouched


@pytest.mark.django_db
def test_marks_committed_after_the_sweep_read_them_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    buyer(recency=5, orders=1, spend=100)
    recompute_full(trigger="test", as_of=AS_OF)
    first, second = CustomerFactory(), CustomerFactory()
    customers_mark_dirty([first.pk])
    seen = list(DirtyMark.objects.values_list("id", flat=True))
    customers_mark_dirty([second.pk])
    monkeypatch.setattr(recompute, "_marks_seen", lambda: seen)
    run = recompute_customers(trigger="sweep", as_of=AS_OF)
    assert run.customers_processed == 1
    assert list(DirtyMark.objects.values_list("customer_ids", flat=True)) == [[second.pk]]


@pytest.mark.django_db
def test_first_sweep_without_a_full_run_makes_a_full_run() -> None:
    customer = buyer(recency=3, orders=2, spend=400)
    CustomerFactory()
    customers_mark_dirty([customer.pk])
    run = recompute_customers(trigger="sweep", as_of=AS_OF)
    assert (run.kind, run.customers_processed) == ("full", 2)
    assert run.breakpoints["recency"] == [3, 3, 3, 3]
    assert not DirtyMark.objects.exists()


@pytest.mark.django_db
def test_sweep_without_breakpoints_makes_a_full_run() -> None:
    """The last full run found nobody who bought in the window: no breakpoints to score a
    sweep with, so the sweep scores everyone afresh."""
    recompute_full(trigger="test", as_of=AS_OF)
    customer = buyer(recency=1, orders=1, spend=100)
    customers_mark_dirty([customer.pk])
    run = recompute_customers(trigger="sweep", as_of=AS_OF)
    assert run.kind == "full"
    assert run.breakpoints["recency"] == [1, 1, 1, 1]
    assert metrics(customer).r_score == 5


@pytest.mark.django_db
def test_sweep_pulls_first_seen_back_for_backfilled_orders() -> None:
    buyer(recency=5, orders=1, spend=100)
    recompute_full(trigger="test", as_of=AS_OF)
    customer = CustomerFactory(first_seen_at=at(AS_OF))
    order(customer, days_ago=100)
    customers_mark_dirty([customer.pk])
    recompute_customers(trigger="sweep", as_of=AS_OF)
    customer.refresh_from_db()
    assert customer.first_seen_at == at(AS_OF - timedelta(days=100))

    # Recomputed since: a later order leaves it, an older one still moves it back.
    order(customer, days_ago=1)
    customers_mark_dirty([customer.pk])
    recompute_customers(trigger="sweep", as_of=AS_OF)
    customer.refresh_from_db()
    assert customer.first_seen_at == at(AS_OF - timedelta(days=100))
    order(customer, days_ago=200)
    customers_mark_dirty([customer.pk])
    recompute_customers(trigger="sweep", as_of=AS_OF)
    customer.refresh_from_db()
    assert customer.first_seen_at == at(AS_OF - timedelta(days=200))


@pytest.mark.django_db
def test_named_customers_leave_marks_alone() -> None:
    buyer(recency=5, orders=1, spend=100)
    recompute_full(trigger="test", as_of=AS_OF)
    customer = buyer(recency=1, orders=1, spend=50)
    customers_mark_dirty([customer.pk])
    run = recompute_customers(customer_ids=[customer.pk], trigger="test", as_of=AS_OF)
    assert run.customers_processed == 1
    assert metrics(customer).lifecycle_state == "new"
    assert DirtyMark.objects.count() == 1


@pytest.mark.django_db
def test_interrupted_run_is_marked_failed_by_the_next() -> None:
    stuck = RecomputeRunFactory(trigger="schedule", as_of=AS_OF)
    run = recompute_full(trigger="test", as_of=AS_OF)
    stuck.refresh_from_db()
    assert (stuck.status, stuck.error) == (RecomputeStatus.FAILED, ERROR_INTERRUPTED)
    assert stuck.finished_at is not None
    assert run.status == RecomputeStatus.SUCCEEDED


@pytest.mark.django_db
def test_crashed_run_can_simply_be_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    customers = [buyer(recency=r, orders=1 + r % 4, spend=30 * r) for r in range(1, 21)]
    monkeypatch.setattr(recompute, "BATCH_SIZE", 5)
    real_batch = recompute._batch
    calls = {"n": 0}

    def crashing_batch(*args: Any, **kwargs: Any) -> tuple[int, int]:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker lost")
        return real_batch(*args, **kwargs)

    monkeypatch.setattr(recompute, "_batch", crashing_batch)
    failed = recompute_full(trigger="test", as_of=AS_OF)
    assert (failed.status, failed.error) == (RecomputeStatus.FAILED, "RuntimeError: worker lost")
    assert CustomerMetrics.objects.count() == 10

    monkeypatch.setattr(recompute, "_batch", real_batch)
    again = recompute_full(trigger="test", as_of=AS_OF)
    assert (again.status, again.rows_changed) == (RecomputeStatus.SUCCEEDED, 10)
    after_crash = {
        c.pk: (metrics(c).r_score, metrics(c).lifecycle_state, metrics(c).lifecycle_since)
        for c in customers
    }
    CustomerMetrics.objects.all().delete()
    recompute_full(trigger="test", as_of=AS_OF)
    assert {
        c.pk: (metrics(c).r_score, metrics(c).lifecycle_state, metrics(c).lifecycle_since)
        for c in customers
    } == after_crash
    per_customer = LifecycleTransition.objects.filter(run__in=[failed.pk, again.pk])
    assert per_customer.count() == len(customers)
    assert per_customer.values("customer_id").distinct().count() == len(customers)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_never_interleave() -> None:
    """Run A holds the lock (slowed down in its progress callback); B, not waiting, is
    recorded as skipped; C waits, says so, and runs after A."""
    for r in range(1, 6):
        buyer(recency=r, orders=1, spend=100)
    inside_a = threading.Event()
    release_a = threading.Event()
    c_waiting = threading.Event()
    results: dict[str, RecomputeRun | BaseException] = {}

    def in_thread(name: str, **kwargs: Any) -> None:
        try:
            results[name] = recompute_full(trigger=name, as_of=AS_OF, **kwargs)
        except BaseException as error:
            results[name] = error
        finally:
            connection.close()

    def slow_progress(done: int, total: int) -> None:
        inside_a.set()
        release_a.wait(timeout=30)

    a = threading.Thread(target=in_thread, args=("a",), kwargs={"progress": slow_progress})
    a.start()
    assert inside_a.wait(timeout=30)
    b = threading.Thread(target=in_thread, args=("b",), kwargs={"wait": False})
    b.start()
    b.join(timeout=30)
    c = threading.Thread(target=in_thread, args=("c",), kwargs={"on_wait": c_waiting.set})
    c.start()
    assert c_waiting.wait(timeout=30)
    release_a.set()
    a.join(timeout=30)
    c.join(timeout=30)

    run_a, skipped, run_c = results["a"], results["b"], results["c"]
    assert isinstance(run_a, RecomputeRun) and isinstance(run_c, RecomputeRun)
    assert isinstance(skipped, RunSkipped)
    assert (skipped.run.status, skipped.run.error) == (RecomputeStatus.SKIPPED, ERROR_ANOTHER_RUN)
    assert run_a.status == run_c.status == RecomputeStatus.SUCCEEDED
    assert run_a.finished_at is not None and run_a.finished_at <= run_c.started_at
    assert (run_a.rows_changed, run_c.rows_changed) == (5, 0)


@pytest.mark.django_db(transaction=True)
def test_full_run_scores_batches_on_several_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    customers = [buyer(recency=r, orders=1 + r % 3, spend=40 * r) for r in range(1, 31)]
    monkeypatch.setattr(recompute, "BATCH_SIZE", 4)  # orders aggregated and scored by 8 ranges
    run = recompute_full(trigger="test", as_of=AS_OF)
    parallel = {c.pk: (metrics(c).r_score, metrics(c).rfm_tier) for c in customers}
    assert run.rows_changed == 30
    assert [metrics(c).lifetime_orders for c in customers] == [1 + r % 3 for r in range(1, 31)]
    CustomerMetrics.objects.all().delete()
    with transaction.atomic():  # inside a transaction the batches run on this connection
        recompute_full(trigger="test", as_of=AS_OF)
    assert {c.pk: (metrics(c).r_score, metrics(c).rfm_tier) for c in customers} == parallel


@pytest.mark.django_db
def test_command_prints_the_run() -> None:
    buyer(recency=2, orders=1, spend=100)
    out = StringIO()
    call_command("recompute", "--as-of", AS_OF.isoformat(), "--no-progress", stdout=out)
    assert "(full, as of 2026-06-30): 1 customers, 1 rows changed, 1 lifecycle transitions" in (
        out.getvalue()
    )
    customer = Customer.objects.get()
    out = StringIO()
    call_command("recompute", "--customers", str(customer.pk), "--no-progress", stdout=out)
    assert "(incremental, as of " in out.getvalue()


@pytest.mark.django_db
def test_sweep_task_does_nothing_without_marks() -> None:
    assert recompute_dirty_task() is None
    assert not RecomputeRun.objects.exists()
    customer = CustomerFactory()
    customers_mark_dirty([customer.pk])
    run_id = recompute_dirty_task()
    assert RecomputeRun.objects.get(pk=run_id).status == RecomputeStatus.SUCCEEDED
    assert timezone.now() - RecomputeRun.objects.get(pk=run_id).started_at < timedelta(minutes=1)


@pytest.mark.django_db
def test_merge_takes_the_merged_customers_scores_along_and_marks_the_survivor() -> None:
    first = buyer(recency=3, orders=1, spend=100)
    second = buyer(recency=200, orders=2, spend=900)
    recompute_full(trigger="test", as_of=AS_OF)
    customers_merge(customer_ids=[first.pk, second.pk], actor="test", reason="duplicate")
    assert not CustomerMetrics.objects.filter(customer_id=second.pk).exists()
    assert not LifecycleTransition.objects.filter(customer_id=second.pk).exists()
    run = recompute_customers(trigger="sweep", as_of=AS_OF)
    assert run.customers_processed == 1
    row = metrics(first)
    assert (row.lifetime_orders, row.lifetime_net_spend) == (3, 1000)


@pytest.mark.django_db(transaction=True)
def test_concurrent_policy_edits_build_on_each_other() -> None:
    from segments.models import RfmPolicy
    from segments.services.policies import rfm_policy_update

    def edit(changes: dict[str, Any]) -> None:
        rfm_policy_update(changes=changes, actor="test")

    errors = run_together(
        partial(edit, {"high_score_threshold": 4}), partial(edit, {"lookback_days": 200})
    )
    assert errors == []
    active = RfmPolicy.objects.get(is_active=True)
    assert (active.high_score_threshold, active.lookback_days) == (4, 200)
    assert active.version == RfmPolicy.objects.count() == 3


@pytest.mark.django_db
def test_command_refuses_a_future_date_and_refreshes_segments() -> None:
    from django.core.management.base import CommandError

    from segments.models import SegmentMembership

    with pytest.raises(CommandError, match="future"):
        call_command("recompute", "--as-of", "2999-01-01", "--no-progress", stdout=StringIO())
    customer = buyer(recency=2, orders=1, spend=100)
    segment = SegmentFactory(
        name="new", rule={"field": "lifecycle_state", "op": "eq", "value": "new"}
    )
    call_command("recompute", "--as-of", AS_OF.isoformat(), "--no-progress", stdout=StringIO())
    assert list(
        SegmentMembership.objects.filter(segment=segment).values_list("customer_id", flat=True)
    ) == [customer.pk]


@pytest.mark.django_db(transaction=True)
def test_a_customer_deleted_during_a_run_leaves_no_metrics_behind() -> None:
    """The delete holds the customer-removal lock until it commits; the run's batch waits for
    it and then sees the customer gone (without the wait it would write a row for it)."""
    from crm.services.customers import customers_delete

    kept, removed = buyer(recency=3, orders=1, spend=100), buyer(recency=4, orders=1, spend=90)
    deleting = threading.Event()

    def delete_slowly() -> None:
        try:
            with transaction.atomic():
                customers_delete(customer_ids=[removed.pk], actor="test")
                deleting.set()
                time.sleep(1.0)
        finally:
            connection.close()

    thread = threading.Thread(target=delete_slowly)
    thread.start()
    assert deleting.wait(timeout=10)
    run = recompute_full(trigger="test", as_of=AS_OF)
    thread.join(timeout=10)
    assert run.status == RecomputeStatus.SUCCEEDED
    assert list(CustomerMetrics.objects.values_list("customer_id", flat=True)) == [kept.pk]
    assert not LifecycleTransition.objects.filter(customer_id=removed.pk).exists()


# --- Backfills: a date before the latest full run is recorded apart ---------------------------

BACKFILL_DAY = AS_OF - timedelta(days=121)  # 2026-03-01


def _live_state() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of what a live run writes or what follows from it, as PostgreSQL holds it."""
    tables = {
        "metrics": "SELECT * FROM segments_customermetrics ORDER BY customer_id",
        "transitions": "SELECT * FROM segments_lifecycletransition ORDER BY id",
        "memberships": "SELECT * FROM segments_segmentmembership ORDER BY id",
        "events": "SELECT * FROM segments_segmentmembershipevent ORDER BY id",
        "sizes": "SELECT * FROM segments_segmentsizesnapshot ORDER BY id",
        "segments": "SELECT id, member_count, refreshed_at FROM segments_segment ORDER BY id",
        "marks": "SELECT * FROM crm_dirtymark ORDER BY id",
        "customers": "SELECT id, first_seen_at FROM crm_customer ORDER BY id",
    }
    with connection.cursor() as cursor:
        state = {}
        for name, sql in tables.items():
            cursor.execute(sql)
            state[name] = cursor.fetchall()
    return state


@pytest.fixture
def backfill_world() -> dict[str, Customer]:
    """Four customers recomputed as of AS_OF (and a segment refreshed after it), whose states
    as of BACKFILL_DAY differ from today's."""
    later = CustomerFactory()  # seen today, first order after BACKFILL_DAY: not counted then
    order(later, days_ago=10)
    young = CustomerFactory()  # new then (29 days after its only order), sleeping now
    order(young, days_ago=150)
    regular = CustomerFactory()  # active then (last order 79 days before), churned now
    order(regular, days_ago=300)
    order(regular, days_ago=200)
    prospect = CustomerFactory(first_seen_at=at(BACKFILL_DAY - timedelta(days=30)))
    SegmentFactory(
        name="sleeping", rule={"field": "lifecycle_state", "op": "eq", "value": "sleeping"}
    )
    recompute_full_task(trigger="test", as_of=AS_OF.isoformat())
    unmarked = CustomerFactory()
    customers_mark_dirty([unmarked.pk])  # ingestion's mark: a backfill leaves it for the sweep
    return {"later": later, "young": young, "regular": regular, "prospect": prospect}


@pytest.mark.django_db
def test_backfill_before_the_latest_full_run_is_recorded_apart(
    backfill_world: dict[str, Customer],
    django_capture_on_commit_callbacks: Any,
    enqueued: list[Enqueued],
) -> None:
    before = _live_state()
    assert before["memberships"] and before["transitions"]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run_id = recompute_full_task(trigger="test", as_of=BACKFILL_DAY.isoformat())

    assert _live_state() == before  # metrics, feed, segments, marks: byte for byte
    assert (callbacks, enqueued) == ([], [])
    run = RecomputeRun.objects.get(pk=run_id)
    assert (run.kind, run.status, run.as_of) == ("backfill", "succeeded", BACKFILL_DAY)
    assert (run.customers_processed, run.rows_changed, run.transitions_written) == (3, 0, 0)
    assert run.breakpoints == {
        "recency": [29, 29, 79, 79],
        "frequency": [1, 1, 2, 2],
        "monetary": ["100.00", "100.00", "200.00", "200.00"],
    }
    from segments.models import BackfillCount

    assert sorted(
        BackfillCount.objects.filter(run=run).values_list(
            "lifecycle_state", "rfm_tier", "customers"
        ),
        key=str,
    ) == [
        ("active", "important_value", 1),
        ("new", "general_develop", 1),
        ("prospect", None, 1),
    ]
    # As of the latest full run's date: a live run again (the customer marked since gets its row).
    again = recompute_full(trigger="test", as_of=AS_OF)
    assert (again.kind, again.status, again.rows_changed) == ("full", "succeeded", 1)


@pytest.mark.django_db
def test_backfill_of_some_customers_or_a_future_date_is_refused(
    backfill_world: dict[str, Customer],
) -> None:
    before = _live_state()
    named = recompute_customers(
        customer_ids=[backfill_world["young"].pk], trigger="test", as_of=BACKFILL_DAY
    )
    sweep = recompute_customers(trigger="sweep", as_of=BACKFILL_DAY)
    future = recompute_full(trigger="test", as_of=timezone.localdate() + timedelta(days=1))

    assert _live_state() == before
    for run, code in (
        (named, "backfill_needs_everyone"),
        (sweep, "backfill_needs_everyone"),
        (future, "as_of_in_future"),
    ):
        assert (run.status, run.error.split(":")[0]) == (RecomputeStatus.FAILED, code)
        assert (run.customers_processed, run.rows_changed, run.transitions_written) == (0, 0, 0)
    assert "2026-06-30" in named.error


@pytest.mark.django_db
def test_command_backfill_is_recorded_apart_and_some_customers_refused(
    backfill_world: dict[str, Customer],
) -> None:
    from django.core.management.base import CommandError

    before = _live_state()
    out = StringIO()
    call_command("recompute", "--as-of", BACKFILL_DAY.isoformat(), "--no-progress", stdout=out)
    run = RecomputeRun.objects.latest("id")
    assert out.getvalue() == (
        f"Run #{run.pk} (backfill, as of 2026-03-01): 3 customers recorded apart "
        "(prospect 1, new 1, active 1); the current scores, lifecycle transitions and "
        "segments are unchanged.\n"
    )
    runs = RecomputeRun.objects.count()
    with pytest.raises(CommandError, match=r"as of 2026-06-30.*leave out the customers"):
        call_command(
            "recompute",
            "--as-of",
            BACKFILL_DAY.isoformat(),
            "--customers",
            str(backfill_world["young"].pk),
            "--no-progress",
            stdout=StringIO(),
        )
    assert RecomputeRun.objects.count() == runs
    assert _live_state() == before


@pytest.mark.django_db
def test_sweeps_after_a_backfill_score_with_the_latest_full_runs_breakpoints(
    backfill_world: dict[str, Customer],
) -> None:
    full = RecomputeRun.objects.get(kind="full")
    backfill = recompute_full(trigger="test", as_of=BACKFILL_DAY)
    assert backfill.breakpoints != full.breakpoints
    sweep = recompute_customers(trigger="sweep")
    assert (sweep.kind, sweep.status, sweep.customers_processed) == ("incremental", "succeeded", 1)
    assert (sweep.breakpoints, sweep.rfm_policy_id) == (full.breakpoints, full.rfm_policy_id)
    assert not DirtyMark.objects.exists()
