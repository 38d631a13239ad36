"""Helpers of the campaign tests: customers reachable on WeCom, a static audience segment, and
a campaign built through the service."""

from decimal import Decimal
from typing import Any

from django.utils import timezone

from campaigns.models import Campaign, Channel, ChannelSend, ChannelSendState, Delivery
from campaigns.services.campaigns import CampaignInput, VariantInput, campaign_create
from crm.models import Customer, IdentityProvider, StaffMember
from crm.services.consents import consent_record
from segments.models import Segment
from segments.services.segments import segment_create, segment_members_change
from tests.factories import CustomerFactory, IdentityFactory, StaffMemberFactory

CORP_ID = "corp1"  # the factories' WeCom namespace
WECOM_SECRET = "fake-secret"  # the corp's secret at the WeCom fake (tests/conftest.py)


def wecom_customers(count: int, *, owner: StaffMember | None = None) -> list[Customer]:
    """Customers with a WeCom external_userid (ext-<id>), owned by `owner` (one is made)."""
    owner = owner or StaffMemberFactory()
    customers = CustomerFactory.create_batch(count, owner=owner)
    for customer in customers:
        IdentityFactory(
            customer=customer, provider=IdentityProvider.WECOM, raw_value=f"ext-{customer.pk}"
        )
    return customers


def opt_out(customer: Customer) -> None:
    """The customer opts out of WeCom messages now."""
    consent_record(
        customer_id=customer.pk,
        channel="wecom",
        status="opted_out",
        source="test",
        occurred_at=timezone.now(),
        actor="test",
    )


def audience(customers: list[Customer], name: str = "audience") -> Segment:
    segment = segment_create(name=name, kind="static", actor="test")
    segment_members_change(segment_id=segment.pk, add=[c.pk for c in customers], actor="test")
    return segment


def make_campaign(segment: Segment | None = None, **overrides: Any) -> Campaign:
    fields: dict[str, Any] = {
        "name": f"campaign-{Campaign.objects.count() + 1}",
        "channel": Channel.WECOM_CUSTOMER,
        "variants": [VariantInput(name="A", content="新品上市")],
        "include_segment_ids": [segment.pk] if segment else [],
        # Without a segment: everyone (a rule every customer matches).
        "extra_rule": None if segment else {"field": "member_level", "op": "gte", "value": 0},
        "holdout_share": Decimal("0"),
        "quiet_hours_start": None,
        "quiet_hours_end": None,
        **overrides,
    }
    return campaign_create(data=CampaignInput(**fields), actor="test")


def statuses(campaign: Campaign) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in Delivery.objects.filter(campaign=campaign).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def calls_of(campaign: Campaign) -> list[int]:
    """The ids of the campaign's calls still to make, as the reservation queued them."""
    return list(
        ChannelSend.objects.filter(campaign=campaign, state=ChannelSendState.REQUESTED)
        .order_by("id")
        .values_list("id", flat=True)
    )
