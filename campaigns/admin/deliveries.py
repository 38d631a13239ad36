"""The ledger, read-only: the deliveries (one per campaign, customer and step) and the calls
made to the channels. Written by the send pipeline only."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from campaigns.models import ChannelSend, Delivery
from core.admin import ReadOnlyAdmin


class LedgerAdmin(ReadOnlyAdmin):
    """Written by the send pipeline only; kept whole, since the frequency caps and the
    conversion reports count it."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _customer_link(customer_id: int) -> str:
    url = reverse("admin:crm_customer_change", args=[customer_id])
    return format_html('<a href="{}">{}</a>', url, customer_id)


@admin.register(Delivery)
class DeliveryAdmin(LedgerAdmin):
    list_display = [
        "id",
        "campaign",
        "customer_link",
        "step",
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

    # Not named `customer`: the admin would show the field, reading each row's customer.
    @admin.display(description=_("customer"), ordering="customer_id")
    def customer_link(self, delivery: Delivery) -> str:
        return _customer_link(delivery.customer_id)


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
