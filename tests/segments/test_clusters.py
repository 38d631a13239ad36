"""Behaviour clusters: k chosen by silhouette finds the groups a known process drew, numbered
by size, each described in words from its centroid, and new rows go to their nearest cluster."""

from datetime import date

import numpy as np
import pytest
from django.utils import translation

from segments.predictive import clusters
from segments.predictive.descriptions import cluster_description
from segments.predictive.features import (
    BASE_COLUMNS,
    INTERACTION_KINDS,
    Features,
    category_column,
)

CATEGORIES = ["美妆", "护肤", "香水"]
COLUMNS = (*BASE_COLUMNS, "item_spend", *(category_column(i) for i in range(len(CATEGORIES))))


def _buyers(groups: list[dict[str, float]], sizes: list[int], seed: int) -> Features:
    """Buyers in groups, each group around given recency, orders, order value and the share
    of its spend in the first category."""
    rng = np.random.default_rng(seed)
    rows = []
    for group, size in zip(groups, sizes, strict=True):
        for _ in range(size):
            values = dict.fromkeys(COLUMNS, 0.0)
            values["recency_days"] = group["recency"] * rng.lognormal(0, 0.1)
            values["orders"] = group["orders"] * rng.lognormal(0, 0.1)
            values["avg_order_value"] = group["aov"] * rng.lognormal(0, 0.1)
            values["item_spend"] = values["orders"] * values["avg_order_value"]
            first = min(1.0, max(0.0, group["share"] + rng.normal(0, 0.03)))
            values[category_column(0)] = values["item_spend"] * first
            values[category_column(1)] = values["item_spend"] * (1 - first)
            rows.append([values[c] for c in COLUMNS])
    return Features(
        as_of=date(2026, 6, 30),
        customer_ids=np.arange(1, len(rows) + 1),
        columns=COLUMNS,
        values=np.array(rows),
    )


GROUPS = [
    {"recency": 10, "orders": 8, "aov": 600, "share": 0.9},  # recent, frequent, big, mostly 美妆
    {"recency": 300, "orders": 1, "aov": 80, "share": 0.1},  # long gone one-off small buyers
    {"recency": 60, "orders": 3, "aov": 200, "share": 0.5},  # in between
]


@pytest.fixture(scope="module")
def fitted() -> tuple[Features, clusters.ClusterFit]:
    buyers = _buyers(GROUPS, [300, 500, 200], seed=1)
    fit = clusters.clusters_fit(
        clusters.cluster_matrix(buyers, CATEGORIES),
        names=clusters.cluster_feature_names(CATEGORIES),
        categories=CATEGORIES,
        k_range=range(2, 7),
        seed=0,
        max_rows=800,
    )
    return buyers, fit


def test_clusters_find_the_drawn_groups_numbered_by_size(
    fitted: tuple[Features, clusters.ClusterFit],
) -> None:
    fit = fitted[1]
    assert fit.k == 3
    assert max(fit.silhouettes, key=lambda k: fit.silhouettes[k]) == 3
    assert [c["size"] for c in fit.clusters] == [500, 300, 200]
    assert [c["number"] for c in fit.clusters] == [1, 2, 3]
    assert fit.training_rows == 800
    # Profiles are typical values in the features' own units.
    assert fit.clusters[1]["profile"]["avg_order_value"] == pytest.approx(600, rel=0.1)
    assert fit.clusters[0]["profile"]["recency_days"] == pytest.approx(300, rel=0.1)


def test_clusters_are_described_from_their_centroids(
    fitted: tuple[Features, clusters.ClusterFit],
) -> None:
    fit = fitted[1]
    traits = {c["number"]: c["traits"] for c in fit.clusters}
    assert traits[2] == [
        ["high_order_value"],
        ["mostly", "美妆"],
        ["recently_active"],
        ["frequent"],
    ]
    assert traits[1] == [["low_order_value"], ["mostly", "护肤"], ["long_inactive"], ["infrequent"]]
    with translation.override("zh-hans"):
        assert cluster_description(traits[2]) == "高客单, 美妆为主, 近期活跃, 高频复购"
        assert cluster_description([]) == "普通买家"
    with translation.override("en"):
        assert cluster_description(traits[2]) == (
            "high order value, mostly 美妆, recently active, frequent buyers"
        )


def test_new_rows_go_to_the_nearest_cluster(
    fitted: tuple[Features, clusters.ClusterFit],
) -> None:
    buyers, fit = fitted
    assigned = clusters.clusters_assign(
        fit.parameters(), clusters.cluster_matrix(buyers, CATEGORIES)
    )
    # The drawn groups, in the order they were drawn: 300 of group 0, 500 of 1, 200 of 2.
    assert set(assigned[:300]) == {2}
    assert set(assigned[300:800]) == {1}
    assert set(assigned[800:]) == {3}
    fresh = _buyers(GROUPS, [5, 5, 5], seed=7)
    assert (
        list(clusters.clusters_assign(fit.parameters(), clusters.cluster_matrix(fresh, CATEGORIES)))
        == [2] * 5 + [1] * 5 + [3] * 5
    )


def test_clusters_with_the_same_seed_are_the_same() -> None:
    buyers = _buyers(GROUPS, [100, 150, 80], seed=3)
    x = clusters.cluster_matrix(buyers, CATEGORIES)
    names = clusters.cluster_feature_names(CATEGORIES)
    first = clusters.clusters_fit(
        x, names=names, categories=CATEGORIES, k_range=range(2, 6), seed=4, max_rows=200
    )
    second = clusters.clusters_fit(
        x, names=names, categories=CATEGORIES, k_range=range(2, 6), seed=4, max_rows=200
    )
    assert first == second


def test_interaction_mix_is_a_share_of_interactions() -> None:
    buyers = _buyers(GROUPS[:1], [2], seed=2)
    values = buyers.values.copy()
    values[0, COLUMNS.index("interactions_365d")] = 4
    values[0, COLUMNS.index(f"interactions_{INTERACTION_KINDS[0]}")] = 3
    values[0, COLUMNS.index(f"interactions_{INTERACTION_KINDS[1]}")] = 1
    matrix = clusters.cluster_matrix(
        Features(
            as_of=buyers.as_of, customer_ids=buyers.customer_ids, columns=COLUMNS, values=values
        ),
        CATEGORIES,
    )
    names = clusters.cluster_feature_names(CATEGORIES)
    row = dict(zip(names, matrix[0], strict=True))
    assert (row[f"share_{INTERACTION_KINDS[0]}"], row[f"share_{INTERACTION_KINDS[1]}"]) == (
        0.75,
        0.25,
    )
    assert dict(zip(names, matrix[1], strict=True))[f"share_{INTERACTION_KINDS[0]}"] == 0.0
    assert row["share_other"] == pytest.approx(0.0)
