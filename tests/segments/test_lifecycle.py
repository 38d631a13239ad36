"""Lifecycle states over simulated days with a frozen clock: each change recorded once as a
transition, `since` when the state began by the policy, and the same state whatever runs came
before."""

from datetime import date, timedelta

import pytest
import time_machine

from crm.models import OrderStatus
from segments.models import CustomerMetrics, LifecycleTransition
from segments.services.policies import lifecycle_policy_update
from segments.services.recompute import recompute_full
from tests.factories import CustomerFactory
from tests.segments.recompute_support import at, metrics, order

pytestmark = pytest.mark.django_db

DAY0 = date(2025, 1, 1)


def day(n: int) -> date:
    return DAY0 + timedelta(days=n)


def run_on(n: int) -> None:
    """The nightly run on day n, with the clock frozen at 02:30 business time."""
    with time_machine.travel(at(day(n), 2, 30), tick=False):
        recompute_full(trigger="test")


def history_customer():  # type: ignore[no-untyped-def]
    """Orders on days 0 and 10, then (after a gap of 140 days) on day 150."""
    customer = CustomerFactory()
    for n in (0, 10, 150):
        order(customer, days_ago=-n, as_of=DAY0, hour=15)
    return customer


# Expected state on each simulated day, with defaults new 30 / active 90 / sleeping 180 /
# reactivated 30: new to day 30; active to day 100 (90 days after day 10); sleeping to 149;
# the day-150 order follows a gap of 140 > 90 days: reactivated to day 180; active to 240;
# sleeping to 330; churned from 331.
EXPECTED = {
    0: "new",
    30: "new",
    31: "active",
    100: "active",
    101: "sleeping",
    149: "sleeping",
    150: "reactivated",
    180: "reactivated",
    181: "active",
    240: "active",
    241: "sleeping",
    330: "sleeping",
    331: "churned",
    400: "churned",
}


def test_states_and_transitions_over_simulated_days() -> None:
    customer = history_customer()
    before = CustomerFactory()  # never pays: prospect, no transition
    for n, state in EXPECTED.items():
        run_on(n)
        assert metrics(customer).lifecycle_state == state, f"day {n}"
    assert metrics(before).lifecycle_state == "prospect"

    transitions = list(
        LifecycleTransition.objects.filter(customer=customer)
        .order_by("id")
        .values_list("from_state", "to_state", "at")
    )
    assert transitions == [
        ("prospect", "new", at(day(0), 15)),
        ("new", "active", at(day(31), 0)),
        ("active", "sleeping", at(day(101), 0)),
        ("sleeping", "reactivated", at(day(150), 15)),
        ("reactivated", "active", at(day(181), 0)),
        ("active", "sleeping", at(day(241), 0)),
        ("sleeping", "churned", at(day(331), 0)),
    ]
    assert not LifecycleTransition.objects.filter(customer=before).exists()
    row = metrics(customer)
    assert (row.lifecycle_since, row.previous_lifecycle_state) == (at(day(331), 0), "sleeping")


@pytest.mark.parametrize("n", [0, 31, 120, 150, 200, 260, 400])
def test_state_depends_on_orders_and_date_only(n: int) -> None:
    """A single run on day n gives the state, since and previous state that a run every
    simulated day gives, including the exact start of an active spell after a reactivation."""
    customer = history_customer()
    run_on(n)
    single = metrics(customer)
    CustomerMetrics.objects.all().delete()
    for m in sorted(set(EXPECTED) | {n}):
        if m <= n:
            run_on(m)
    daily = metrics(customer)
    assert (
        single.lifecycle_state
        == daily.lifecycle_state
        == EXPECTED.get(n, {120: "sleeping", 200: "active", 260: "sleeping"}.get(n))
    )
    assert single.lifecycle_since == daily.lifecycle_since


def test_active_since_after_reactivation_without_daily_runs() -> None:
    customer = history_customer()
    run_on(200)  # first run ever: active since the reactivated spell ended
    row = metrics(customer)
    assert (row.lifecycle_state, row.lifecycle_since) == ("active", at(day(181), 0))
    assert row.previous_lifecycle_state == "prospect"


def test_refund_of_the_only_order_makes_a_prospect_again() -> None:
    customer = CustomerFactory()
    paid = order(customer, days_ago=-1, as_of=DAY0)
    run_on(3)
    assert metrics(customer).lifecycle_state == "new"
    paid.status = OrderStatus.REFUNDED
    paid.refunded_amount = paid.total_amount
    paid.save()
    run_on(3)
    row = metrics(customer)
    assert (row.lifecycle_state, row.lifecycle_since, row.previous_lifecycle_state) == (
        "prospect",
        None,
        "new",
    )
    assert list(
        LifecycleTransition.objects.filter(customer=customer)
        .order_by("id")
        .values_list("from_state", "to_state")
    ) == [("prospect", "new"), ("new", "prospect")]


def test_an_order_on_the_last_active_day_is_not_a_reactivation() -> None:
    customer = CustomerFactory()
    order(customer, days_ago=0, as_of=day(0))
    order(customer, days_ago=0, as_of=day(90))  # gap of exactly 90 days
    run_on(95)
    assert metrics(customer).lifecycle_state == "active"
    other = CustomerFactory()
    order(other, days_ago=0, as_of=day(0))
    order(other, days_ago=0, as_of=day(91))  # gap of 91 days: back from sleeping
    run_on(95)
    assert metrics(other).lifecycle_state == "reactivated"


def test_policy_change_applies_on_next_run() -> None:
    customer = CustomerFactory()
    order(customer, days_ago=0, as_of=day(0))
    run_on(45)
    assert metrics(customer).lifecycle_state == "active"
    lifecycle_policy_update(changes={"new_days": 60}, actor="test")
    run_on(45)
    row = metrics(customer)
    assert (row.lifecycle_state, row.previous_lifecycle_state) == ("new", "active")


def test_active_since_follows_a_change_of_policy() -> None:
    customer = CustomerFactory()
    order(customer, days_ago=0, as_of=day(0))
    run_on(45)
    assert metrics(customer).lifecycle_since == at(day(31), 0)
    lifecycle_policy_update(changes={"new_days": 14}, actor="test")
    run_on(45)
    row = metrics(customer)
    assert (row.lifecycle_state, row.lifecycle_since) == ("active", at(day(15), 0))
