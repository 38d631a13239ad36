"""Fitting and scoring the predictive models on PostgreSQL: every buyer scored, a re-run that
writes nothing, seeded fits that are identical, the too-little-data path, features that never
read the future, and the models everywhere operators and tools look (rule fields, the
customer lookup, the API, the admin, the command)."""

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import numpy as np
import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation
from rest_framework.test import APIClient

from core.errors import Conflict
from core.locks import Lock, session_lock
from crm.models import Customer, Order, OrderStatus
from devstack.demo import generate
from segments.models import (
    CustomerPrediction,
    ModelFit,
    ModelFitStatus,
    ModelName,
    Segment,
    SegmentKind,
)
from segments.predictive import churn
from segments.predictive.features import features_as_of
from segments.services import predictions
from segments.services.fits import (
    REASON_TOO_FEW_BUYERS,
    REASON_TOO_LITTLE_HISTORY,
    fit_reason,
)
from segments.services.predictions import (
    FitSkipped,
    NothingFitted,
    models_fit,
    predictions_score,
)
from segments.services.segments import segment_from_cluster, segment_preview
from tests.factories import CustomerFactory, GroupMembershipFactory, ModelFitFactory
from tests.segments.recompute_support import AS_OF, at, order
from tests.support import json_script_data

pytestmark = pytest.mark.django_db

Client_ = Callable[..., APIClient]
MODELS = [ModelName.LIFETIME_VALUE, ModelName.CHURN_RISK, ModelName.BEHAVIOUR_CLUSTERS]


def _buyer_ids() -> set[int]:
    """Customers who paid an order up to the end of AS_OF, whatever became of it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT customer_id FROM crm_order WHERE paid_at < %s",
            [at(AS_OF + timedelta(days=1), 0)],
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture(autouse=True)
def the_day_after_as_of() -> Iterator[None]:
    """Today is the day after AS_OF, so AS_OF is the last complete day: the scoring date."""
    with time_machine.travel(at(AS_OF + timedelta(days=1), 9), tick=True):
        yield


@pytest.fixture
def fitted() -> dict[str, ModelFit]:
    generate(customers=2000, seed=11, orders_per_customer=8, as_of=AS_OF, progress=False)
    fits = models_fit(trigger="test", as_of=AS_OF)
    return {fit.name: fit for fit in fits}


def test_fit_learns_every_model_and_scores_every_buyer(fitted: dict[str, ModelFit]) -> None:
    assert [fitted[name].status for name in MODELS] == [ModelFitStatus.FITTED] * 3
    assert all(fitted[name].version == 1 for name in MODELS)
    buyers = _buyer_ids()
    assert set(CustomerPrediction.objects.values_list("customer_id", flat=True)) == buyers
    predictions = CustomerPrediction.objects.all()
    k = fitted[ModelName.BEHAVIOUR_CLUSTERS].parameters["k"]
    for prediction in predictions:
        assert prediction.predicted_value is not None and prediction.predicted_value >= 0
        assert prediction.expected_purchases is not None and prediction.expected_purchases >= 0
        assert prediction.p_alive is not None and 0 <= prediction.p_alive <= 1
        assert prediction.churn_risk is not None and 0 <= prediction.churn_risk <= 1
        assert prediction.cluster is not None and 1 <= prediction.cluster <= k
    churn = fitted[ModelName.CHURN_RISK]
    assert churn.metrics["beats_baseline"] is True
    assert churn.metrics["model"]["roc_auc"] > churn.metrics["recency_baseline"]["roc_auc"]
    assert churn.training_end == AS_OF - timedelta(days=90)
    assert churn.training_start is not None
    assert churn.training_start < AS_OF - timedelta(days=180)  # the history before the cutoff
    assert churn.parameters["training_cutoff"] == (AS_OF - timedelta(days=180)).isoformat()
    value = fitted[ModelName.LIFETIME_VALUE]
    # The demo's customers drop out with nearly one probability: BG/NBD's point-dropout limit.
    assert set(value.parameters["bgnbd"]) in ({"r", "alpha", "a", "b"}, {"r", "alpha", "p"})
    assert set(value.parameters["gamma_gamma"]) == {"p", "q", "gamma"}
    assert value.metrics["holdout"]["customers"] > 500
    clustering = fitted[ModelName.BEHAVIOUR_CLUSTERS]
    sizes = [c["size"] for c in clustering.parameters["clusters"]]
    assert sum(sizes) == len(buyers) and sizes == sorted(sizes, reverse=True)
    assert all(f.scored_customers == len(buyers) for f in ModelFit.objects.all())


def test_scoring_unchanged_data_again_writes_nothing(fitted: dict[str, ModelFit]) -> None:
    before = list(CustomerPrediction.objects.order_by("pk").values())
    outcome = predictions_score(as_of=AS_OF)
    assert (outcome.customers, outcome.rows_changed) == (len(before), 0)
    assert list(CustomerPrediction.objects.order_by("pk").values()) == before


def test_fits_with_the_same_seed_and_data_are_identical(fitted: dict[str, ModelFit]) -> None:
    again = {fit.name: fit for fit in models_fit(trigger="test", as_of=AS_OF)}
    for name in MODELS:
        assert again[name].version == 2
        assert again[name].parameters == fitted[name].parameters
        assert again[name].metrics == fitted[name].metrics
    assert bytes(again[ModelName.CHURN_RISK].artifact or b"") == bytes(
        fitted[ModelName.CHURN_RISK].artifact or b""
    )


def test_scoring_in_small_batches_writes_each_row_once_and_drops_non_buyers(
    fitted: dict[str, ModelFit], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(predictions, "SCORE_BATCH", 97)
    before = dict(CustomerPrediction.objects.values_list("customer_id", "churn_risk"))
    assert predictions_score().rows_changed == 0  # batch edges neither drop nor repeat rows
    ids = sorted(before)
    # Customers at a batch's first and last place, and the very last: their orders turn out
    # never to have been paid (a corrected order), so they are not buyers any more.
    gone = [ids[97], ids[193], ids[-1]]
    Order.objects.filter(customer_id__in=gone).update(paid_at=None, status=OrderStatus.CANCELLED)
    outcome = predictions_score()
    assert outcome.rows_changed >= 3
    after = dict(CustomerPrediction.objects.values_list("customer_id", "churn_risk"))
    assert set(after) == set(before) - set(gone)


def test_a_backfill_is_recorded_but_never_scores(fitted: dict[str, ModelFit]) -> None:
    before = list(CustomerPrediction.objects.order_by("pk").values())
    backfill = {
        fit.name: fit for fit in models_fit(trigger="test", as_of=AS_OF - timedelta(days=30))
    }
    assert [backfill[name].version for name in MODELS] == [2, 2, 2]
    assert all(backfill[name].scored_at is None for name in MODELS)
    assert list(CustomerPrediction.objects.order_by("pk").values()) == before
    predictions_score()  # the nightly scoring keeps using the fits as of the latest date
    assert list(CustomerPrediction.objects.order_by("pk").values()) == before
    assert {f.name for f in ModelFit.objects.filter(scored_at__isnull=False, version=1)} == set(
        MODELS
    )


def test_a_churn_model_below_the_baseline_leaves_the_previous_one_in_use(
    fitted: dict[str, ModelFit], monkeypatch: pytest.MonkeyPatch
) -> None:
    risks = dict(CustomerPrediction.objects.values_list("customer_id", "churn_risk"))
    monkeypatch.setattr(churn.ChurnFit, "beats_baseline", property(lambda self: False))
    again = {fit.name: fit for fit in models_fit(trigger="test", as_of=AS_OF)}
    refused = again[ModelName.CHURN_RISK]
    assert (refused.status, refused.reason) == (ModelFitStatus.FAILED, "below_baseline")
    assert not refused.artifact
    assert dict(CustomerPrediction.objects.values_list("customer_id", "churn_risk")) == risks
    assert ModelFit.objects.get(name=ModelName.CHURN_RISK, version=1).scored_at is not None
    with translation.override("zh-hans"):
        assert "未胜过仅按最近购买的基线" in fit_reason(refused)


def test_a_fit_while_another_holds_the_lock_is_skipped_or_waits(
    fitted: dict[str, ModelFit],
) -> None:
    holder = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with session_lock(Lock.PREDICT):
            holder.set()
            release.wait(30)
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holder.wait(10)
        with pytest.raises(FitSkipped):
            models_fit(trigger="test", as_of=AS_OF, wait=False)
        with pytest.raises(FitSkipped):
            predictions_score(wait=False)
        with pytest.raises(Conflict):
            segment_from_cluster(
                fit_id=fitted[ModelName.BEHAVIOUR_CLUSTERS].pk, number=1, name="x", actor="t"
            )
    finally:
        release.set()
        thread.join()
    assert ModelFit.objects.count() == 3  # nothing was recorded by the skipped fit
    assert predictions_score(wait=False).rows_changed == 0


def test_too_little_data_fits_nothing_and_says_why(api_client_with_scopes: Client_) -> None:
    for index in range(30):
        order(CustomerFactory(), days_ago=10 + index)
    fits = {fit.name: fit for fit in models_fit(trigger="test", as_of=AS_OF)}
    assert [fits[name].status for name in MODELS] == [ModelFitStatus.INSUFFICIENT_DATA] * 3
    assert fits[ModelName.CHURN_RISK].reason == REASON_TOO_LITTLE_HISTORY
    assert fits[ModelName.LIFETIME_VALUE].reason == REASON_TOO_FEW_BUYERS
    assert not CustomerPrediction.objects.exists()
    with pytest.raises(NothingFitted):
        predictions_score(as_of=AS_OF)
    client = api_client_with_scopes("segments")
    body = client.get("/api/v1/models/churn_risk/latest", HTTP_ACCEPT_LANGUAGE="en").json()
    assert (body["status"], body["reason_code"]) == ("insufficient_data", "too_little_history")
    assert body["reason"] == "Only 39 days of order history; at least 180 are needed."
    body = client.get("/api/v1/models/lifetime_value/latest", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "至少需要 500" in body.json()["reason"]


def test_features_never_read_past_the_as_of_date() -> None:
    customer = CustomerFactory()
    order(customer, days_ago=30, amount="100.00")
    refunded_later = order(customer, days_ago=10, amount="50.00")
    stay = GroupMembershipFactory(customer=customer, joined_at=at(AS_OF - timedelta(days=40)))
    before = features_as_of(AS_OF, label_days=90)
    # After the as-of date: another order, a refund of an order paid before, a group left.
    order(customer, days_ago=-5, amount="900.00")
    refunded_later.status, refunded_later.refunded_amount = OrderStatus.REFUNDED, Decimal(50)
    refunded_later.save()
    stay.left_at = at(AS_OF + timedelta(days=3))
    stay.save()
    after = features_as_of(AS_OF, label_days=90)
    changed = [
        name
        for name in before.columns
        if not np.array_equal(before.column(name), after.column(name), equal_nan=True)
    ]
    assert changed == ["future_orders"]
    assert (after.column("orders")[0], after.column("spend")[0]) == (2, 150)
    assert after.column("groups")[0] == 1
    assert after.column("recency_days")[0] == pytest.approx(10.5)  # orders at noon
    assert after.column("avg_gap_days")[0] == pytest.approx(20)
    assert after.column("repeat_order_value")[0] == 50  # the orders after the first
    assert features_as_of(AS_OF).column("future_orders")[0] == 0  # no label period asked


def test_predicted_fields_select_in_rules_and_the_lookup_shows_them(
    fitted: dict[str, ModelFit], api_client_with_scopes: Client_
) -> None:
    risky = CustomerPrediction.objects.filter(churn_risk__gte=Decimal("0.5")).count()
    preview = segment_preview(rule={"field": "churn_risk", "op": "gte", "value": 0.5})
    assert preview.size == risky > 0
    in_cluster = CustomerPrediction.objects.filter(cluster=1).count()
    assert segment_preview(rule={"field": "cluster", "op": "eq", "value": 1}).size == in_cluster
    never_paid = Customer.objects.count() - CustomerPrediction.objects.count()
    rule = {"field": "predicted_value", "op": "is_null", "value": True}
    assert segment_preview(rule=rule).size == never_paid > 0
    client = api_client_with_scopes("customers")
    prediction = CustomerPrediction.objects.order_by("pk").first()
    assert prediction is not None
    with CaptureQueriesContext(connection) as captured:
        body = client.get(f"/api/v1/customers/{prediction.customer_id}").json()
    # The lookup's own, the predictions row and its clustering; the rate limit's read and write;
    # the key's use this hour, one upsert of its counter in the cache table.
    assert len(captured) <= 17
    assert body["predictions"]["churn_risk"] == str(prediction.churn_risk)
    assert body["predictions"]["cluster"] == prediction.cluster
    assert body["predictions"]["cluster_description"]
    prospect = Customer.objects.exclude(pk__in=CustomerPrediction.objects.values("pk")).first()
    assert prospect is not None
    assert client.get(f"/api/v1/customers/{prospect.pk}").json()["predictions"] is None


def test_models_api_reports_fits_and_queues_a_fit(
    fitted: dict[str, ModelFit],
    api_client_with_scopes: Client_,
    django_capture_on_commit_callbacks: Callable,
) -> None:
    client = api_client_with_scopes("segments")
    listing = client.get("/api/v1/models").json()
    assert [(m["name"], m["scoring_version"]) for m in listing] == [(n, 1) for n in MODELS]
    assert listing[1]["latest"]["metrics"]["model"]["roc_auc"] > 0.5
    latest = client.get("/api/v1/models/behaviour_clusters/latest", HTTP_ACCEPT_LANGUAGE="en")
    clusters = latest.json()["parameters"]["clusters"]
    assert all(cluster["description"] for cluster in clusters)
    body = client.get("/api/v1/models/lifetime_value/latest").json()
    assert (body["version"], body["training_end"]) == (1, AS_OF.isoformat())
    assert body["parameters"]["bgnbd"] == fitted[ModelName.LIFETIME_VALUE].parameters["bgnbd"]
    versions = client.get("/api/v1/models/churn_risk/versions").json()
    assert [v["version"] for v in versions["results"]] == [1]
    assert client.get("/api/v1/models/nope/latest").status_code == 404
    with django_capture_on_commit_callbacks() as callbacks:
        queued = client.post("/api/v1/models/fit", {"as_of": "2026-06-01"}, format="json")
    assert (queued.status_code, len(callbacks)) == (202, 1)
    future = client.post("/api/v1/models/fit", {"as_of": "2999-01-01"}, format="json")
    assert future.status_code == 400 and "as_of" in future.json()["errors"]
    assert api_client_with_scopes("customers").get("/api/v1/models").status_code == 403


def test_admin_shows_quality_and_makes_a_segment_of_a_cluster(
    fitted: dict[str, ModelFit], admin_client_en: Client
) -> None:
    listing = admin_client_en.get(reverse("admin:segments_modelfit_changelist"))
    assert listing.status_code == 200 and b"Fit models now" in listing.content
    churn_page = admin_client_en.get(
        reverse("admin:segments_modelfit_change", args=[fitted[ModelName.CHURN_RISK].pk])
    )
    assert b"Recency-only baseline" in churn_page.content
    # The calibration chart's data (drawn by ECharts): the model and its recency baseline as
    # lines of (predicted, observed) per bin, on the whole 0-1 scale of a probability.
    churn_metrics = fitted[ModelName.CHURN_RISK].metrics
    calibration = json_script_data(churn_page, "calibration-chart-data")
    assert calibration["bound"] == 1.0
    assert [(s["name"], s["role"]) for s in calibration["series"]] == [
        ("this model", "model"),
        ("recency only", "baseline"),
    ]
    assert calibration["series"][1]["points"] == [
        [round(b["predicted"], 4), round(b["observed"], 4)]
        for b in churn_metrics["recency_baseline"]["calibration"]
    ]
    assert b"<polyline" not in churn_page.content and b"<circle" not in churn_page.content
    value_page = admin_client_en.get(
        reverse("admin:segments_modelfit_change", args=[fitted[ModelName.LIFETIME_VALUE].pk])
    )
    assert b"Purchases expected" in value_page.content
    clustering = fitted[ModelName.BEHAVIOUR_CLUSTERS]
    cluster_page = admin_client_en.get(
        reverse("admin:segments_modelfit_change", args=[clustering.pk])
    )
    assert b"Make a segment" in cluster_page.content
    # Clusters read as a table and a chart; the recorded JSON is folded away.
    clusters = clustering.parameters["clusters"]
    sizes = json_script_data(cluster_page, "cluster-chart-data")
    assert sizes["sizes"] == [c["size"] for c in clusters]
    assert sizes["shares"] == [round(c["share"] * 100, 1) for c in clusters]
    assert sizes["names"][0].startswith(f"#{clusters[0]['number']} ")
    folded = cluster_page.content.decode()
    details = folded.index("<details><summary>Show the recorded features and parameters (JSON)")
    assert folded.index("&quot;centroids&quot;") > details
    # The segment forms come after the admin's own form, not inside it.
    page = cluster_page.content
    main_form_end = page.index(b"</form>", page.index(b'id="modelfit_form"'))
    assert page.index(b"/clusters/1/segment/") > main_form_end
    response = admin_client_en.post(
        reverse("admin:segments_modelfit_cluster_segment", args=[clustering.pk, 2]),
        {"name": "cluster two"},
    )
    assert response.status_code == 302
    segment = Segment.objects.get(name="cluster two")
    assert segment.kind == SegmentKind.STATIC
    assert segment.member_count == CustomerPrediction.objects.filter(cluster=2).count() > 0
    scored = CustomerPrediction.objects.order_by("pk").values_list("pk", flat=True).first()
    customer_page = admin_client_en.get(reverse("admin:crm_customer_change", args=[scored]))
    assert b"churn risk" in customer_page.content.lower()


def test_a_cluster_of_a_clustering_not_in_use_cannot_become_a_segment(
    fitted: dict[str, ModelFit], admin_client_en: Client
) -> None:
    old = fitted[ModelName.BEHAVIOUR_CLUSTERS]
    models_fit(trigger="test", as_of=AS_OF)
    response = admin_client_en.post(
        reverse("admin:segments_modelfit_cluster_segment", args=[old.pk, 1]), {"name": "old"}
    )
    assert response.status_code == 302
    assert not Segment.objects.filter(name="old").exists()


def test_fit_models_command_says_what_it_does() -> None:
    generate(customers=1500, seed=3, orders_per_customer=4, as_of=AS_OF, progress=False)
    out = StringIO()
    call_command("fit_models", as_of=AS_OF, stdout=out)
    text = out.getvalue()
    assert "Fitting churn risk" in text and "Scoring every buyer" in text
    assert "lifetime_value v1: fitted" in text
    assert "behaviour_clusters v1: fitted" in text
    assert "Done in" in text
    again = StringIO()
    call_command("fit_models", if_never_fitted=True, stdout=again)
    assert "nothing to do" in again.getvalue()
    assert ModelFit.objects.filter(name=ModelName.CHURN_RISK).count() == 1


def test_an_interrupted_fit_is_marked_failed_by_the_next() -> None:
    stuck = ModelFitFactory(name=ModelName.CHURN_RISK, version=1, as_of=AS_OF)
    models_fit(trigger="test", as_of=AS_OF)
    stuck.refresh_from_db()
    assert (stuck.status, stuck.reason) == (ModelFitStatus.FAILED, "interrupted")
    assert ModelFit.objects.filter(name=ModelName.CHURN_RISK).latest("version").version == 2
