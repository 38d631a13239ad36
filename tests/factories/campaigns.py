"""factory_boy factories for the campaign models. Rows are written straight to their tables,
for tests that need a campaign's ledger as given rather than as the pipeline would write it;
a test that launches a campaign builds it through the service (`make_campaign` in
tests/campaigns/support.py), which checks it as an operator's would be."""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from campaigns import models
from crm.models import ConsentChannel
from crm.personal_data import encrypt
from tests.factories.crm import CustomerFactory
from tests.factories.segments import EVERYONE


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Variant

    campaign = factory.SubFactory("tests.factories.campaigns.CampaignFactory", variants=[])
    name = "A"
    content = "新品上市"


class CampaignFactory(factory.django.DjangoModelFactory):
    """A draft WeCom campaign to everyone, no holdout, no quiet hours, with the variants named
    in `variants` (one, "A", unless given)."""

    class Meta:
        model = models.Campaign
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"活动{n}")
    channel = models.Channel.WECOM_CUSTOMER
    consent_channel = factory.LazyAttribute(
        lambda o: models.CONSENT_CHANNEL_OF.get(o.channel, ConsentChannel.SMS)
    )
    webhook_url = factory.LazyAttribute(
        lambda o: "https://hooks.example.com/crm" if o.channel == models.Channel.WEBHOOK else ""
    )
    webhook_secret_encrypted = factory.LazyAttribute(
        lambda o: encrypt("whsec_test") if o.channel == models.Channel.WEBHOOK else ""
    )
    extra_rule = factory.LazyFunction(lambda: dict(EVERYONE))
    holdout_share = Decimal("0")
    quiet_hours_start = None
    quiet_hours_end = None

    @factory.post_generation
    def variants(self, create: bool, extracted: Sequence[str] | None, **_: Any) -> None:
        if create:
            for name in ["A"] if extracted is None else extracted:
                VariantFactory(campaign=self, name=name)


class FrequencyRuleFactory(factory.django.DjangoModelFactory):
    """One send in a rolling 24 hours on every channel; a send over it is skipped (deferred
    up to a day, with `on_hit=OnHit.DEFER`)."""

    class Meta:
        model = models.FrequencyRule

    name = factory.Sequence(lambda n: f"频次{n}")
    scope = models.RuleScope.ALL_CHANNELS
    max_count = 1
    window_kind = models.WindowKind.ROLLING
    window_hours = 24
    on_hit = models.OnHit.SKIP
    max_delay_hours = factory.LazyAttribute(
        lambda o: 24 if o.on_hit == models.OnHit.DEFER else None
    )


class DeliveryFactory(factory.django.DjangoModelFactory):
    """A delivery due, reserved and (when sent) sent at the instant `at` (now unless given)."""

    class Meta:
        model = models.Delivery

    class Params:
        at = factory.LazyFunction(timezone.now)

    campaign = factory.SubFactory(CampaignFactory)
    customer = factory.SubFactory(CustomerFactory)
    status = models.DeliveryStatus.SENT
    due_at = factory.SelfAttribute("at")
    first_due_at = factory.SelfAttribute("at")
    reserved_at = factory.SelfAttribute("at")
    sent_at = factory.LazyAttribute(
        lambda o: o.at if o.status == models.DeliveryStatus.SENT else None
    )


class ChannelSendFactory(factory.django.DjangoModelFactory):
    """A call to the campaign's channel, requested now and not yet attempted."""

    class Meta:
        model = models.ChannelSend

    campaign = factory.SubFactory(CampaignFactory)
    channel = factory.SelfAttribute("campaign.channel")


class LinkClickFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.LinkClick

    campaign = factory.SubFactory(CampaignFactory)
    link_no = 0
