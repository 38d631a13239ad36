"""The page of a model fit: its quality against the baselines, a calibration chart, and the
clusters of a behaviour clustering, from the metrics and parameters the fit recorded."""

from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from segments.models import ModelFit, ModelFitStatus, ModelName
from segments.presenters.charts import calibration_chart, cluster_chart
from segments.selectors import cluster_descriptions, model_fit_in_use


def fit_quality(fit: ModelFit) -> dict[str, Any]:
    """What the fit page shows under its fields: quality rows, a chart, the clusters."""
    metrics = fit.metrics
    if fit.name == ModelName.CHURN_RISK and "model" in metrics:
        rows = [
            (label, metrics[key]["roc_auc"], metrics[key]["brier"])
            for key, label in (
                ("model", _("Gradient boosting (this model)")),
                ("logistic_baseline", _("Logistic regression baseline")),
                ("recency_baseline", _("Recency-only baseline")),
            )
        ]
        chart = calibration_chart(
            title=gettext("Calibration on the held-out period"),
            x_label=gettext("predicted churn risk"),
            y_label=gettext("observed churn"),
            series=[
                (gettext("this model"), "model", metrics["model"]["calibration"]),
                (gettext("recency only"), "baseline", metrics["recency_baseline"]["calibration"]),
            ],
        )
        return {"churn_rows": rows, "chart": chart}
    if fit.name == ModelName.LIFETIME_VALUE and "holdout" in metrics:
        holdout = metrics["holdout"]
        chart = calibration_chart(
            title=gettext("Expected against actual purchases in the held-out period, by decile"),
            x_label=gettext("expected purchases"),
            y_label=gettext("actual purchases"),
            series=[(gettext("this model"), "model", holdout["calibration"])],
        )
        return {"holdout": holdout, "chart": chart}
    if fit.name == ModelName.BEHAVIOUR_CLUSTERS and fit.status == ModelFitStatus.FITTED:
        descriptions = cluster_descriptions(fit)
        in_use = model_fit_in_use(ModelName.BEHAVIOUR_CLUSTERS)
        clusters = [
            {**cluster, "description": descriptions.get(cluster["number"], "")}
            for cluster in fit.parameters.get("clusters", [])
        ]
        return {
            "clusters": clusters,
            "cluster_chart": cluster_chart(clusters),
            "categories": fit.parameters.get("categories", []),
            "silhouette": sorted(metrics.get("silhouette", {}).items(), key=lambda i: int(i[0])),
            "clusters_in_use": in_use is not None and in_use.pk == fit.pk,
        }
    return {}
