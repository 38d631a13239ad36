"""Segmentation routes of the integration API v1."""

from django.urls import path

from segments.api import scores

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
]
