"""RFM scores and tiers on hand-computed fixtures: quintiles with ties, thresholds on their
edges, the lookback window's edges, refunds, and per-customer metrics."""

from datetime import timedelta
from decimal import Decimal

import pytest

from crm.models import OrderStatus
from segments.models import CustomerMetrics, RfmScoringMethod
from segments.services.policies import rfm_policy_update
from segments.services.recompute import recompute_full
from tests.factories import CustomerFactory
from tests.segments.recompute_support import AS_OF, at, buyer, metrics, order

pytestmark = pytest.mark.django_db


def test_quintile_scores_and_tiers_with_ties() -> None:
    # (recency days, orders in window, net spend) of ten buyers. Sorted, with percentile_disc
    # at 0.2/0.4/0.6/0.8 picking the 2nd/4th/6th/8th value:
    #   recency  1 1 5 10 20 30 60 100 200 300  -> breakpoints 1, 10, 30, 100
    #   orders   1 1 1 1 1 2 2 3 5 10           -> breakpoints 1, 1, 2, 3
    #   spend    20 50 60 80 100 300 300 500 1000 2000 -> breakpoints 50, 80, 300, 500
    # R = 5 - #(days > b); F and M = 1 + #(value > b).
    rows = [
        # recency, orders, spend, expected (R, F, M), tier
        (1, 10, 1000, (5, 5, 5), "important_value"),
        (1, 1, 50, (5, 1, 1), "general_develop"),
        (5, 2, 300, (4, 3, 3), "important_value"),
        (10, 1, 80, (4, 1, 2), "general_develop"),
        (20, 3, 300, (3, 4, 3), "important_value"),
        (30, 1, 100, (3, 1, 3), "important_develop"),
        (60, 2, 500, (2, 3, 4), "important_retain"),
        (100, 1, 60, (2, 1, 2), "general_winback"),
        (200, 5, 2000, (1, 5, 5), "important_retain"),
        (300, 1, 20, (1, 1, 1), "general_winback"),
    ]
    customers = [buyer(recency=r, orders=f, spend=m) for r, f, m, _, _ in rows]
    prospect = CustomerFactory()

    run = recompute_full(trigger="test", as_of=AS_OF)

    assert run.breakpoints == {
        "recency": [1, 10, 30, 100],
        "frequency": [1, 1, 2, 3],
        "monetary": ["50.00", "80.00", "300.00", "500.00"],
    }
    for customer, (_, _, _, scores, tier) in zip(customers, rows, strict=True):
        row = metrics(customer)
        assert (row.r_score, row.f_score, row.m_score) == scores, customer.pk
        assert row.rfm_tier == tier, customer.pk
    row = metrics(prospect)
    assert (row.r_score, row.f_score, row.m_score, row.rfm_tier) == (None, None, None, None)
    assert row.lifecycle_state == "prospect"
    assert run.customers_processed == 11
    assert run.rows_changed == 11


def test_equal_values_always_get_equal_scores() -> None:
    twins = [buyer(recency=7, orders=2, spend=300) for _ in range(6)]
    others = [buyer(recency=r, orders=1, spend=100 + r) for r in (1, 2, 3, 40, 50)]
    recompute_full(trigger="test", as_of=AS_OF)
    scores = {(metrics(c).r_score, metrics(c).f_score, metrics(c).m_score) for c in twins}
    assert len(scores) == 1
    assert all(metrics(c).r_score is not None for c in others)


def _thresholds() -> None:
    rfm_policy_update(
        changes={
            "scoring_method": RfmScoringMethod.THRESHOLDS,
            "recency_breakpoints": [30, 60, 90, 180],
            "frequency_breakpoints": [1, 2, 3, 5],
            "monetary_breakpoints": ["100", "200", "500", "1000"],
        },
        actor="test",
    )


@pytest.mark.parametrize(
    ("recency", "expected_r"),
    [(0, 5), (30, 5), (31, 4), (60, 4), (61, 3), (90, 3), (91, 2), (180, 2), (181, 1), (364, 1)],
)
def test_threshold_recency_edges(recency: int, expected_r: int) -> None:
    _thresholds()
    customer = buyer(recency=recency, orders=1, spend=150)
    recompute_full(trigger="test", as_of=AS_OF)
    assert metrics(customer).r_score == expected_r


@pytest.mark.parametrize(
    ("orders", "expected_f"), [(1, 1), (2, 2), (3, 3), (4, 4), (5, 4), (6, 5), (9, 5)]
)
def test_threshold_frequency_edges(orders: int, expected_f: int) -> None:
    _thresholds()
    customer = buyer(recency=1, orders=orders, spend=1000)
    recompute_full(trigger="test", as_of=AS_OF)
    assert metrics(customer).f_score == expected_f


@pytest.mark.parametrize(
    ("spend", "expected_m"),
    [
        ("0.50", 1),
        ("100.00", 1),
        ("100.01", 2),
        ("200.00", 2),
        ("500.00", 3),
        ("1000.00", 4),
        ("1000.01", 5),
    ],
)
def test_threshold_monetary_edges(spend: str, expected_m: int) -> None:
    _thresholds()
    customer = CustomerFactory()
    order(customer, days_ago=3, amount=spend)
    recompute_full(trigger="test", as_of=AS_OF)
    assert metrics(customer).m_score == expected_m


def test_window_edges_in_business_time() -> None:
    """The 365-day window holds the as-of day and the 364 before it, in business time."""
    _thresholds()
    first_day = AS_OF - timedelta(days=364)
    inside = CustomerFactory()
    order(inside, days_ago=364, hour=0)  # 00:00 of the window's first day
    outside = CustomerFactory()
    outside_order = order(outside, days_ago=365, hour=23)
    outside_order.paid_at = at(first_day - timedelta(days=1), 23, 59, 59)
    outside_order.save()
    tomorrow = CustomerFactory()
    order(tomorrow, days_ago=-1, hour=0)  # after the as-of day: not counted yet

    recompute_full(trigger="test", as_of=AS_OF)

    row = metrics(inside)
    assert (row.orders_in_window, row.r_score, row.rfm_tier) == (1, 1, "general_winback")
    row = metrics(outside)
    assert (row.orders_in_window, row.net_spend_in_window) == (0, Decimal("0.00"))
    assert (row.r_score, row.f_score, row.m_score, row.rfm_tier) == (None, None, None, None)
    assert (row.lifetime_orders, row.lifetime_net_spend) == (1, Decimal("100.00"))
    assert row.lifecycle_state == "churned"
    row = metrics(tomorrow)
    assert (row.lifetime_orders, row.lifecycle_state, row.rfm_tier) == (0, "prospect", None)


def test_refunds_net_out_and_unpaid_orders_do_not_count() -> None:
    customer = CustomerFactory()
    order(customer, days_ago=10, amount="300.00", refunded="50.00", status="partially_refunded")
    order(customer, days_ago=20, amount="200.00", refunded="200.00", status=OrderStatus.REFUNDED)
    order(customer, days_ago=30, amount="999.00", status=OrderStatus.CANCELLED)
    order(customer, days_ago=40, amount="100.00")
    order(customer, days_ago=400, amount="80.00")  # lifetime only

    recompute_full(trigger="test", as_of=AS_OF)

    row = metrics(customer)
    assert row.orders_in_window == 2
    assert row.net_spend_in_window == Decimal("350.00")
    assert row.lifetime_orders == 3
    assert row.lifetime_net_spend == Decimal("430.00")
    assert row.avg_order_value == Decimal("143.33")
    assert row.first_paid_at == at(AS_OF - timedelta(days=400))
    assert row.last_paid_at == at(AS_OF - timedelta(days=10))
    assert row.avg_days_between_orders == Decimal("195.0")  # (400 - 10) / 2


def test_high_score_threshold_moves_tiers() -> None:
    customer = buyer(recency=1, orders=1, spend=100)
    _thresholds()  # R 5, F 1, M 1
    recompute_full(trigger="test", as_of=AS_OF)
    assert metrics(customer).rfm_tier == "general_develop"
    rfm_policy_update(changes={"high_score_threshold": 1}, actor="test")
    recompute_full(trigger="test", as_of=AS_OF)
    assert metrics(customer).rfm_tier == "important_value"


def test_rerun_on_unchanged_data_writes_nothing() -> None:
    customers = [buyer(recency=r, orders=1 + r % 3, spend=50 * r) for r in range(1, 30, 3)]
    CustomerFactory()
    first = recompute_full(trigger="test", as_of=AS_OF)
    stamps = dict(CustomerMetrics.objects.values_list("customer_id", "changed_at"))
    second = recompute_full(trigger="test", as_of=AS_OF)
    assert first.rows_changed == len(customers) + 1
    assert (second.rows_changed, second.transitions_written) == (0, 0)
    assert second.breakpoints == first.breakpoints
    assert dict(CustomerMetrics.objects.values_list("customer_id", "changed_at")) == stamps
