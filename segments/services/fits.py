"""What operators and tools see of the model fits without loading the models: why a fit
learnt nothing, and the queueing of a fit. Kept apart from segments.services.predictions so
that the web processes (admin, API) never import scikit-learn or scipy."""

from datetime import date

from django.utils.translation import gettext as _

from segments import enqueue
from segments.models import ModelFit

# Why a model was not fitted: codes stored in ModelFit.reason, described by `fit_reason`.
REASON_TOO_FEW_BUYERS = "too_few_buyers"
REASON_TOO_LITTLE_HISTORY = "too_little_history"
REASON_ONE_OUTCOME = "one_outcome"
REASON_NO_REPEAT_BUYERS = "no_repeat_buyers"
REASON_BELOW_BASELINE = "below_baseline"
REASON_NOT_IDENTIFIED = "not_identified"
REASON_ERROR = "error"
REASON_INTERRUPTED = "interrupted"


def fit_reason(fit: ModelFit) -> str:
    """Why `fit` learnt nothing, in the operator's language ("" for a fitted model)."""
    numbers = fit.metrics
    texts = {
        REASON_TOO_FEW_BUYERS: _(
            "Only %(buyers)s buyers as of %(cutoff)s; at least %(minimum)s are needed."
        ),
        REASON_TOO_LITTLE_HISTORY: _(
            "Only %(days)s days of order history; at least %(minimum)s are needed."
        ),
        REASON_ONE_OUTCOME: _(
            "Every buyer as of %(cutoff)s had the same outcome; there is nothing to learn."
        ),
        REASON_NO_REPEAT_BUYERS: _("No buyer has ordered twice yet."),
        REASON_BELOW_BASELINE: _(
            "The model (ROC AUC %(model)s) did not beat the recency-only baseline "
            "(%(baseline)s); the previous version stays in use."
        ),
        REASON_NOT_IDENTIFIED: _("The data do not determine the model: %(error)s"),
        REASON_ERROR: _("The fit failed: %(error)s"),
        REASON_INTERRUPTED: _("The process stopped before the fit finished."),
    }
    if fit.reason not in texts:
        return ""
    try:
        return texts[fit.reason] % numbers.get("reason_numbers", {})
    except (KeyError, TypeError, ValueError):
        return texts[fit.reason]


def models_fit_enqueue(*, trigger: str, as_of: date | None = None) -> None:
    """Queue a fit of every model once the caller's transaction commits (admin, API). It
    skips, and says so in the log, if a fit or scoring is running then: requests do not pile
    up behind one another."""
    enqueue.models_fit(trigger=trigger, as_of=as_of, wait=False)
