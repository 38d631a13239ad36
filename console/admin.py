"""The customer page of the admin, composed here from the CRM's page and the sections the
other apps offer for it: segmentation's scores, lifecycle, predictions and segments (inlines)
and campaigns' recent deliveries (a read-only section). Registered once, from explicit imports,
so the page is the same whatever the order of INSTALLED_APPS."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from campaigns.admin import customers as campaigns_admin
from crm.admin import CustomerAdmin
from crm.models import Customer
from segments.admin import (
    CustomerMetricsInline,
    CustomerPredictionInline,
    CustomerSegmentInline,
    LifecycleTransitionInline,
)


@admin.register(Customer)
class CustomerPageAdmin(CustomerAdmin):
    # The list shows and filters by what segmentation computed: lifecycle state and RFM tier
    # (one row per customer in segments_customermetrics, joined in the page's one query).
    list_display = [*CustomerAdmin.list_display[:3], "lifecycle_state", "rfm_tier"]
    list_display += CustomerAdmin.list_display[3:]
    list_filter = [
        ("metrics__lifecycle_state", admin.ChoicesFieldListFilter),
        ("metrics__rfm_tier", admin.ChoicesFieldListFilter),
        *CustomerAdmin.list_filter,
    ]
    list_select_related = [*CustomerAdmin.list_select_related, "metrics"]
    inlines = [
        CustomerMetricsInline,
        CustomerPredictionInline,
        LifecycleTransitionInline,
        CustomerSegmentInline,
        *CustomerAdmin.inlines,
    ]
    readonly_fields = [*CustomerAdmin.readonly_fields, "recent_deliveries"]
    recent_deliveries = staticmethod(campaigns_admin.recent_deliveries)

    @admin.display(description=_("lifecycle state"), ordering="metrics__lifecycle_state")
    def lifecycle_state(self, customer: Customer) -> str:
        metrics = getattr(customer, "metrics", None)
        return metrics.get_lifecycle_state_display() if metrics else "-"

    @admin.display(description=_("RFM tier"), ordering="metrics__rfm_tier")
    def rfm_tier(self, customer: Customer) -> str:
        metrics = getattr(customer, "metrics", None)
        return metrics.get_rfm_tier_display() if metrics and metrics.rfm_tier else "-"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The deliveries have a section of their own (below), never the profile's.
        return [name for name in super().get_fields(request, obj) if name != "recent_deliveries"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        title = campaigns_admin.recent_deliveries_title()
        return [*fieldsets, (title, {"fields": ["recent_deliveries"]})]
