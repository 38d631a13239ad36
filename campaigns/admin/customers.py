"""The customer page's section of this app: a customer's deliveries of the last days (contact
pressure). console.admin composes the customer page from the CRM's with this section. A
read-only field rather than an inline: the deliveries' customer key has no reverse name to
prefix an inline formset with, and a table needs no formset at all."""

from datetime import timedelta

from django.contrib import admin
from django.contrib.admin.utils import display_for_value
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


@admin.display(description=_("deliveries"))
def recent_deliveries(customer: Customer) -> str:
    """The customer's deliveries of the last CONTACT_PRESSURE_DAYS days (the latest
    CONTACT_PRESSURE_ROWS), each linking to its campaign, and a link to all of them."""
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


def recent_deliveries_title() -> str:
    """The title of the customer page's section that shows `recent_deliveries` (in the
    request's language)."""
    return _("Contact pressure: deliveries of the last %(days)d days") % {
        "days": CONTACT_PRESSURE_DAYS
    }
