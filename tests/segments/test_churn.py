"""The churn model on synthetic buyers with a known generative process: it beats the
recency-only baseline, reports its quality, is the same model for the same seed, and is only
loaded from bytes this application signed."""

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from segments.predictive import churn
from tests.segments.predictive_support import synthetic_buyers


@pytest.fixture(scope="module")
def fitted() -> churn.ChurnFit:
    return churn.churn_fit(
        synthetic_buyers(8000, seed=1), synthetic_buyers(8000, seed=2), seed=0, max_rows=6000
    )


def test_churn_model_beats_the_recency_only_baseline(fitted: churn.ChurnFit) -> None:
    # Churn depends on frequency and engagement as much as on recency: a model that sees them
    # separates churners far better than recency can.
    assert fitted.beats_baseline
    assert fitted.model.roc_auc > fitted.recency_baseline.roc_auc + 0.05
    assert fitted.model.roc_auc > 0.75
    assert 0.5 < fitted.recency_baseline.roc_auc < fitted.model.roc_auc


def test_churn_quality_is_measured_on_the_held_out_rows(fitted: churn.ChurnFit) -> None:
    test = synthetic_buyers(8000, seed=2)
    labels = churn.churn_labels(test)
    predicted = churn.churn_score(fitted.estimator, test)
    assert fitted.model.roc_auc == round(roc_auc_score(labels, predicted), 4)
    assert fitted.model.brier == round(float(np.mean((predicted - labels) ** 2)), 4)
    assert (fitted.training_rows, fitted.test_rows) == (6000, 8000)
    assert fitted.test_churn_rate == round(float(labels.mean()), 4)
    metrics = fitted.metrics()
    assert set(metrics) >= {"model", "logistic_baseline", "recency_baseline", "beats_baseline"}
    calibration = metrics["model"]["calibration"]
    assert len(calibration) == churn.CALIBRATION_BINS
    # A calibrated model: in each decile of predicted risk, the observed churn is close.
    assert max(abs(b["predicted"] - b["observed"]) for b in calibration) < 0.1


def test_churn_fit_with_the_same_seed_is_the_same_model() -> None:
    train, test = synthetic_buyers(3000, seed=5), synthetic_buyers(3000, seed=6)
    first = churn.churn_fit(train, test, seed=3, max_rows=2000)
    second = churn.churn_fit(train, test, seed=3, max_rows=2000)
    assert first.metrics() == second.metrics()
    np.testing.assert_array_equal(
        churn.churn_score(first.estimator, test), churn.churn_score(second.estimator, test)
    )


def test_churn_estimator_loads_only_signed_bytes(fitted: churn.ChurnFit) -> None:
    data, signature = churn.estimator_dump(fitted.estimator)
    loaded = churn.estimator_load(data, signature)
    buyers = synthetic_buyers(100, seed=9)
    np.testing.assert_array_equal(
        churn.churn_score(loaded, buyers), churn.churn_score(fitted.estimator, buyers)
    )
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(ValueError, match="signature"):
        churn.estimator_load(tampered, signature)


def test_churn_matrix_carries_the_purchase_rhythm() -> None:
    buyers = synthetic_buyers(50, seed=4)
    matrix = churn.churn_matrix(buyers)
    rhythm = matrix[:, churn.FEATURES.index("overdue_ratio")]
    one_order = buyers.column("orders") == 1
    assert np.isnan(rhythm[one_order]).all()
    expected = buyers.column("recency_days") / buyers.column("avg_gap_days")
    np.testing.assert_allclose(rhythm[~one_order], expected[~one_order])


def test_churn_estimator_survives_a_secret_key_rotation(
    fitted: churn.ChurnFit, settings: Any
) -> None:
    data, signature = churn.estimator_dump(fitted.estimator)
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-for-this-test-0123456789"
    with pytest.raises(ValueError, match="signature"):
        churn.estimator_load(data, signature)
    settings.SECRET_KEY_FALLBACKS = [old_key]  # the key being rotated out
    assert isinstance(churn.estimator_load(data, signature), type(fitted.estimator))
