"""Synthetic buyers for the predictive model tests, drawn from a known generative process."""

from datetime import date

import numpy as np

from segments.predictive.features import BASE_COLUMNS, INTERACTION_KINDS, Features

AS_OF = date(2026, 6, 30)


def synthetic_buyers(rows: int, *, seed: int, as_of: date = AS_OF) -> Features:
    """Buyers whose churn (no order in the label period) depends on recency, on how often they
    buy and on how engaged they are (interactions), with known weights:
    logit P(churn) = -0.5 + 0.015 * recency - 0.9 * log(1 + orders) - 1.2 * engagement.
    Recency alone therefore explains only part of it."""
    rng = np.random.default_rng(seed)
    engagement = rng.normal(0.0, 1.0, rows)
    orders = 1 + rng.poisson(np.exp(0.8 + 0.4 * engagement))
    recency = rng.exponential(60.0, rows)
    tenure = recency + rng.uniform(0, 500, rows)
    span = tenure - recency
    aov = rng.gamma(4.0, 50.0, rows)
    interactions = rng.poisson(np.exp(1.0 + engagement))
    logit = -0.5 + 0.015 * recency - 0.9 * np.log1p(orders) - 1.2 * engagement
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    future = np.where(churned, 0, 1 + rng.poisson(1.0, rows))
    gap = np.where(orders > 1, span / np.maximum(orders - 1, 1), np.nan)
    columns = {
        "recency_days": recency,
        "tenure_days": tenure,
        "repeat_span_days": span,
        "orders": orders.astype(float),
        "orders_90d": np.minimum(orders, rng.poisson(1.0, rows)).astype(float),
        "orders_365d": orders.astype(float),
        "spend": orders * aov,
        "spend_365d": orders * aov,
        "avg_order_value": aov,
        "repeat_order_value": np.where(orders > 1, aov, np.nan),
        "avg_gap_days": gap,
        "future_orders": future.astype(float),
        "interactions_90d": (interactions // 2).astype(float),
        "interactions_365d": interactions.astype(float),
        "groups": rng.poisson(0.5, rows).astype(float),
    }
    share = rng.dirichlet(np.ones(len(INTERACTION_KINDS)), rows)
    for index, kind in enumerate(INTERACTION_KINDS):
        columns[f"interactions_{kind}"] = np.round(interactions * share[:, index])
    values = np.column_stack([columns[name] for name in BASE_COLUMNS])
    return Features(
        as_of=as_of, customer_ids=np.arange(1, rows + 1), columns=BASE_COLUMNS, values=values
    )
