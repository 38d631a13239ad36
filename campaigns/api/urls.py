"""Campaign routes of the integration API v1."""

from django.urls import path

from campaigns.api import frequency_rules

urlpatterns = [
    path(
        "frequency-rules",
        frequency_rules.FrequencyRuleListView.as_view(),
        name="frequency-rule-list",
    ),
    path(
        "frequency-rules/<int:rule_id>",
        frequency_rules.FrequencyRuleDetailView.as_view(),
        name="frequency-rule-detail",
    ),
]
