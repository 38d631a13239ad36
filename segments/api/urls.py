"""Segmentation routes of the integration API v1."""

from django.urls import path

from segments.api import models, scores, segments

urlpatterns = [
    path("policies/rfm", scores.RfmPolicyView.as_view(), name="policy-rfm"),
    path("policies/lifecycle", scores.LifecyclePolicyView.as_view(), name="policy-lifecycle"),
    path("stats/rfm-tiers", scores.RfmTierStatsView.as_view(), name="stats-rfm-tiers"),
    path("stats/lifecycle", scores.LifecycleStatsView.as_view(), name="stats-lifecycle"),
    path(
        "lifecycle-transitions",
        scores.TransitionFeedView.as_view(),
        name="lifecycle-transition-list",
    ),
    path("recompute", scores.RecomputeView.as_view(), name="recompute"),
    path("models", models.ModelListView.as_view(), name="model-list"),
    path("models/fit", models.ModelFitRequestView.as_view(), name="model-fit"),
    path("models/<str:name>/latest", models.ModelLatestView.as_view(), name="model-latest"),
    path("models/<str:name>/versions", models.ModelVersionsView.as_view(), name="model-versions"),
    path("segments", segments.SegmentListView.as_view(), name="segment-list"),
    path("segments/preview", segments.SegmentPreviewView.as_view(), name="segment-preview"),
    path("segments/portrait", segments.RulePortraitView.as_view(), name="segment-rule-portrait"),
    path("segments/<int:segment_id>", segments.SegmentDetailView.as_view(), name="segment-detail"),
    path(
        "segments/<int:segment_id>/portrait",
        segments.SegmentPortraitView.as_view(),
        name="segment-portrait",
    ),
    path(
        "segments/<int:segment_id>/refresh",
        segments.SegmentRefreshView.as_view(),
        name="segment-refresh",
    ),
    path(
        "segments/<int:segment_id>/members",
        segments.SegmentMembersView.as_view(),
        name="segment-members",
    ),
    path(
        "segments/<int:segment_id>/history",
        segments.SegmentHistoryView.as_view(),
        name="segment-history",
    ),
    path(
        "customers/<int:customer_id>/segments",
        segments.CustomerSegmentsView.as_view(),
        name="customer-segments",
    ),
]
