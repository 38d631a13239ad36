"""A person with every kind of data the product holds about a customer, for the PIPL export and
erasure tests: identities of every provider, profile, tags, a group stay, an order with items,
interactions with properties, consents and their history, metrics, a lifecycle transition, a
prediction, segment membership and its history, deliveries with a conversion and a link click,
a merge record, entries of the admin's history, and a WeCom callback event naming them."""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet

from campaigns.models import Conversion, Delivery, DeliveryStatus
from core.models import AuditAction, AuditEvent
from crm.models import (
    ConsentChannel,
    ConsentStatus,
    Customer,
    Gender,
    Identity,
    IdentityProvider,
    Order,
    WeComEvent,
)
from crm.personal_data import encrypt
from segments.models import LifecycleState, Segment, SegmentMembershipEventKind
from tests.factories.campaigns import CampaignFactory, DeliveryFactory, LinkClickFactory
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
)
from tests.factories.segments import (
    CustomerMetricsFactory,
    CustomerPredictionFactory,
    LifecycleTransitionFactory,
    SegmentFactory,
    SegmentMembershipFactory,
)

AT = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


@dataclass
class Person:
    customer: Customer
    # Raw personal values as they entered the system (phone as typed and in E.164).
    values: list[str]
    identities: list[Identity]
    order: Order
    deliveries: list[Delivery]
    conversion: Conversion
    ids: dict[str, int] = field(default_factory=dict)

    @property
    def pk(self) -> int:
        return self.customer.pk


def build_person(
    n: int,
    *,
    segment: Segment,
    campaign_sent: object,
    campaign_holdout: object,
    admin_user: User | None = None,
) -> Person:
    """Person number `n` (values differ by person), a member of `segment`, sent to in
    `campaign_sent` (converted by their order) and held out in `campaign_holdout`."""
    phone = f"1391234{n:04d}"
    name = f"测试顾客甲{n}号"
    # Each value ends in the person's number, so that their masks differ too.
    wecom = f"wmExternalUserZq{n:04d}"
    unionid = f"oUnionPersonIdXy{n:04d}"
    openid = f"oOpenPersonIdWv{n:04d}"
    external = f"MEMBER-CARD-{n:04d}"
    owner = StaffMemberFactory(wecom_userid=f"owner{n}", name=f"导购{n}")
    customer = CustomerFactory(
        display_name=name,
        gender=Gender.FEMALE,
        birthday=dt.date(1990, 1 + n % 12, 10 + n % 10),
        province="浙江",
        city=f"城市{n}",
        owner=owner,
        member_level=3,
        member_points=1200 + n,
    )
    identities = [
        IdentityFactory(customer=customer, provider=IdentityProvider.PHONE, raw_value=phone),
        IdentityFactory(
            customer=customer,
            provider=IdentityProvider.WECOM,
            namespace="corp1",
            raw_value=wecom,
        ),
        IdentityFactory(customer=customer, provider=IdentityProvider.UNIONID, raw_value=unionid),
        IdentityFactory(
            customer=customer,
            provider=IdentityProvider.OPENID,
            namespace="wxapp1",
            raw_value=openid,
        ),
        IdentityFactory(
            customer=customer,
            provider=IdentityProvider.EXTERNAL,
            namespace="shop",
            raw_value=external,
        ),
    ]
    tag = TagFactory(name=f"敏感肌{n}")
    CustomerTagFactory(customer=customer, tag=tag, tagged_at=AT)
    group = GroupFactory(name=f"会员群{n}")
    GroupMembershipFactory(
        group=group, customer=customer, joined_at=AT, left_at=AT + dt.timedelta(days=3)
    )
    order = OrderFactory(customer=customer, total_amount=Decimal("299.00"), paid_at=AT)
    OrderItemFactory(order=order, line_no=1, sku=f"SKU-A{n}", name="面膜", category="面膜")
    OrderItemFactory(order=order, line_no=2, sku=f"SKU-B{n}", name="精华", category="精华")
    interaction = InteractionFactory(
        customer=customer,
        occurred_at=AT,
        properties={"note": f"备注{name}", "phone": phone, "address": f"西湖路{n}号"},
    )
    ConsentFactory(
        customer=customer,
        channel=ConsentChannel.WECOM,
        status=ConsentStatus.OPTED_IN,
        changed_at=AT,
    )
    ConsentEventFactory(
        customer=customer,
        channel=ConsentChannel.WECOM,
        status=ConsentStatus.OPTED_IN,
        occurred_at=AT,
    )
    ConsentEventFactory(
        customer=customer,
        channel=ConsentChannel.SMS,
        status=ConsentStatus.OPTED_OUT,
        occurred_at=AT,
    )
    CustomerMetricsFactory(
        customer=customer,
        lifetime_orders=1,
        lifetime_net_spend=Decimal("299.00"),
        lifecycle_state=LifecycleState.NEW,
        r_score=5,
    )
    LifecycleTransitionFactory(
        customer=customer, from_state=LifecycleState.PROSPECT, to_state=LifecycleState.NEW
    )
    CustomerPredictionFactory(customer=customer, predicted_value=Decimal("800.00"), cluster=2)
    SegmentMembershipFactory(segment=segment, customer=customer)
    Segment.objects.filter(pk=segment.pk).update(member_count=segment.memberships.count())
    segment.membership_events.create(
        customer=customer, kind=SegmentMembershipEventKind.ENTERED, rule_version=1, at=AT
    )
    sent = DeliveryFactory(campaign=campaign_sent, customer=customer, at=AT)
    held = DeliveryFactory(
        campaign=campaign_holdout,
        customer=customer,
        at=AT,
        is_holdout=True,
        status=DeliveryStatus.HELD_OUT,
        sent_at=None,
    )
    conversion = Conversion.objects.create(
        delivery=sent,
        order=order,
        campaign=campaign_sent,
        customer=customer,
        credit=Decimal("1"),
        revenue=order.total_amount,
        converted_at=AT + dt.timedelta(hours=1),
    )
    LinkClickFactory(campaign=campaign_sent, delivery=sent, link_no=1)
    merged_name = f"被合并顾客{n}"
    merge = CustomerMergeFactory(
        survivor=customer,
        merged_profile={"display_name": merged_name, "birthday": f"1991-02-1{n}"},
    )
    # WeCom's callback of the person's add, found by the keyed hash of their external id.
    message = (
        "<xml><MsgType>event</MsgType><Event>change_external_contact</Event>"
        f"<ChangeType>add_external_contact</ChangeType><UserID>owner{n}</UserID>"
        f"<ExternalUserID>{wecom}</ExternalUserID><CreateTime>1772359200</CreateTime></xml>"
    )
    WeComEvent.objects.create(
        message_hash=f"{n:064d}",
        event="change_external_contact",
        change_type="add_external_contact",
        event_at=AT,
        message_encrypted=encrypt(message),
        subject_hash=identities[1].value_hash,
    )
    if admin_user is not None:
        LogEntry.objects.log_actions(
            user_id=admin_user.pk,
            queryset=[customer],
            action_flag=CHANGE,
            change_message=f"改名为 {name}",
            single_object=True,
        )
    values = [
        phone,
        f"+86{phone}",
        name,
        wecom,
        unionid,
        openid,
        external,
        merged_name,
        f"1991-02-1{n}",
        f"备注{name}",
        f"西湖路{n}号",
    ]
    return Person(
        customer=customer,
        values=values,
        identities=identities,
        order=order,
        deliveries=[sent, held],
        conversion=conversion,
        ids={
            "tag": tag.pk,
            "group": group.pk,
            "interaction": interaction.pk,
            "merge": merge.pk,
            "owner": owner.pk,
        },
    )


def two_people(admin_user: User | None = None) -> tuple[Person, Person, dict[str, object]]:
    """Two people in one segment and two campaigns (one sent to, one holding them out)."""
    segment = SegmentFactory(name="高价值人群")
    sent = CampaignFactory(name="春季上新")
    holdout = CampaignFactory(name="会员召回")
    setting = {"segment": segment, "campaign_sent": sent, "campaign_holdout": holdout}
    first = build_person(1, admin_user=admin_user, **setting)  # type: ignore[arg-type]
    second = build_person(2, admin_user=admin_user, **setting)  # type: ignore[arg-type]
    return first, second, setting


def customer_log_content_type() -> int:
    return ContentType.objects.get_for_model(Customer).pk


def privacy_events() -> QuerySet[AuditEvent]:
    """The audit events of PIPL requests (exports and erasures): creating a test's API key or
    showing a page unmasked writes events of its own."""
    return AuditEvent.objects.filter(action__in=[AuditAction.PERSONAL_EXPORT, AuditAction.ERASE])
