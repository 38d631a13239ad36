"""factory_boy factories for every model the tests build, one module per app (and one for
the admin site's users), all importable from here."""

from tests.factories.campaigns import (
    CampaignFactory,
    ChannelSendFactory,
    DeliveryFactory,
    FrequencyRuleFactory,
    LinkClickFactory,
    VariantFactory,
)
from tests.factories.crm import (
    ConsentEventFactory,
    ConsentFactory,
    CustomerFactory,
    CustomerMergeFactory,
    CustomerTagFactory,
    GroupFactory,
    GroupMembershipFactory,
    IdentityFactory,
    InteractionFactory,
    OrderFactory,
    OrderItemFactory,
    StaffMemberFactory,
    TagFactory,
    TagGroupFactory,
)
from tests.factories.segments import (
    EVERYONE,
    CustomerMetricsFactory,
    CustomerPredictionFactory,
    ModelFitFactory,
    RecomputeRunFactory,
    SegmentFactory,
    SegmentMembershipFactory,
)
from tests.factories.users import UserFactory

__all__ = [
    "EVERYONE",
    "CampaignFactory",
    "ChannelSendFactory",
    "ConsentEventFactory",
    "ConsentFactory",
    "CustomerFactory",
    "CustomerMergeFactory",
    "CustomerMetricsFactory",
    "CustomerPredictionFactory",
    "CustomerTagFactory",
    "DeliveryFactory",
    "FrequencyRuleFactory",
    "GroupFactory",
    "GroupMembershipFactory",
    "IdentityFactory",
    "InteractionFactory",
    "LinkClickFactory",
    "ModelFitFactory",
    "OrderFactory",
    "OrderItemFactory",
    "RecomputeRunFactory",
    "SegmentFactory",
    "SegmentMembershipFactory",
    "StaffMemberFactory",
    "TagFactory",
    "TagGroupFactory",
    "UserFactory",
    "VariantFactory",
]
