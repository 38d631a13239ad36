"""Planning: the holdout and variant draws (shares within statistical tolerance, the same
split on every re-plan and in the dry run), who is suppressed at once and why, the audience's
exclusions and extra rule, and quiet hours."""

import math
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from campaigns.models import Campaign, Delivery, DeliveryReason, DeliveryStatus
from campaigns.services.campaigns import VariantInput, campaign_launch, campaign_plan
from campaigns.services.dry_run import campaign_dry_run
from campaigns.services.reservation import deliveries_reserve_batch
from segments.models import Segment
from tests.campaigns.support import (
    audience,
    make_campaign,
    opt_out,
    webhook_campaign,
    wecom_customers,
)
from tests.factories import CampaignFactory, CustomerFactory, SegmentFactory

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=SHANGHAI)
POPULATION = 20_000


def everyone_segment(count: int) -> Segment:
    """`count` customers (set-based: factories would take minutes) in one static segment."""
    segment = SegmentFactory(name="everyone", kind="static")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH created AS (
                INSERT INTO crm_customer (display_name, gender, province, city, source_channel,
                    first_seen_at, member_level, member_points, created_at, updated_at)
                SELECT 'c' || n, 'unknown', '', '', '', now(), 0, 0, now(), now()
                FROM generate_series(1, %s) n
                RETURNING id
            )
            INSERT INTO segments_segmentmembership (segment_id, customer_id, rule_version,
                                                    entered_at)
            SELECT %s, id, 1, now() FROM created
            """,
            [count, segment.pk],
        )
    return segment


def drawn_campaign(segment: Segment, name: str, **overrides: object) -> Campaign:
    """A webhook campaign (every member is eligible) holding out a fifth of its audience and
    splitting the rest between its variants A and B, weighted 1 to 3."""
    fields: dict[str, object] = {
        "holdout_share": Decimal("0.2"),
        "variants": [
            VariantInput(name="A", content="a", weight=1),
            VariantInput(name="B", content="b", weight=3),
        ],
        **overrides,
    }
    return webhook_campaign(segment, name=name, **fields)


def planned(campaign: Campaign, at: datetime = NOON) -> dict[int, tuple[bool, str | None]]:
    campaign_launch(campaign_id=campaign.pk, actor="test", at=at)
    campaign_plan(campaign_id=campaign.pk, at=at)
    return {
        customer_id: (is_holdout, variant)
        for customer_id, is_holdout, variant in Delivery.objects.filter(
            campaign=campaign
        ).values_list("customer_id", "is_holdout", "variant__name")
    }


def within(observed: int, n: int, share: float) -> bool:
    """Within four standard deviations of the binomial mean."""
    return abs(observed - n * share) <= 4 * math.sqrt(n * share * (1 - share))


def test_holdout_and_variant_shares_are_within_tolerance_and_the_split_is_stable() -> None:
    segment = everyone_segment(POPULATION)
    campaign = drawn_campaign(segment, "draws")
    dry = campaign_dry_run(campaign=campaign, at=NOON)
    split = planned(campaign)

    held = {customer for customer, (is_holdout, _v) in split.items() if is_holdout}
    treated = [variant for is_holdout, variant in split.values() if not is_holdout]
    assert len(split) == POPULATION
    assert within(len(held), POPULATION, 0.2), len(held)
    assert within(treated.count("B"), len(treated), 0.75), treated.count("B")
    assert set(treated) == {"A", "B"}
    # The dry run drew the same split before anything was written.
    assert dry.holdout == len(held)
    assert dry.per_variant == {"A": treated.count("A"), "B": treated.count("B")}

    # Planned again from scratch: the same customers held out, each the same variant.
    Delivery.objects.filter(campaign=campaign).delete()
    Campaign.objects.filter(pk=campaign.pk).update(planned_at=None)
    campaign_plan(campaign_id=campaign.pk, at=NOON)
    again = dict(
        Delivery.objects.filter(campaign=campaign).values_list("customer_id", "is_holdout")
    )
    assert {customer for customer, is_holdout in again.items() if is_holdout} == held

    # Another campaign draws its own holdout (another salt), hardly overlapping this one.
    other = planned(drawn_campaign(segment, "other"))
    other_held = {customer for customer, (is_holdout, _v) in other.items() if is_holdout}
    assert within(len(held & other_held), POPULATION, 0.2 * 0.2)


def test_planning_twice_writes_nothing_the_second_time() -> None:
    customers = wecom_customers(5)
    campaign = make_campaign(audience(customers), name="twice")
    campaign_launch(campaign_id=campaign.pk, actor="test", at=NOON)
    assert campaign_plan(campaign_id=campaign.pk, at=NOON) == 5
    Campaign.objects.filter(pk=campaign.pk).update(planned_at=None)  # as if it crashed
    assert campaign_plan(campaign_id=campaign.pk, at=NOON) == 0
    assert Delivery.objects.filter(campaign=campaign).count() == 5


def test_sends_in_quiet_hours_wait_for_their_end() -> None:
    customers = wecom_customers(3)
    campaign = make_campaign(
        audience(customers), name="night", quiet_hours_start=None, quiet_hours_end=None
    )
    Campaign.objects.filter(pk=campaign.pk).update(
        quiet_hours_start="21:00", quiet_hours_end="09:00"
    )
    late = datetime(2026, 3, 2, 22, 0, tzinfo=SHANGHAI)
    morning = datetime(2026, 3, 3, 9, 0, tzinfo=SHANGHAI)
    campaign_launch(campaign_id=campaign.pk, actor="test", at=late)
    campaign_plan(campaign_id=campaign.pk, at=late)
    rows = list(Delivery.objects.filter(campaign=campaign).values("status", "reason", "due_at"))
    assert (
        rows == [{"status": "pending", "reason": DeliveryReason.QUIET_HOURS, "due_at": morning}] * 3
    )
    # Still night: nothing is reserved.
    assert (
        deliveries_reserve_batch(campaign_id=campaign.pk, at=late + timedelta(hours=1)).reserved_ids
        == []
    )
    assert (
        deliveries_reserve_batch(
            campaign_id=campaign.pk, at=morning - timedelta(seconds=1)
        ).reserved_ids
        == []
    )
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.PENDING}
    # Morning: reserved, and counted from then.
    assert len(deliveries_reserve_batch(campaign_id=campaign.pk, at=morning).reserved_ids) == 3
    assert set(Delivery.objects.values_list("status", "reserved_at")) == {
        (DeliveryStatus.RESERVED, morning)
    }


@pytest.mark.parametrize(
    ("start", "end", "at", "expected"),
    [
        ("21:00", "09:00", "20:59", None),
        ("21:00", "09:00", "21:00", "2026-03-03 09:00"),
        ("21:00", "09:00", "03:00", "2026-03-02 09:00"),
        ("21:00", "09:00", "09:00", None),
        ("12:00", "14:00", "13:00", "2026-03-02 14:00"),
        ("12:00", "14:00", "14:00", None),
        (None, None, "03:00", None),
    ],
)
def test_quiet_until(start: str | None, end: str | None, at: str, expected: str | None) -> None:
    campaign = CampaignFactory.build(quiet_hours_start=start, quiet_hours_end=end)
    if start is not None:
        campaign.quiet_hours_start = datetime.strptime(start, "%H:%M").time()
        campaign.quiet_hours_end = datetime.strptime(str(end), "%H:%M").time()
    hour, minute = map(int, at.split(":"))
    moment = datetime(2026, 3, 2, hour, minute, tzinfo=SHANGHAI)
    until = campaign.quiet_until(moment)
    assert (until.strftime("%Y-%m-%d %H:%M") if until else None) == expected


def test_quiet_hours_are_read_in_business_time() -> None:
    campaign = CampaignFactory.build(quiet_hours_start=time(21), quiet_hours_end=time(9))
    # 13:00 UTC is 21:00 in Shanghai; 12:59:59 UTC is 20:59:59; 01:00 UTC is 09:00.
    assert campaign.quiet_until(datetime(2026, 3, 2, 13, 0, tzinfo=UTC)) == datetime(
        2026, 3, 3, 9, 0, tzinfo=SHANGHAI
    )
    assert campaign.quiet_until(datetime(2026, 3, 2, 12, 59, 59, tzinfo=UTC)) is None
    assert campaign.quiet_until(datetime(2026, 3, 3, 1, 0, tzinfo=UTC)) is None
    # A window that starts where it ends is no window.
    campaign.quiet_hours_end = time(21)
    assert campaign.quiet_until(datetime(2026, 3, 2, 13, 0, tzinfo=UTC)) is None


def test_opted_out_and_unreachable_customers_are_suppressed_and_never_held_out() -> None:
    reachable = wecom_customers(40)
    opted_out, opted_out_elsewhere = reachable[:20], reachable[20:25]
    unreachable = [CustomerFactory() for _ in range(20)]  # no WeCom identity
    for customer, channel in [
        *((customer, "wecom") for customer in [*opted_out, unreachable[0]]),
        *((customer, "sms") for customer in opted_out_elsewhere),
    ]:
        opt_out(customer, channel=channel, at=NOON - timedelta(days=1))
    # Half the audience would be held out, so some 20 of the 40 suppressed would be if the
    # draw came first.
    campaign = make_campaign(
        audience([*reachable, *unreachable]), name="suppressed", holdout_share=Decimal("0.5")
    )
    campaign_launch(campaign_id=campaign.pk, actor="test", at=NOON)
    assert campaign_plan(campaign_id=campaign.pk, at=NOON) == 60

    rows = {
        customer_id: rest
        for customer_id, *rest in Delivery.objects.filter(campaign=campaign).values_list(
            "customer_id", "status", "reason", "is_holdout", "reserved_at"
        )
    }
    suppressed = {
        **{customer.pk: ["suppressed", "opted_out", False, None] for customer in opted_out},
        # Opted out and unreachable: the opt-out is the reason given.
        unreachable[0].pk: ["suppressed", "opted_out", False, None],
        **{c.pk: ["suppressed", "no_identity", False, None] for c in unreachable[1:]},
    }
    assert {pk: rows[pk] for pk in suppressed} == suppressed
    # An opt-out on another channel does not concern this campaign.
    eligible = {tuple(rows[customer.pk]) for customer in reachable[20:]}
    assert eligible <= {("reserved", "", False, NOON), ("held_out", "", True, NOON)}


def test_excluded_segments_and_the_extra_rule_narrow_the_audience() -> None:
    shanghai = [CustomerFactory(city="上海") for _ in range(4)]
    beijing = [CustomerFactory(city="北京") for _ in range(2)]
    outside = CustomerFactory(city="上海")  # in no segment
    included = audience([*shanghai, *beijing], name="included")
    excluded = audience([shanghai[0], beijing[0]], name="excluded")
    in_shanghai = {"field": "city", "op": "eq", "value": "上海"}
    narrowed = drawn_campaign(
        included, "narrowed", exclude_segment_ids=[excluded.pk], extra_rule=in_shanghai
    )
    rule_only = webhook_campaign(name="rule only", extra_rule=in_shanghai)

    assert set(planned(narrowed)) == {customer.pk for customer in shanghai[1:]}
    assert set(planned(rule_only)) == {customer.pk for customer in [*shanghai, outside]}
