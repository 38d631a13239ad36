"""After an erasure the erased customer's orders stay with no customer (NULL): every read that
joins or groups orders by customer treats them as the brand's revenue of nobody, without
failing and without a NULL buyer: the overview's key figures, retention, the nightly
recomputation, the predictive features, rule conditions on purchases, the order pages of the
admin and the orders API."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from console.selectors import overview_kpis, overview_period
from console.services.privacy import customer_erase
from segments.models import CustomerMetrics, RecomputeStatus
from segments.predictive.features import features_as_of
from segments.services.recompute import recompute_customers, recompute_full
from segments.services.retention import retention_recompute
from tests.console.privacy_support import AT, two_people
from tests.segments.rules_support import sql_members
from tests.support import client_of

pytestmark = pytest.mark.django_db

NOW = AT + dt.timedelta(days=10)


@pytest.fixture
def erased():
    first, second, _setting = two_people()
    customer_erase(customer_id=first.pk, actor="user:1")
    return first, second


def test_key_figures_count_the_orders_and_no_buyer_for_them(erased) -> None:
    figures = overview_kpis(period=overview_period(days=30, now=NOW)).current
    assert figures.orders == 2
    assert figures.revenue == Decimal("598.00")
    assert figures.buyers == 1
    assert figures.repeat_buyers == 0


def test_purchase_conditions_are_not_blinded_by_customer_less_items(erased) -> None:
    _first, second = erased
    rule = {
        "field": "purchased",
        "op": "eq",
        "value": 0,
        "params": {"sku": ["SKU-A1"]},
    }
    # Only the erased person bought SKU-A1: everyone left never did.
    assert sql_members(rule, as_of=NOW) == {second.pk}
    bought = {"field": "purchased", "op": "gte", "value": 1, "params": {"sku": ["SKU-A2"]}}
    assert sql_members(bought, as_of=NOW) == {second.pk}


def test_the_recomputation_runs_over_customer_less_orders(erased) -> None:
    _first, second = erased
    run = recompute_full(trigger="test", as_of=NOW.date())
    assert run.status == RecomputeStatus.SUCCEEDED
    assert list(CustomerMetrics.objects.values_list("customer_id", "lifetime_orders")) == [
        (second.pk, 1)
    ]
    again = recompute_customers(customer_ids=[second.pk], trigger="test", as_of=NOW.date())
    assert again.status == RecomputeStatus.SUCCEEDED


def test_predictive_features_hold_no_customer_less_row(erased) -> None:
    _first, second = erased
    features = features_as_of(NOW.date(), label_days=0, categories=["面膜"])
    assert list(features.customer_ids) == [second.pk]


def test_retention_is_computed(erased) -> None:
    recompute_full(trigger="test", as_of=NOW.date())
    retention_recompute(now=NOW)


def test_the_order_pages_show_an_order_without_customer(erased, admin_user: User) -> None:
    first, _second = erased
    client = client_of(admin_user)
    listing = client.get(reverse("admin:crm_order_changelist"))
    assert listing.status_code == 200
    assert first.order.external_id in listing.content.decode()
    page = client.get(reverse("admin:crm_order_change", args=[first.order.pk]))
    assert page.status_code == 200
    assert "299.00" in page.content.decode()


def test_the_orders_api_answers_an_order_without_customer(erased, api_client_with_scopes) -> None:
    first, _second = erased
    body = api_client_with_scopes("orders:read").get("/api/v1/orders").json()
    rows = {row["id"]: row for row in body["results"]}
    assert rows[first.order.pk]["customer_id"] is None
    assert rows[first.order.pk]["total_amount"] == "299.00"
    assert len(rows[first.order.pk]["items"]) == 2
