"""Fitting and scoring of the predictive models: lifetime value (BG/NBD + Gamma-Gamma), churn
risk (gradient boosting) and behaviour clusters (K-means).

`models_fit` fits all three as of a business date, each into a new versioned ModelFit (or one
that says why it could not be fitted), then scores every buyer with them. `predictions_score`
scores every buyer with the latest fitted version of each model (the nightly job). Both read
each buyer's behaviour in one statement per date (segments.predictive.features) and write the
scores in id-range batches, only where a value changed: a re-run on unchanged data writes
nothing, and a crashed run can simply be run again.

Dates: with churn horizon H (PREDICTIVE_CHURN_HORIZON_DAYS) and as-of date A, the churn model
learns from the buyers of A - 2H and what they did in the next H days, and is judged on those
of A - H and what they did up to A. Lifetime value is judged the same way (fitted as of A - H,
its expected purchases compared with the orders up to A) and then fitted again as of A for
scoring. Clusters are fitted on the buyers as of A.

Fits and scorings never interleave: each holds a PostgreSQL advisory lock for its whole length.
"""

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import sklearn
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from core.locks import Lock, session_lock
from crm.services.removals import customers_removal_lock
from segments.models import ModelFit, ModelFitStatus, ModelName
from segments.predictive import churn, clusters, clv
from segments.predictive.features import Features, copy_in, features_as_of, top_categories
from segments.services.fits import (
    REASON_BELOW_BASELINE,
    REASON_ERROR,
    REASON_INTERRUPTED,
    REASON_NO_REPEAT_BUYERS,
    REASON_NOT_IDENTIFIED,
    REASON_ONE_OUTCOME,
    REASON_TOO_FEW_BUYERS,
    REASON_TOO_LITTLE_HISTORY,
)

logger = logging.getLogger(__name__)

CLUSTER_CATEGORIES = 5
# 100k customers a transaction: a second or so each, 10 batches for a million.
SCORE_BATCH = 100_000
DAYS_PER_MONTH = 365.25 / 12
HOLDOUT_DECILES = 10

Progress = Callable[[str], None]

_SCORE_COLUMNS = ("predicted_value", "expected_purchases", "p_alive", "churn_risk", "cluster")
_ROUNDED = {
    "predicted_value": "round(s.predicted_value::numeric, 2)",
    "expected_purchases": "round(s.expected_purchases::numeric, 3)",
    "p_alive": "round(s.p_alive::numeric, 4)",
    "churn_risk": "round(s.churn_risk::numeric, 4)",
    "cluster": "s.cluster::smallint",
}
_UPSERT_SQL = f"""
    INSERT INTO segments_customerprediction (customer_id, {", ".join(_SCORE_COLUMNS)}, scored_at)
    SELECT s.customer_id, {", ".join(_ROUNDED[c] for c in _SCORE_COLUMNS)}, %(scored_at)s
    FROM (
        SELECT customer_id, {", ".join(f"nullif({c}, 'NaN') AS {c}" for c in _SCORE_COLUMNS)}
        FROM segments_work_scores
    ) s
    JOIN crm_customer c ON c.id = s.customer_id  -- not one removed since the features were read
    ON CONFLICT (customer_id) DO UPDATE SET
        {", ".join(f"{c} = EXCLUDED.{c}" for c in _SCORE_COLUMNS)}, scored_at = EXCLUDED.scored_at
    WHERE ({", ".join(f"segments_customerprediction.{c}" for c in _SCORE_COLUMNS)})
          IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in _SCORE_COLUMNS)})
"""  # noqa: S608 - constants only
# Rows of customers in the batch's id range who are no longer buyers (all orders refunded).
_DELETE_STALE_SQL = """
    DELETE FROM segments_customerprediction p
    WHERE p.customer_id > %(after)s AND p.customer_id <= %(upto)s
      AND NOT EXISTS (SELECT 1 FROM segments_work_scores s WHERE s.customer_id = p.customer_id)
"""


class FitSkipped(Exception):
    """Another fit or scoring held the lock and the caller chose not to wait."""


class NothingFitted(Exception):
    """No model has a fitted version to score with."""


@dataclass(frozen=True)
class ScoreOutcome:
    customers: int
    rows_changed: int
    seconds: float


# --- fitting ---------------------------------------------------------------------------------


@contextmanager
def _fit_record(name: str, *, as_of: date, trigger: str) -> Iterator[ModelFit]:
    """A new version of model `name`, finished (or failed, with the error) when the block
    ends. The block sets status FITTED or INSUFFICIENT_DATA itself."""
    last = ModelFit.objects.filter(name=name).aggregate(last=Max("version"))["last"] or 0
    fit = ModelFit.objects.create(
        name=name, version=last + 1, trigger=trigger, as_of=as_of, seed=settings.PREDICTIVE_SEED
    )
    try:
        yield fit
    except Exception as error:
        logger.exception("model_fit.failed", extra={"model": name, "fit_id": fit.pk})
        fit.status = ModelFitStatus.FAILED
        fit.reason = REASON_ERROR
        fit.metrics = {"reason_numbers": {"error": f"{type(error).__name__}: {error}"[:500]}}
    fit.parameters = _json_safe(fit.parameters)
    fit.metrics = _json_safe(fit.metrics)
    fit.finished_at = timezone.now()
    fit.save()
    logger.info(
        "model_fit.finished",
        extra={"model": name, "fit_id": fit.pk, "version": fit.version, "status": fit.status},
    )


def _has_too_few_buyers(fit: ModelFit, features: Features) -> bool:
    """Whether `features` hold fewer buyers than a fit needs (PREDICTIVE_MIN_BUYERS); if so,
    `fit` says so."""
    if len(features) >= settings.PREDICTIVE_MIN_BUYERS:
        return False
    _not_fitted(
        fit,
        REASON_TOO_FEW_BUYERS,
        buyers=len(features),
        cutoff=features.as_of,
        minimum=settings.PREDICTIVE_MIN_BUYERS,
    )
    return True


def _json_safe(value: Any) -> Any:
    """`value` with every non-finite float (NaN, infinity: not JSON) replaced by None."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _not_fitted(fit: ModelFit, reason: str, **numbers: Any) -> None:
    fit.status = ModelFitStatus.INSUFFICIENT_DATA
    fit.reason = reason
    fit.metrics = {"reason_numbers": {k: str(v) for k, v in numbers.items()}}


def _clv_inputs(features: Features) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD's repeat purchases, recency and age (days), and Gamma-Gamma's monetary value:
    the mean of the repeat orders (NaN without any)."""
    return (
        features.column("orders") - 1,
        features.column("repeat_span_days"),
        features.column("tenure_days"),
        features.column("repeat_order_value"),
    )


def _bgnbd_fit_on(features: Features) -> clv.BgNbd | clv.BgNbdPointDropout:
    frequency, recency, age, _monetary = _clv_inputs(features)
    # Rows that share (x, t_x, T) to the hour are fitted once, with their count as weight.
    rows = np.column_stack([frequency, np.round(recency * 24), np.round(age * 24)])
    unique, counts = np.unique(rows, axis=0, return_counts=True)
    return clv.bgnbd_fit(unique[:, 0], unique[:, 1] / 24, unique[:, 2] / 24, weights=counts)


def _gamma_gamma_fit_on(features: Features) -> clv.GammaGamma:
    frequency, _recency, _age, monetary = _clv_inputs(features)
    repeat = (frequency > 0) & (monetary > 0)
    return clv.gamma_gamma_fit(frequency[repeat], monetary[repeat])


def _holdout_quality(
    model: clv.BgNbd | clv.BgNbdPointDropout, holdout: Features, days: int
) -> dict[str, Any]:
    """Expected purchases in the `days` after the holdout date against the actual ones."""
    frequency, recency, age, _ = _clv_inputs(holdout)
    predicted = clv.bgnbd_expected_purchases(model, days, frequency, recency, age)
    actual = holdout.column("future_orders")
    order = np.argsort(predicted, kind="stable")
    deciles = [
        {
            "predicted": round(float(predicted[part].mean()), 4),
            "observed": round(float(actual[part].mean()), 4),
        }
        for part in np.array_split(order, HOLDOUT_DECILES)
        if len(part)
    ]
    return {
        "holdout_days": days,
        "customers": len(actual),
        "predicted_purchases": round(float(predicted.sum()), 1),
        "actual_purchases": int(actual.sum()),
        "mean_absolute_error": round(float(np.abs(predicted - actual).mean()), 4),
        "correlation": round(float(np.corrcoef(predicted, actual)[0, 1]), 4)
        if actual.std() > 0 and predicted.std() > 0
        else None,
        "calibration": deciles,
    }


def _fit_lifetime_value(*, as_of: date, now: Features, holdout: Features, trigger: str) -> ModelFit:
    horizon = settings.PREDICTIVE_CHURN_HORIZON_DAYS
    with _fit_record(ModelName.LIFETIME_VALUE, as_of=as_of, trigger=trigger) as fit:
        if _has_too_few_buyers(fit, holdout):
            return fit
        if not (now.column("orders") > 1).any():
            _not_fitted(fit, REASON_NO_REPEAT_BUYERS)
            return fit
        try:
            holdout_bgnbd = _bgnbd_fit_on(holdout)
            bgnbd, gamma_gamma = _bgnbd_fit_on(now), _gamma_gamma_fit_on(now)
        except clv.FitError as error:
            fit.status = ModelFitStatus.FAILED
            fit.reason = REASON_NOT_IDENTIFIED
            fit.metrics = {"reason_numbers": {"error": str(error)}}
            return fit
        fit.status = ModelFitStatus.FITTED
        fit.training_start = as_of - timedelta(days=int(now.column("tenure_days").max()))
        fit.training_end = as_of
        fit.features = ["repeat_purchases", "recency_days", "age_days", "repeat_order_value"]
        fit.training_rows = len(now)
        fit.parameters = {
            "bgnbd": vars(bgnbd),
            "gamma_gamma": vars(gamma_gamma),
            "time_unit": "day",
            "horizon_months": settings.PREDICTIVE_CLV_HORIZON_MONTHS,
            "annual_discount": settings.PREDICTIVE_CLV_ANNUAL_DISCOUNT,
        }
        fit.metrics = {
            "holdout": _holdout_quality(holdout_bgnbd, holdout, horizon),
            "holdout_parameters": vars(holdout_bgnbd),
        }
    return fit


def _fit_churn(
    *, as_of: date, train: Features, test: Features, history_days: int, trigger: str
) -> ModelFit:
    horizon = settings.PREDICTIVE_CHURN_HORIZON_DAYS
    minimum_days = max(settings.PREDICTIVE_MIN_HISTORY_DAYS, 2 * horizon)
    with _fit_record(ModelName.CHURN_RISK, as_of=as_of, trigger=trigger) as fit:
        if history_days < minimum_days:
            _not_fitted(fit, REASON_TOO_LITTLE_HISTORY, days=history_days, minimum=minimum_days)
            return fit
        if _has_too_few_buyers(fit, train):
            return fit
        for features in (train, test):
            if len(np.unique(churn.churn_labels(features))) < 2:
                _not_fitted(fit, REASON_ONE_OUTCOME, cutoff=features.as_of)
                return fit
        result = churn.churn_fit(
            train, test, seed=settings.PREDICTIVE_SEED, max_rows=settings.PREDICTIVE_TRAINING_ROWS
        )
        fit.training_start = as_of - timedelta(days=history_days)
        fit.training_end = test.as_of
        fit.features = list(churn.FEATURES)
        fit.training_rows = result.training_rows
        fit.parameters = {
            "horizon_days": horizon,
            "training_cutoff": train.as_of.isoformat(),
            "test_cutoff": test.as_of.isoformat(),
            "estimator": "HistGradientBoostingClassifier",
            "sklearn_version": sklearn.__version__,
            "iterations": int(result.estimator.n_iter_),
        }
        fit.metrics = result.metrics()
        if not result.beats_baseline:
            fit.status = ModelFitStatus.FAILED
            fit.reason = REASON_BELOW_BASELINE
            fit.metrics["reason_numbers"] = {
                "model": result.model.roc_auc,
                "baseline": result.recency_baseline.roc_auc,
            }
            return fit
        fit.status = ModelFitStatus.FITTED
        fit.artifact, fit.artifact_signature = churn.estimator_dump(result.estimator)
    return fit


def _fit_clusters(*, as_of: date, now: Features, categories: list[str], trigger: str) -> ModelFit:
    with _fit_record(ModelName.BEHAVIOUR_CLUSTERS, as_of=as_of, trigger=trigger) as fit:
        if _has_too_few_buyers(fit, now):
            return fit
        names = clusters.cluster_feature_names(categories)
        result = clusters.clusters_fit(
            clusters.cluster_matrix(now, categories),
            names=names,
            categories=categories,
            k_range=range(settings.PREDICTIVE_CLUSTERS_MIN, settings.PREDICTIVE_CLUSTERS_MAX + 1),
            seed=settings.PREDICTIVE_SEED,
            max_rows=settings.PREDICTIVE_TRAINING_ROWS,
        )
        fit.status = ModelFitStatus.FITTED
        fit.training_start = as_of - timedelta(days=int(now.column("tenure_days").max()))
        fit.training_end = as_of
        fit.features = names
        fit.training_rows = result.training_rows
        fit.parameters = {**result.parameters(), "categories": categories}
        fit.metrics = {"silhouette": {str(k): s for k, s in result.silhouettes.items()}}
    return fit


def scoring_date() -> date:
    """The business date models are fitted and customers scored as of by default: the last
    complete day (a day not over yet would cut its label periods and recency short)."""
    return timezone.localdate() - timedelta(days=1)


def models_fit(
    *,
    trigger: str,
    as_of: date | None = None,
    wait: bool = True,
    progress: Progress | None = None,
    on_wait: Callable[[], None] | None = None,
) -> list[ModelFit]:
    """Fit every model as of `as_of` (default: `scoring_date()`), then score every buyer with
    the fits in use, unless those are as of a later date than `as_of` (a backfill or an audit:
    its fits are recorded, never used for scoring). Returns the new fits (each fitted, or
    saying why not)."""
    as_of = as_of or scoring_date()
    say = progress or (lambda _step: None)
    horizon = settings.PREDICTIVE_CHURN_HORIZON_DAYS
    with session_lock(Lock.PREDICT, wait=wait, on_wait=on_wait) as obtained:
        if not obtained:
            raise FitSkipped
        _reset_interrupted_fits()
        say("features")
        categories = top_categories(as_of=as_of, limit=CLUSTER_CATEGORIES)
        now = features_as_of(as_of, categories=categories)
        holdout = features_as_of(as_of - timedelta(days=horizon), label_days=horizon)
        train = features_as_of(as_of - timedelta(days=2 * horizon), label_days=horizon)
        history_days = int(now.column("tenure_days").max()) if len(now) else 0
        say(ModelName.LIFETIME_VALUE)
        fits = [_fit_lifetime_value(as_of=as_of, now=now, holdout=holdout, trigger=trigger)]
        say(ModelName.CHURN_RISK)
        fits.append(
            _fit_churn(
                as_of=as_of, train=train, test=holdout, history_days=history_days, trigger=trigger
            )
        )
        say(ModelName.BEHAVIOUR_CLUSTERS)
        fits.append(_fit_clusters(as_of=as_of, now=now, categories=categories, trigger=trigger))
        in_use = _latest_fits()
        if not in_use or as_of < max(fit.as_of for fit in in_use.values()):
            return fits  # a backfill: the fits in use are as of a later date
        say("scores")
        clustering = in_use.get(ModelName.BEHAVIOUR_CLUSTERS)
        if clustering is not None and clustering.parameters["categories"] != categories:
            # An older clustering is in use (this run's was not fitted): its own categories.
            now = features_as_of(as_of, categories=clustering.parameters["categories"])
        _score(now, in_use)
        for fit in fits:
            fit.refresh_from_db(fields=["scored_at", "scored_customers"])
    return fits


def _reset_interrupted_fits() -> None:
    """Fits still marked running while this process holds the lock died on the way."""
    ModelFit.objects.filter(status=ModelFitStatus.RUNNING).update(
        status=ModelFitStatus.FAILED, reason=REASON_INTERRUPTED, finished_at=timezone.now()
    )


# --- scoring ---------------------------------------------------------------------------------


def _latest_fits() -> dict[str, ModelFit]:
    """The fit of each model customers are scored with: the fitted one as of the latest date,
    the latest version of those (a backfill's fits, as of an earlier date, never are)."""
    fits = (
        ModelFit.objects.filter(status=ModelFitStatus.FITTED)
        .order_by("name", "-as_of", "-version")
        .distinct("name")
    )
    return {fit.name: fit for fit in fits}


def _lifetime_value_scores(fit: ModelFit, features: Features) -> tuple[np.ndarray, ...]:
    parameters = fit.parameters
    bgnbd = clv.bgnbd_from_json(parameters["bgnbd"])
    gamma_gamma = clv.GammaGamma(**parameters["gamma_gamma"])
    frequency, recency, age, monetary = _clv_inputs(features)
    months = int(parameters["horizon_months"])
    monthly_discount = (1 + float(parameters["annual_discount"])) ** (1 / 12) - 1
    value = clv.lifetime_value(
        bgnbd,
        gamma_gamma,
        frequency,
        recency,
        age,
        # One-order customers have no repeat orders to average (NaN): the model gives them the
        # population's expected spend whatever this says.
        np.where(frequency > 0, np.nan_to_num(np.maximum(monetary, 0)), 0.0),
        horizon=months * DAYS_PER_MONTH,
        periods=months,
        discount_rate=monthly_discount,
    )
    purchases = clv.bgnbd_expected_purchases(
        bgnbd, months * DAYS_PER_MONTH, frequency, recency, age
    )
    alive = clv.bgnbd_probability_alive(bgnbd, frequency, recency, age)
    return value, purchases, alive


def _churn_estimator(fit: ModelFit) -> Any:
    """The fit's classifier, or None (logged) if it cannot be loaded: its bytes no longer match
    their signature (the secret key changed) or another scikit-learn version made them. Churn
    risk is then left empty until the next fit; the other models still score."""
    if fit.parameters.get("sklearn_version") != sklearn.__version__:
        logger.warning("churn_model.version_mismatch", extra={"fit_id": fit.pk})
        return None
    try:
        return churn.estimator_load(bytes(fit.artifact or b""), fit.artifact_signature)
    except ValueError:
        logger.warning("churn_model.unloadable", extra={"fit_id": fit.pk})
        return None


def _score(features: Features, fits: dict[str, ModelFit]) -> ScoreOutcome:
    """Score every buyer of `features` with `fits` and write the changed rows."""
    started = time.monotonic()
    count = len(features)
    scores = np.full((count, len(_SCORE_COLUMNS)), np.nan)
    if ModelName.LIFETIME_VALUE in fits and count:
        value, purchases, alive = _lifetime_value_scores(fits[ModelName.LIFETIME_VALUE], features)
        scores[:, 0], scores[:, 1], scores[:, 2] = value, purchases, alive
    used = dict(fits)
    if ModelName.CHURN_RISK in fits and count:
        estimator = _churn_estimator(fits[ModelName.CHURN_RISK])
        if estimator is None:
            del used[ModelName.CHURN_RISK]  # not scored with: its figures stay as they were
        else:
            scores[:, 3] = churn.churn_score(estimator, features)
    if ModelName.BEHAVIOUR_CLUSTERS in fits and count:
        parameters = fits[ModelName.BEHAVIOUR_CLUSTERS].parameters
        x = clusters.cluster_matrix(features, parameters["categories"])
        scores[:, 4] = clusters.clusters_assign(parameters, x)
    scores[~np.isfinite(scores)] = np.nan  # written as NULL: no value rather than a wrong one
    changed = _write_scores(features.customer_ids, scores)
    scored_at = timezone.now()
    ModelFit.objects.filter(pk__in=[fit.pk for fit in used.values()]).update(
        scored_at=scored_at, scored_customers=count
    )
    outcome = ScoreOutcome(
        customers=count, rows_changed=changed, seconds=round(time.monotonic() - started, 3)
    )
    logger.info(
        "predictions.scored",
        extra={"customers": count, "rows_changed": changed, "seconds": outcome.seconds},
    )
    return outcome


def _write_scores(ids: np.ndarray, scores: np.ndarray) -> int:
    """Upsert the scores in id-range batches (one transaction each); delete the rows of
    customers in no batch (no longer buyers). Returns the rows written or deleted."""
    changed = 0
    scored_at = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS segments_work_scores")
        cursor.execute(
            "CREATE TEMPORARY TABLE segments_work_scores (customer_id int8 PRIMARY KEY, "
            + ", ".join(f"{c} float8" for c in _SCORE_COLUMNS)
            + ")"
        )
    try:
        starts = range(0, max(len(ids), 1), SCORE_BATCH)
        for index, start in enumerate(starts):
            part = slice(start, start + SCORE_BATCH)
            after = int(ids[start - 1]) if start else -1
            upto = int(ids[part][-1]) if index < len(starts) - 1 else 2**63 - 1
            with transaction.atomic(), connection.cursor() as cursor:
                # No customer is merged away or deleted while the batch is written (the
                # predictions' customer_id has no foreign key): removals wait, or are seen.
                customers_removal_lock(exclusive=False)
                cursor.execute("TRUNCATE segments_work_scores")
                copy_in(
                    "segments_work_scores",
                    ("customer_id", *_SCORE_COLUMNS),
                    ids[part],
                    scores[part],
                )
                cursor.execute(_UPSERT_SQL, {"scored_at": scored_at})
                changed += cursor.rowcount
                cursor.execute(_DELETE_STALE_SQL, {"after": after, "upto": upto})
                changed += cursor.rowcount
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS segments_work_scores")
    return changed


def predictions_score(
    *,
    as_of: date | None = None,
    wait: bool = True,
    on_wait: Callable[[], None] | None = None,
) -> ScoreOutcome:
    """Score every buyer as of `as_of` (default: `scoring_date()`) with the fit of each model in
    use. Raises NothingFitted when no model has been fitted yet."""
    as_of = as_of or scoring_date()
    with session_lock(Lock.PREDICT, wait=wait, on_wait=on_wait) as obtained:
        if not obtained:
            raise FitSkipped
        _reset_interrupted_fits()
        fits = _latest_fits()
        if not fits:
            raise NothingFitted
        categories = None
        if ModelName.BEHAVIOUR_CLUSTERS in fits:
            categories = fits[ModelName.BEHAVIOUR_CLUSTERS].parameters["categories"]
        return _score(features_as_of(as_of, categories=categories), fits)
