"""Behaviour clusters: K-means over standardised behaviour features of the buyers.

Features: recency, frequency, average order value and interactions (log scale), the share of
item spend in each of the top categories and in the rest, and the mix of interaction kinds.
k is the one of the range with the best silhouette (on a seeded sample: the silhouette costs
the square of the rows). Clusters are numbered 1..k by size, largest first, and described in
words from their centroid: each trait is a feature at least half a standard deviation away
from the buyers' mean, or a category holding at least 40% of the cluster's spend.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from segments.predictive.features import INTERACTION_KINDS, Features, category_column

SILHOUETTE_ROWS = 10_000
MIN_SCALE = 1e-6
DISTINCT_Z = 0.5
DOMINANT_SHARE = 0.4
_LOG_FEATURES = ("recency_days", "orders", "avg_order_value", "interactions_365d")
# Traits in the order a description names them: (feature, code when high, code when low).
_TRAITS: tuple[tuple[str, str, str | None], ...] = (
    ("avg_order_value", "high_order_value", "low_order_value"),
    ("recency_days", "long_inactive", "recently_active"),
    ("orders", "frequent", "infrequent"),
    ("interactions_365d", "engaged", None),
)


def cluster_feature_names(categories: Sequence[str]) -> list[str]:
    return [
        *_LOG_FEATURES,
        *(f"share_{category}" for category in categories),
        "share_other",
        *(f"share_{kind}" for kind in INTERACTION_KINDS),
    ]


def cluster_matrix(features: Features, categories: Sequence[str]) -> np.ndarray:
    """One row per buyer of `features` (which must carry the spend of `categories`)."""
    columns = [np.log1p(np.maximum(features.column(name), 0)) for name in _LOG_FEATURES]
    item_spend = features.column("item_spend")
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = [
            np.where(item_spend > 0, features.column(category_column(i)) / item_spend, 0.0)
            for i in range(len(categories))
        ]
        other = np.where(item_spend > 0, 1.0 - np.sum(shares, axis=0), 0.0)
        interactions = features.column("interactions_365d")
        mix = [
            np.where(interactions > 0, features.column(f"interactions_{kind}") / interactions, 0.0)
            for kind in INTERACTION_KINDS
        ]
    return np.column_stack([*columns, *shares, other, *mix])


@dataclass(frozen=True)
class ClusterFit:
    k: int
    silhouettes: dict[int, float]
    mean: list[float]
    scale: list[float]
    centroids: list[list[float]]  # standardised, in cluster number order
    clusters: list[dict[str, Any]]  # number, size, share, profile, traits
    training_rows: int

    def parameters(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "mean": self.mean,
            "scale": self.scale,
            "centroids": self.centroids,
            "clusters": self.clusters,
        }


def _standardise(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (x - mean) / scale


def clusters_fit(
    x: np.ndarray,
    *,
    names: Sequence[str],
    categories: Sequence[str],
    k_range: range,
    seed: int,
    max_rows: int,
) -> ClusterFit:
    """Choose k in `k_range` by silhouette and fit K-means on at most `max_rows` rows (a seeded
    sample); sizes and profiles are over all rows of `x`."""
    rng = np.random.default_rng(seed)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    # A feature that (nearly) never varies is left unscaled: dividing rounding noise by a tiny
    # deviation would make it the loudest feature of all.
    scale[scale < MIN_SCALE] = 1.0
    z = _standardise(x, mean, scale)
    sample = z if len(z) <= max_rows else z[np.sort(rng.choice(len(z), max_rows, replace=False))]
    models: dict[int, KMeans] = {}
    silhouettes: dict[int, float] = {}
    for k in k_range:
        if k >= len(sample):
            break
        model = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(sample)
        models[k] = model
        silhouettes[k] = round(
            float(
                silhouette_score(
                    sample,
                    model.labels_,
                    sample_size=min(SILHOUETTE_ROWS, len(sample)),
                    random_state=seed,
                )
            ),
            4,
        )
    if not silhouettes:
        raise ValueError("too few buyers to form clusters")
    best = max(silhouettes, key=lambda k: (silhouettes[k], -k))
    raw_labels = models[best].predict(z)
    sizes = np.bincount(raw_labels, minlength=best)
    order = sorted(range(best), key=lambda c: (-sizes[c], c))  # largest first
    centroids = models[best].cluster_centers_[order]
    clusters = []
    for number, label in enumerate(order, start=1):
        members = raw_labels == label
        profile = x[members].mean(axis=0)
        typical = profile.copy()  # log-scale features back in their units (geometric means)
        for index, name in enumerate(names):
            if name in _LOG_FEATURES:
                typical[index] = np.expm1(profile[index])
        clusters.append(
            {
                "number": number,
                "size": int(sizes[label]),
                "share": round(float(sizes[label] / len(x)), 4),
                "profile": {n: round(float(v), 4) for n, v in zip(names, typical, strict=True)},
                "traits": _traits(
                    z[members].mean(axis=0), profile, names=names, categories=categories
                ),
            }
        )
    return ClusterFit(
        k=best,
        silhouettes=silhouettes,
        mean=mean.tolist(),
        scale=scale.tolist(),
        centroids=centroids.tolist(),
        clusters=clusters,
        training_rows=len(sample),
    )


def _traits(
    z_profile: np.ndarray,
    profile: np.ndarray,
    *,
    names: Sequence[str],
    categories: Sequence[str],
) -> list[list[str]]:
    """[code] or [code, argument] pairs, rendered in words by
    segments.predictive.descriptions.cluster_description."""
    traits: list[list[str]] = []
    by_name = dict(zip(names, range(len(names)), strict=True))
    for feature, high, low in _TRAITS[:1]:
        traits += _trait(z_profile[by_name[feature]], high, low)
    shares = [(profile[by_name[f"share_{c}"]], c) for c in categories]
    if shares:
        share, category = max(shares)
        if share >= DOMINANT_SHARE:
            traits.append(["mostly", category])
    for feature, high, low in _TRAITS[1:]:
        traits += _trait(z_profile[by_name[feature]], high, low)
    return traits


def _trait(z: float, high: str, low: str | None) -> list[list[str]]:
    if z >= DISTINCT_Z:
        return [[high]]
    if z <= -DISTINCT_Z and low is not None:
        return [[low]]
    return []


def clusters_assign(parameters: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """The number (1..k) of the nearest centroid of a fitted clustering, per row of `x`."""
    z = _standardise(x, np.asarray(parameters["mean"]), np.asarray(parameters["scale"]))
    centroids = np.asarray(parameters["centroids"])
    # |z - c|^2 = |z|^2 - 2 z.c + |c|^2; |z|^2 is the same for every centroid.
    distances = -2.0 * z @ centroids.T + (centroids**2).sum(axis=1)
    return np.asarray(distances.argmin(axis=1) + 1, dtype=np.int64)
