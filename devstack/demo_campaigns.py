"""The demo brand's campaigns, one in each state an operator meets: a draft, a scheduled one, one
sending, one paused, and one finished a fortnight ago whose report shows conversions and a lift
against its holdout.

`campaigns_load(at=...)` creates the campaigns through the campaign service (so each is a valid
campaign), then writes their history as the pipeline would have: the deliveries of the
launched ones (the audience judged by consent and identity, the holdout and the variants drawn
from a hash of the campaign and the customer), orders placed after the finished campaign's
sends (more often by its recipients than by its holdout), and their attribution by the real
attribution service. Rows go in with set-based INSERT ... SELECT; every insert skips what is
there already, so loading again adds nothing. Run after the demo data and its segments."""

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction

from campaigns.models import Campaign, CampaignState, DeliveryStatus
from campaigns.services.attribution import conversions_attribute
from campaigns.services.campaigns import CampaignInput, VariantInput, campaign_create
from crm.models import ConsentChannel, ConsentStatus, IdentityProvider
from segments.models import Segment

ACTOR = "demo"
SEND_HOUR = time(10, 0)  # business time, outside the default quiet hours (21:00-09:00)
# Orders the finished campaign's message brought (share of its recipients, in percent), and
# the few its holdout placed anyway: the visible lift.
TREATED_EXTRA_ORDER_PERCENT = 14
HOLDOUT_EXTRA_ORDER_PERCENT = 3


@dataclass(frozen=True)
class DemoCampaign:
    name: str
    description: str
    segment: str  # a demo segment's name (devstack load_demo_segments)
    state: str
    variants: list[tuple[str, str]]  # (name, text)
    days_ago: int = 0  # when it was launched (sent), counted back from `at`; 0: two hours ago
    sent_percent: int = 100  # of the audience to send to, the rest still waiting
    conversion_window_days: int = 7
    scheduled_in_days: int | None = None
    labels: list[str] = field(default_factory=list)


DEMO_CAMPAIGNS = [
    DemoCampaign(
        name="沉睡高消费客户唤醒",
        description="双 11 前召回沉睡、流失的高消费客户：回归礼券，A/B 两版文案",
        segment="沉睡高消费客户",
        state=CampaignState.COMPLETED,
        variants=[
            ("A", "好久不见！为您准备了 100 元回归礼券，7 天内有效，点击领取。"),
            ("B", "您常用的精华上新了，老客专享 8 折，本周有效。"),
        ],
        days_ago=30,
        conversion_window_days=14,
        labels=["召回"],
    ),
    DemoCampaign(
        name="新客欢迎礼",
        description="首单 30 天内的新客：欢迎语和复购券",
        segment="近 30 天新客",
        state=CampaignState.SENDING,
        variants=[("A", "欢迎加入！下单满 199 元立减 30 元，试试我们的明星面膜吧。")],
        sent_percent=70,
        labels=["新客欢迎"],
    ),
    DemoCampaign(
        name="护肤复购提醒",
        description="一年内两次以上购买护肤品的客户：补货提醒",
        segment="护肤复购客户",
        state=CampaignState.PAUSED,
        variants=[("A", "您的精华快用完了吧？本周补货享第二件半价。")],
        days_ago=1,
        sent_percent=40,
        labels=["复购"],
    ),
    DemoCampaign(
        name="会员日预告",
        description="重要价值客户：下周会员日的专属预告",
        segment="重要价值客户",
        state=CampaignState.SCHEDULED,
        variants=[("A", "下周三会员日，全场 85 折，专属礼品先到先得。")],
        scheduled_in_days=3,
        labels=["会员日"],
    ),
    DemoCampaign(
        name="618 大促预热",
        description="草稿：618 前的预热推送，尚未确定人群",
        segment="护肤复购客户",
        state=CampaignState.DRAFT,
        variants=[("A", "618 护肤礼盒预售开启，定金 50 抵 100。")],
        labels=["大促预热"],
    ),
]

# A number in 0-99 from the campaign's name and the customer's id: the same draw every time.
_DRAW = "abs(('x' || substr(md5(%(salt)s || ':' || c.id::text), 1, 8))::bit(32)::int) %% 100"

_DELIVERIES_SQL = f"""
    WITH audience AS (
        SELECT c.id AS customer_id, c.owner_id, {_DRAW} AS draw,
               EXISTS (SELECT 1 FROM crm_consent k  -- index consent_unique_channel
                       WHERE k.customer_id = c.id AND k.channel = %(consent_channel)s
                         AND k.status = %(opted_out)s) AS is_opted_out,
               EXISTS (SELECT 1 FROM crm_identity i
                       WHERE i.customer_id = c.id AND i.provider = %(provider)s) AS has_identity
        FROM segments_segmentmembership m
        JOIN crm_customer c ON c.id = m.customer_id
        WHERE m.segment_id = %(segment)s
    )
    INSERT INTO campaigns_delivery (
        customer_id, campaign_id, step, variant_id, is_holdout, status, reason, due_at,
        first_due_at, reserved_at, sent_at, attempts, error, planned_at, sender_id)
    SELECT a.customer_id, %(campaign)s, 0,
           CASE WHEN a.draw < %(holdout)s OR a.is_opted_out OR NOT a.has_identity THEN NULL
                ELSE (%(variants)s::bigint[])[1 + a.draw %% cardinality(%(variants)s::bigint[])]
           END,
           a.draw < %(holdout)s AND NOT a.is_opted_out AND a.has_identity,
           CASE WHEN a.is_opted_out OR NOT a.has_identity THEN %(suppressed)s
                WHEN a.draw < %(holdout)s THEN %(held_out)s
                WHEN a.draw < %(sent_below)s THEN %(sent_status)s
                ELSE %(pending)s END,
           CASE WHEN a.is_opted_out THEN 'opted_out'
                WHEN NOT a.has_identity THEN 'no_identity' ELSE '' END,
           %(at)s, %(at)s,
           CASE WHEN a.is_opted_out OR NOT a.has_identity THEN NULL
                WHEN a.draw < %(sent_below)s THEN %(at)s
           END,
           CASE WHEN a.is_opted_out OR NOT a.has_identity OR a.draw < %(holdout)s THEN NULL
                WHEN a.draw < %(sent_below)s
                THEN %(at)s + make_interval(secs => a.draw * 7)
           END,
           CASE WHEN a.is_opted_out OR NOT a.has_identity OR a.draw < %(holdout)s THEN 0
                WHEN a.draw < %(sent_below)s THEN 1
                ELSE 0 END,
           '', %(at)s, a.owner_id
    FROM audience a
    ORDER BY a.customer_id
    ON CONFLICT (customer_id, campaign_id, step) DO NOTHING
"""  # noqa: S608 - constants only

# The orders the finished campaign brought: one each for a share of its recipients (and a
# smaller share of its holdout), a few days after the send, of a product of the brand.
_ORDERS_SQL = f"""
    WITH chosen AS (
        SELECT d.customer_id, d.is_holdout, coalesce(d.sent_at, d.reserved_at) AS touched_at,
               {_DRAW} AS draw
        FROM campaigns_delivery d
        JOIN crm_customer c ON c.id = d.customer_id
        WHERE d.campaign_id = %(campaign)s
          AND d.status IN (%(sent_status)s, %(held_out)s)
    ),
    ranked AS (
        SELECT *, row_number() OVER (PARTITION BY is_holdout ORDER BY draw, customer_id) AS place,
               count(*) OVER (PARTITION BY is_holdout) AS arm_size
        FROM chosen
    ),
    buyers AS (
        SELECT customer_id, touched_at + make_interval(hours => 6 + draw * 3) AS paid_at,
               'DMC' || %(campaign)s || '-' || customer_id AS external_id,
               (ARRAY[129, 199, 369, 599])[1 + draw %% 4]::numeric AS amount
        FROM ranked
        -- The first share of each arm by its draw, rounded up: however small the holdout, at
        -- least one of its members buys, so that the lift is never against an empty figure.
        WHERE place <= ceil(arm_size * CASE WHEN is_holdout THEN %(holdout_percent)s
                                            ELSE %(treated_percent)s END / 100.0)
    ),
    written AS (
        INSERT INTO crm_order (customer_id, source, external_id, status, total_amount,
                               refunded_amount, currency, paid_at, channel, store,
                               content_hash, created_at, updated_at)
        SELECT customer_id, 'miniprogram', external_id, 'paid', amount, 0, 'CNY', paid_at,
               'miniprogram', '', md5(external_id), paid_at, paid_at
        FROM buyers
        ORDER BY customer_id
        ON CONFLICT (source, external_id) DO NOTHING
        RETURNING id, customer_id, total_amount, paid_at
    ),
    items AS (
        INSERT INTO crm_orderitem (order_id, customer_id, line_no, sku, name, category,
                                   quantity, unit_price, purchased_at)
        SELECT id, customer_id, 1, 'SK-SER-02', '烟酰胺美白精华', '护肤', 1, total_amount,
               paid_at
        FROM written
        RETURNING customer_id
    )
    SELECT customer_id FROM items
"""  # noqa: S608 - constants only


def _send_time(at: datetime, days_ago: int) -> datetime:
    """`days_ago` days before `at` (after it when negative), at SEND_HOUR business time; for
    today, two hours before `at`."""
    if days_ago == 0:
        return at - timedelta(hours=2)
    zone = ZoneInfo(settings.TIME_ZONE)
    day = (at.astimezone(zone) - timedelta(days=days_ago)).date()
    return datetime.combine(day, SEND_HOUR, tzinfo=zone)


def _campaign(spec: DemoCampaign, segment: Segment, at: datetime) -> Campaign:
    existing = Campaign.objects.filter(name=spec.name).first()
    if existing is not None:
        return existing
    scheduled_at = None
    if spec.scheduled_in_days is not None:
        scheduled_at = _send_time(at, -spec.scheduled_in_days)
    campaign = campaign_create(
        data=CampaignInput(
            name=spec.name,
            description=spec.description,
            channel="wecom_customer",
            labels=spec.labels,
            variants=[VariantInput(name=name, content=text) for name, text in spec.variants],
            include_segment_ids=[segment.pk],
            schedule_kind="at" if scheduled_at else "now",
            scheduled_at=scheduled_at,
            holdout_share=Decimal("0.1"),
            conversion_window_days=spec.conversion_window_days,
        ),
        actor=ACTOR,
    )
    if spec.state == CampaignState.DRAFT:
        return campaign
    # The pipeline's own salt is random; the demo's is its name, so that reloading draws the
    # same holdout.
    launched_at = _send_time(at, spec.days_ago) if scheduled_at is None else at
    campaign.salt = spec.name.encode().hex()[:32]
    campaign.state = spec.state
    campaign.launched_at = launched_at
    if spec.state != CampaignState.SCHEDULED:
        campaign.planned_at = launched_at
        campaign.audience_versions = {str(segment.pk): segment.rule_version}
    if spec.state == CampaignState.COMPLETED:
        campaign.finished_at = launched_at + timedelta(days=spec.conversion_window_days)
    campaign.save()
    return campaign


def _deliveries(campaign: Campaign, spec: DemoCampaign, segment: Segment) -> None:
    variants = list(campaign.variants.order_by("name").values_list("id", flat=True))
    holdout = int(campaign.holdout_share * 100)
    with connection.cursor() as cursor:
        cursor.execute(
            _DELIVERIES_SQL,
            {
                "salt": spec.name,
                "segment": segment.pk,
                "campaign": campaign.pk,
                "variants": variants,
                "holdout": holdout,
                # Draws below this are sent, the rest waits (the holdout's draws come first).
                "sent_below": holdout + (100 - holdout) * spec.sent_percent // 100,
                "at": campaign.launched_at,
                "consent_channel": ConsentChannel.WECOM,
                "opted_out": ConsentStatus.OPTED_OUT,
                "provider": IdentityProvider.WECOM,
                "suppressed": DeliveryStatus.SUPPRESSED,
                "held_out": DeliveryStatus.HELD_OUT,
                "sent_status": DeliveryStatus.SENT,
                "pending": DeliveryStatus.PENDING,
            },
        )


def _conversions(campaign: Campaign, spec: DemoCampaign) -> None:
    """The orders the campaign brought, then the attribution of every customer it touched."""
    with connection.cursor() as cursor:
        cursor.execute(
            _ORDERS_SQL,
            {
                "salt": f"{spec.name}:order",
                "campaign": campaign.pk,
                "sent_status": DeliveryStatus.SENT,
                "held_out": DeliveryStatus.HELD_OUT,
                "treated_percent": TREATED_EXTRA_ORDER_PERCENT,
                "holdout_percent": HOLDOUT_EXTRA_ORDER_PERCENT,
            },
        )
        buyers = [row[0] for row in cursor.fetchall()]
        if buyers:  # the nightly recomputation picks their new orders up
            cursor.execute(
                "INSERT INTO crm_dirtymark (customer_ids, marked_at) VALUES (%s, now())",
                [buyers],
            )
    touched = list(campaign.deliveries.values_list("customer_id", flat=True))
    conversions_attribute(customer_ids=touched)


def campaigns_load(*, at: datetime) -> dict[str, int]:
    """Create the demo campaigns missing and their history, as of `at`. Answers the number of
    deliveries per campaign name."""
    segments = {
        s.name: s for s in Segment.objects.filter(name__in={c.segment for c in DEMO_CAMPAIGNS})
    }
    written = {}
    for spec in DEMO_CAMPAIGNS:
        segment = segments.get(spec.segment)
        if segment is None:
            continue  # load_demo_segments has not run
        with transaction.atomic():
            campaign = _campaign(spec, segment, at)
            if spec.state not in (CampaignState.DRAFT, CampaignState.SCHEDULED):
                _deliveries(campaign, spec, segment)
        if spec.state == CampaignState.COMPLETED:
            _conversions(campaign, spec)
        written[spec.name] = campaign.deliveries.count()
    return written
