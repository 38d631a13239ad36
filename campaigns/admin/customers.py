"""The customer page's section of this app: a customer's deliveries of the last days (contact
pressure), added to the customer page as registered by the apps below."""

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import display_for_value
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from campaigns.models import Channel
from campaigns.selectors import customer_delivery_list
from crm.models import Customer

CONTACT_PRESSURE_DAYS = 30
CONTACT_PRESSURE_ROWS = 50  # the newest; the rest are a click away in the deliveries list


# The customer page as registered so far (the CRM's, with what other apps added), extended
# with this app's section. Extending whatever is registered keeps the CRM free of any import
# of campaigns and composes with the other apps' additions in INSTALLED_APPS order. A read-only
# field rather than an inline: the deliveries' customer key has no reverse name to prefix an
# inline formset with, and a table needs no formset at all.
_RegisteredCustomerAdmin: type[admin.ModelAdmin] = type(admin.site.get_model_admin(Customer))


class CustomerWithDeliveriesAdmin(_RegisteredCustomerAdmin):  # type: ignore[misc,valid-type]
    readonly_fields = [*_RegisteredCustomerAdmin.readonly_fields, "recent_deliveries"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [name for name in super().get_fields(request, obj) if name != "recent_deliveries"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        title = _("Contact pressure: deliveries of the last %(days)d days") % {
            "days": CONTACT_PRESSURE_DAYS
        }
        return [*fieldsets, (title, {"fields": ["recent_deliveries"]})]

    @admin.display(description=_("deliveries"))
    def recent_deliveries(self, customer: Customer) -> str:
        since = timezone.now() - timedelta(days=CONTACT_PRESSURE_DAYS)
        deliveries = list(
            customer_delivery_list(customer_id=customer.pk, since=since)[:CONTACT_PRESSURE_ROWS]
        )
        if not deliveries:
            return str(_("None."))
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    format_html(
                        '<a href="{}">{}</a>',
                        reverse("admin:campaigns_campaign_change", args=[d.campaign_id]),
                        d.campaign_name,  # type: ignore[attr-defined]
                    ),
                    Channel(d.channel).label,  # type: ignore[attr-defined]
                    d.get_status_display(),
                    d.get_reason_display() or "-",
                    _("yes") if d.is_holdout else "-",
                    display_for_value(d.reserved_at, "-"),
                    display_for_value(d.sent_at, "-"),
                )
                for d in deliveries
            ),
        )
        headers = format_html_join(
            "",
            "<th>{}</th>",
            (
                (capfirst(label),)
                for label in (
                    _("campaign"),
                    _("channel"),
                    _("status"),
                    _("reason"),
                    _("holdout"),
                    _("reserved at"),
                    _("sent at"),
                )
            ),
        )
        every = format_html(
            '<a href="{}?q={}">{}</a>',
            reverse("admin:campaigns_delivery_changelist"),
            customer.pk,
            _("All deliveries of this customer"),
        )
        return format_html(
            "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table><p>{}</p>",
            headers,
            rows,
            every,
        )


admin.site.unregister(Customer)
admin.site.register(Customer, CustomerWithDeliveriesAdmin)
