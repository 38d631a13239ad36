"""Campaign routes of the integration API v1."""

from django.urls import path

from campaigns.api import campaigns, deliveries, frequency_rules

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
    path("campaigns", campaigns.CampaignListView.as_view(), name="campaign-list"),
    path(
        "campaigns/<int:campaign_id>",
        campaigns.CampaignDetailView.as_view(),
        name="campaign-detail",
    ),
    path(
        "campaigns/<int:campaign_id>/launch",
        campaigns.CampaignLaunchView.as_view(),
        name="campaign-launch",
    ),
    path(
        "campaigns/<int:campaign_id>/pause",
        campaigns.CampaignPauseView.as_view(),
        name="campaign-pause",
    ),
    path(
        "campaigns/<int:campaign_id>/resume",
        campaigns.CampaignResumeView.as_view(),
        name="campaign-resume",
    ),
    path(
        "campaigns/<int:campaign_id>/cancel",
        campaigns.CampaignCancelView.as_view(),
        name="campaign-cancel",
    ),
    path(
        "campaigns/<int:campaign_id>/rotate-webhook-secret",
        campaigns.CampaignWebhookSecretRotateView.as_view(),
        name="campaign-rotate-webhook-secret",
    ),
    path(
        "campaigns/<int:campaign_id>/dry-run",
        campaigns.CampaignDryRunView.as_view(),
        name="campaign-dry-run",
    ),
    path(
        "campaigns/<int:campaign_id>/report",
        campaigns.CampaignReportView.as_view(),
        name="campaign-report",
    ),
    path(
        "campaigns/<int:campaign_id>/deliveries",
        deliveries.CampaignDeliveryListView.as_view(),
        name="campaign-deliveries",
    ),
    # Beside crm's customers/<id> and segments' customers/<id>/segments: the campaigns'
    # part of a customer.
    path(
        "customers/<int:customer_id>/deliveries",
        deliveries.CustomerDeliveryListView.as_view(),
        name="customer-deliveries",
    ),
]
