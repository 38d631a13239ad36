"""Churn risk: the probability that a buyer places no paid order in the next H days.

A gradient-boosting classifier learns it from the features of every buyer at a training
cutoff and what each then did in the H days after; it is judged on the buyers of a later
cutoff (a time-based split: the held-out period comes after everything it learnt from),
against two baselines on the same rows: a logistic regression on the same features, and a
logistic regression on recency alone (the rule of thumb any model has to beat). Quality: ROC
AUC, Brier score and a calibration table (predicted against observed churn by decile).
"""

import hmac
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.utils.crypto import salted_hmac
from sklearn.calibration import calibration_curve
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from segments.predictive.features import Features

FEATURES = (
    "recency_days",
    "tenure_days",
    "orders",
    "orders_90d",
    "orders_365d",
    "spend",
    "spend_365d",
    "avg_order_value",
    "avg_gap_days",
    "overdue_ratio",
    "interactions_90d",
    "interactions_365d",
    "groups",
)
CALIBRATION_BINS = 10


def churn_matrix(features: Features) -> np.ndarray:
    """The model's inputs: the stored features and the purchase rhythm (days since the last
    order over the usual gap between orders; NaN for a one-order customer)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        overdue = features.column("recency_days") / features.column("avg_gap_days")
    overdue[~np.isfinite(overdue)] = np.nan
    columns = [overdue if name == "overdue_ratio" else features.column(name) for name in FEATURES]
    return np.column_stack(columns)


def churn_labels(features: Features) -> np.ndarray:
    """1 for a buyer with no paid order in the label period, 0 otherwise."""
    return (features.column("future_orders") == 0).astype(np.int8)


@dataclass(frozen=True)
class Quality:
    roc_auc: float
    brier: float
    calibration: list[dict[str, float]]

    def as_json(self) -> dict[str, Any]:
        return {"roc_auc": self.roc_auc, "brier": self.brier, "calibration": self.calibration}


def quality(labels: np.ndarray, predicted: np.ndarray) -> Quality:
    observed, mean_predicted = calibration_curve(
        labels, predicted, n_bins=CALIBRATION_BINS, strategy="quantile"
    )
    return Quality(
        roc_auc=round(float(roc_auc_score(labels, predicted)), 4),
        brier=round(float(brier_score_loss(labels, predicted)), 4),
        calibration=[
            {"predicted": round(float(p), 4), "observed": round(float(o), 4)}
            for p, o in zip(mean_predicted, observed, strict=True)
        ],
    )


@dataclass(frozen=True)
class ChurnFit:
    estimator: HistGradientBoostingClassifier
    model: Quality
    logistic_baseline: Quality
    recency_baseline: Quality
    training_rows: int
    test_rows: int
    training_churn_rate: float
    test_churn_rate: float

    @property
    def beats_baseline(self) -> bool:
        return self.model.roc_auc > self.recency_baseline.roc_auc

    def metrics(self) -> dict[str, Any]:
        return {
            "model": self.model.as_json(),
            "logistic_baseline": self.logistic_baseline.as_json(),
            "recency_baseline": self.recency_baseline.as_json(),
            "beats_baseline": self.beats_baseline,
            "training_rows": self.training_rows,
            "test_rows": self.test_rows,
            "training_churn_rate": self.training_churn_rate,
            "test_churn_rate": self.test_churn_rate,
        }


def _sample(rows: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    if rows <= limit:
        return np.arange(rows)
    return np.sort(rng.choice(rows, size=limit, replace=False))


def _log_scale(x: np.ndarray) -> np.ndarray:
    """log(1 + x) of the non-negative part: the baselines' view of skewed counts and amounts
    (the features are never negative, but a bad order amount must not make a NaN)."""
    return np.log1p(np.maximum(x, 0))


def churn_fit(train: Features, test: Features, *, seed: int, max_rows: int) -> ChurnFit:
    """Fit on `train` (at most `max_rows` of it, a seeded sample) and judge on all of `test`.
    Both need buyers who churned and buyers who did not (the caller checks)."""
    rng = np.random.default_rng(seed)
    picked = _sample(len(train), max_rows, rng)
    x_train, y_train = churn_matrix(train)[picked], churn_labels(train)[picked]
    x_test, y_test = churn_matrix(test), churn_labels(test)
    estimator = HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.1, early_stopping=True, random_state=seed
    )
    estimator.fit(x_train, y_train)
    logistic = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True),
        FunctionTransformer(_log_scale),
        StandardScaler(),
        LogisticRegression(max_iter=1000),
    )
    logistic.fit(x_train, y_train)
    recency = FEATURES.index("recency_days")
    recency_only = make_pipeline(
        FunctionTransformer(_log_scale), StandardScaler(), LogisticRegression(max_iter=1000)
    )
    recency_only.fit(x_train[:, [recency]], y_train)
    return ChurnFit(
        estimator=estimator,
        model=quality(y_test, estimator.predict_proba(x_test)[:, 1]),
        logistic_baseline=quality(y_test, logistic.predict_proba(x_test)[:, 1]),
        recency_baseline=quality(y_test, recency_only.predict_proba(x_test[:, [recency]])[:, 1]),
        training_rows=len(picked),
        test_rows=len(x_test),
        training_churn_rate=round(float(y_train.mean()), 4),
        test_churn_rate=round(float(y_test.mean()), 4),
    )


def churn_score(estimator: HistGradientBoostingClassifier, features: Features) -> np.ndarray:
    return np.asarray(estimator.predict_proba(churn_matrix(features))[:, 1], dtype=np.float64)


_SIGNATURE_SALT = "segments.predictive.churn"


def _signature(data: bytes, secret: str | None = None) -> str:
    """HMAC-SHA256 of `data` under the project's secret key (or `secret`), salted for this use."""
    return salted_hmac(
        _SIGNATURE_SALT, data, secret=secret or settings.SECRET_KEY, algorithm="sha256"
    ).hexdigest()


def estimator_dump(estimator: HistGradientBoostingClassifier) -> tuple[bytes, str]:
    """The estimator's bytes and their signature (HMAC under the project's secret key)."""
    data = pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
    return data, _signature(data)


def estimator_load(data: bytes, signature: str) -> HistGradientBoostingClassifier:
    """Load bytes `estimator_dump` made; refuse any others (pickle runs code when loaded)."""
    data = bytes(data)
    # The current key first, then those being rotated out (settings.SECRET_KEY_FALLBACKS).
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not any(hmac.compare_digest(_signature(data, key), signature) for key in secrets):
        raise ValueError("the stored churn model's signature does not match its bytes")
    estimator = pickle.loads(data)  # noqa: S301 - signed by this application
    if not isinstance(estimator, HistGradientBoostingClassifier):
        raise ValueError("the stored churn model is not a gradient-boosting classifier")
    return estimator
