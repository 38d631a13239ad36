"""Naming many customers in one request: `{"customer_ids": [...], "identities": [...]}`, where
each identity names one customer. Shared by the tag and group endpoints."""

from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from crm.api.identities import IdentitySerializer

ERROR_NO_CUSTOMERS = "no_customers"


class CustomerRefsSerializer(serializers.Serializer):
    allows_none = False  # whether naming no customer at all is valid

    customer_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list
    )
    identities = serializers.ListField(
        child=IdentitySerializer(),
        required=False,
        default=list,
        help_text=gettext_lazy("Each identity names one customer."),
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        count = len(attrs["customer_ids"]) + len(attrs["identities"])
        if count == 0 and not self.allows_none:
            raise serializers.ValidationError(
                {"customer_ids": [_("Name at least one customer.")]}, code=ERROR_NO_CUSTOMERS
            )
        if count > settings.API_BULK_MAX_ROWS:
            raise serializers.ValidationError(
                {
                    "customer_ids": [
                        _("At most %(limit)d customers per request.")
                        % {"limit": settings.API_BULK_MAX_ROWS}
                    ]
                },
                code="too_many_rows",
            )
        return attrs
