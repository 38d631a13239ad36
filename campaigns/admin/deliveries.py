"""The ledger, read-only: the deliveries (one per campaign, customer and step) and the calls
made to the channels. Written by the send pipeline only."""

from typing import Any

from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.models import ChannelSend, Delivery
from core.admin import ReadOnlyAdmin
from crm.admin_scoping import CustomerScopedAdmin
from crm.models import Customer


class LedgerAdmin(ReadOnlyAdmin):
    """Written by the send pipeline only; kept whole, since the frequency caps and the
    conversion reports count it."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _customer_link(customer_id: int, name: str | None) -> str:
    """The customer's name (their number when they have none) linked to their page."""
    url = reverse("admin:crm_customer_change", args=[customer_id])
    return format_html('<a href="{}">{}</a>', url, name or f"#{customer_id}")


@admin.register(Delivery)
class DeliveryAdmin(CustomerScopedAdmin, LedgerAdmin):
    list_display = [
        "id",
        "campaign",
        "customer_link",
        "step_number",
        "variant",
        "is_holdout",
        "status",
        "reason",
        "due_at",
        "reserved_at",
        "sent_at",
        "attempts",
    ]
    list_filter = ["status", "reason", "is_holdout", "campaign"]
    list_select_related = ["campaign", "variant"]
    number_search_fields = ("customer_id",)
    search_help_text = _("Customer id.")
    ordering = ["-id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        # The name by a subquery, not a join: a delivery outlives no customer, but the table
        # keeps no constraint to say so, and a join would hide a row that did.
        name = Customer.objects.filter(pk=OuterRef("customer_id")).values("display_name")[:1]
        return super().get_queryset(request).annotate(customer_name=Subquery(name))

    # Not named `customer`: the admin would show the field, reading each row's customer.
    @admin.display(description=_("customer"), ordering="customer_id")
    def customer_link(self, delivery: Any) -> str:
        return _customer_link(delivery.customer_id, delivery.customer_name)

    @admin.display(description=_("step"), ordering="step")
    def step_number(self, delivery: Delivery) -> str:
        return gettext("Step %(number)d") % {"number": delivery.step + 1}


@admin.register(ChannelSend)
class ChannelSendAdmin(LedgerAdmin):
    list_display = [
        "id",
        "campaign",
        "channel",
        "sender",
        "state",
        "external_id",
        "attempts",
        "requested_at",
        "answered_at",
        "error",
    ]
    list_filter = ["state", "channel"]
    list_select_related = ["campaign", "sender"]
    search_fields = ["=external_id"]
    ordering = ["-id"]
