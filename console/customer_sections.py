"""Sections of the customer page (360° view) that the console composes from the apps: the
customer's latest interactions, and its campaign history (every campaign that planned a
delivery to it: version, state, sent time, control group, conversion). Read-only fields
rendered as tables, each one bounded query; the rest of each is a click away in its list."""

from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.selectors import customer_campaign_history
from console.formatting import format_money, zone_label
from crm.models import Customer
from crm.selectors.interactions import customer_interaction_list

INTERACTION_ROWS = 20
CAMPAIGN_HISTORY_ROWS = 50


def _time(value: object) -> str:
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M}" if value else "-"  # type: ignore[arg-type]


def _table(headers: Sequence[object], rows: Iterable[Sequence[object]], more: SafeString) -> str:
    head = format_html_join("", "<th>{}</th>", ((capfirst(str(h)),) for h in headers))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    return format_html(
        "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table><p>{}</p>", head, body, more
    )


def _timed(header: object) -> str:
    return gettext("%(name)s (%(zone)s)") % {"name": header, "zone": zone_label()}


@admin.display(description=_("interactions"))
def recent_interactions(customer: Customer) -> str:
    """The customer's latest INTERACTION_ROWS interactions: when, and what kind."""
    interactions = list(customer_interaction_list(customer_id=customer.pk)[:INTERACTION_ROWS])
    if not interactions:
        return gettext("None.")
    every = format_html(
        '<a href="{}?customer__id__exact={}">{}</a>',
        reverse("admin:crm_interaction_changelist"),
        customer.pk,
        gettext("All interactions of this customer"),
    )
    return _table(
        [_timed(gettext("occurred at")), gettext("kind")],
        ((_time(i.occurred_at), i.get_kind_display()) for i in interactions),
        every,
    )


def recent_interactions_title() -> str:
    return gettext("Interactions: the latest %(count)d") % {"count": INTERACTION_ROWS}


def _conversion(revenue: Decimal | None) -> str:
    if revenue is None:
        return "-"
    return gettext("Converted (%(amount)s)") % {"amount": format_money(revenue)}


@admin.display(description=_("campaign history"))
def campaign_history(customer: Customer) -> str:
    """The customer's latest CAMPAIGN_HISTORY_ROWS deliveries of any campaign, each linking
    to its campaign."""
    deliveries = list(customer_campaign_history(customer_id=customer.pk)[:CAMPAIGN_HISTORY_ROWS])
    if not deliveries:
        return gettext("None.")
    every = format_html(
        '<a href="{}?q={}">{}</a>',
        reverse("admin:campaigns_delivery_changelist"),
        customer.pk,
        gettext("All deliveries of this customer"),
    )
    rows = (
        (
            format_html(
                '<a href="{}">{}</a>',
                reverse("admin:campaigns_campaign_change", args=[d.campaign_id]),
                d.campaign_name,  # type: ignore[attr-defined]
            ),
            d.variant_name or "-",  # type: ignore[attr-defined]
            d.get_status_display(),
            _time(d.sent_at),
            gettext("yes") if d.is_holdout else "-",
            _conversion(d.converted_revenue),  # type: ignore[attr-defined]
        )
        for d in deliveries
    )
    return _table(
        [
            gettext("campaign"),
            gettext("version"),
            gettext("status"),
            _timed(gettext("sent at")),
            gettext("holdout"),
            gettext("conversion"),
        ],
        rows,
        every,
    )


def campaign_history_title() -> str:
    return gettext("Campaign history: the latest %(count)d") % {"count": CAMPAIGN_HISTORY_ROWS}
