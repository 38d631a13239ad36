"""The campaign report: what happened to the audience, per campaign and per variant, and the
lift the campaign caused against its holdout. Reads only (two aggregate queries; the
total rows of many campaigns at once in one).

Treated members are the deliveries sent; the control group is the holdout members who would
have been sent (status held_out). Both arms passed the same consent and cap checks, so their
conversion rates compare like with like. Per variant, each variant's treated members are set
against the whole holdout.

Lift is the difference of conversion rates (treated minus holdout) with a 95 % confidence
interval (unpooled standard error; none where neither rate varies, as when nobody converted)
and the two-sided p-value of the two-proportion z-test (pooled standard error); relative lift
divides by the holdout's rate. Incremental revenue is
the difference of revenue per member of the two arms (every qualifying order in the window,
not credit-weighted) times the number treated.
"""

import math
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection

from campaigns.models import Campaign, DeliveryStatus, FrequencyRule

Z_95 = 1.959963984540054  # the 97.5th percentile of the standard normal
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Lift:
    treated_rate: float | None
    holdout_rate: float | None
    absolute: float | None
    relative: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    incremental_revenue: Decimal | None


def lift_statistics(
    *,
    treated: int,
    treated_converted: int,
    holdout: int,
    holdout_converted: int,
    treated_revenue: Decimal = Decimal(0),
    holdout_revenue: Decimal = Decimal(0),
) -> Lift:
    """Lift of the treated arm over the holdout; None where an arm is empty (or, for the
    relative lift, the holdout never converted; for the interval and the p-value, the rates
    do not vary: nobody converted, say). A Wald interval of no variance would be a single
    point, 0.00 to 0.00 when nobody converted: it would look precise where there is no data."""
    rate_t = treated_converted / treated if treated else None
    rate_h = holdout_converted / holdout if holdout else None
    if rate_t is None or rate_h is None:
        return Lift(rate_t, rate_h, None, None, None, None, None, None)
    difference = rate_t - rate_h
    spread = math.sqrt(rate_t * (1 - rate_t) / treated + rate_h * (1 - rate_h) / holdout)
    pooled = (treated_converted + holdout_converted) / (treated + holdout)
    pooled_spread = math.sqrt(pooled * (1 - pooled) * (1 / treated + 1 / holdout))
    p_value = math.erfc(abs(difference / pooled_spread) / math.sqrt(2)) if pooled_spread else None
    incremental = (treated_revenue / treated - holdout_revenue / holdout) * treated
    return Lift(
        treated_rate=rate_t,
        holdout_rate=rate_h,
        absolute=difference,
        relative=difference / rate_h if rate_h else None,
        ci_low=difference - Z_95 * spread if spread else None,
        ci_high=difference + Z_95 * spread if spread else None,
        p_value=p_value,
        incremental_revenue=incremental.quantize(Decimal("0.01")),
    )


@dataclass
class ArmReport:
    """One row of the report: the campaign as a whole (variant None) or one variant."""

    variant: str | None
    audience: int = 0
    holdout: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)  # reason -> deliveries
    capped_by_rule: dict[str, int] = field(default_factory=dict)  # rule name -> deliveries
    deferred: dict[str, int] = field(default_factory=dict)  # reason -> deliveries waiting
    waiting: int = 0
    cancelled: int = 0
    sent: int = 0
    failed: int = 0
    clicked: int = 0
    clicks: int = 0
    # Of `clicks`, those on links a whole variant's bulk text shared: no recipient is known
    # (a WeCom task's text is one for all its customers), so no one counts as having clicked.
    shared_clicks: int = 0
    converted: int = 0
    conversion_rate: float | None = None
    attributed_orders: Decimal = Decimal(0)
    revenue: Decimal = Decimal(0)
    revenue_per_recipient: Decimal | None = None
    window_revenue: Decimal = Decimal(0)
    lift: Lift | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CampaignReport:
    campaign_id: int
    total: ArmReport
    variants: list[ArmReport]
    holdout_converted: int
    holdout_window_revenue: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "total": self.total.as_dict(),
            "variants": [variant.as_dict() for variant in self.variants],
            "holdout_converted": self.holdout_converted,
            "holdout_window_revenue": self.holdout_window_revenue,
        }


_FAILED = (DeliveryStatus.FAILED, DeliveryStatus.DEAD_LETTER)
_WAITING = (
    DeliveryStatus.PENDING,
    DeliveryStatus.RESERVED,
    DeliveryStatus.SUBMITTED,
)

# Per (variant, holdout, status, reason): deliveries, those converted, credit, attributed
# revenue, revenue within the window, and clicks. Index delivery_by_campaign, then
# conversion_by_campaign.
_REPORT_SQL = """
    WITH conv AS (
        SELECT delivery_id, sum(credit) AS credit, sum(credit * revenue) AS attributed,
               sum(revenue) AS window_revenue
        FROM campaigns_conversion WHERE campaign_id = %(campaign)s
        GROUP BY delivery_id
    ),
    clicks AS (
        SELECT delivery_id, count(*) AS clicks FROM campaigns_linkclick
        WHERE campaign_id = %(campaign)s AND delivery_id IS NOT NULL
        GROUP BY delivery_id
    )
    SELECT d.variant_id, d.is_holdout, d.status, d.reason, d.rule_id, count(*),
           count(conv.delivery_id), coalesce(sum(conv.credit), 0),
           coalesce(sum(conv.attributed), 0), coalesce(sum(conv.window_revenue), 0),
           count(clicks.delivery_id), coalesce(sum(clicks.clicks), 0)
    FROM campaigns_delivery d
    LEFT JOIN conv ON conv.delivery_id = d.id
    LEFT JOIN clicks ON clicks.delivery_id = d.id
    WHERE d.campaign_id = %(campaign)s
    GROUP BY 1, 2, 3, 4, 5
"""

# Clicks on links shared by a whole variant's bulk text (no delivery known), per variant.
_SHARED_CLICKS_SQL = """
    SELECT variant_id, count(*) FROM campaigns_linkclick
    WHERE campaign_id = %s AND delivery_id IS NULL GROUP BY 1
"""


def campaign_report(*, campaign: Campaign) -> CampaignReport:
    names = dict(campaign.variants.values_list("pk", "name"))
    total = ArmReport(variant=None)
    arms = {pk: ArmReport(variant=name) for pk, name in sorted(names.items(), key=lambda i: i[1])}
    holdout_converted, holdout_revenue = 0, Decimal(0)
    with connection.cursor() as cursor:
        cursor.execute(_REPORT_SQL, {"campaign": campaign.pk})
        rows = cursor.fetchall()
        cursor.execute(_SHARED_CLICKS_SQL, [campaign.pk])
        shared_clicks = dict(cursor.fetchall())
    rule_names = dict(FrequencyRule.objects.values_list("pk", "name"))
    for row in rows:
        variant_id, is_holdout, status, reason, rule_id, n, converted, credit = row[:8]
        attributed, window, clicked, clicks = row[8:]
        targets = [total] if variant_id is None else [total, arms[variant_id]]
        for arm in targets:
            arm.audience += n
            arm.holdout += n if is_holdout else 0
            if status == DeliveryStatus.SUPPRESSED:
                arm.suppressed[reason] = arm.suppressed.get(reason, 0) + n
                if rule_id is not None:
                    name = rule_names.get(rule_id, str(rule_id))
                    arm.capped_by_rule[name] = arm.capped_by_rule.get(name, 0) + n
            elif status == DeliveryStatus.CANCELLED:
                arm.cancelled += n
            elif status in _WAITING:
                arm.waiting += n
                if status == DeliveryStatus.PENDING and reason:
                    arm.deferred[reason] = arm.deferred.get(reason, 0) + n
            elif status == DeliveryStatus.SENT:
                arm.sent += n
                arm.converted += converted
                arm.attributed_orders += credit
                arm.revenue += attributed
                arm.window_revenue += window
                arm.clicked += clicked
                arm.clicks += clicks
            elif status in _FAILED:
                arm.failed += n
        if status == DeliveryStatus.HELD_OUT:
            holdout_converted += converted
            holdout_revenue += window
    held_out = sum(row[5] for row in rows if row[1] and row[2] == DeliveryStatus.HELD_OUT)
    for variant_id, count in shared_clicks.items():
        for arm in [total, arms[variant_id]] if variant_id in arms else [total]:
            arm.clicks += count
            arm.shared_clicks += count
    for arm in [total, *arms.values()]:
        _finish(arm, held_out=held_out, converted=holdout_converted, revenue=holdout_revenue)
    return CampaignReport(
        campaign_id=campaign.pk,
        total=total,
        variants=list(arms.values()),
        holdout_converted=holdout_converted,
        holdout_window_revenue=holdout_revenue,
    )


def _finish(arm: ArmReport, *, held_out: int, converted: int, revenue: Decimal) -> None:
    if arm.sent:
        arm.conversion_rate = arm.converted / arm.sent
        arm.revenue_per_recipient = (arm.revenue / arm.sent).quantize(Decimal("0.01"))
    arm.attributed_orders = Decimal(arm.attributed_orders).quantize(Decimal("0.000001"))
    arm.lift = lift_statistics(
        treated=arm.sent,
        treated_converted=arm.converted,
        holdout=held_out,
        holdout_converted=converted,
        treated_revenue=Decimal(arm.window_revenue),
        holdout_revenue=revenue,
    )


@dataclass(frozen=True)
class CampaignSummary:
    """A campaign's figures as a whole, as its report's total row has them: deliveries sent,
    those converted, and the lift against the holdout."""

    sent: int
    converted: int
    conversion_rate: float | None
    lift: Lift


# Per campaign and arm (sent, held out): deliveries, then those converted and their revenue
# within the window. The deliveries are counted on index delivery_by_campaign alone, and the
# conversions (index conversion_by_campaign) find their deliveries by key: no join of every
# delivery with the conversions, which cost twice the count at a campaign of millions.
_SUMMARIES_SQL = """
    SELECT campaign_id, status, count(*), 0, 0
    FROM campaigns_delivery
    WHERE campaign_id = ANY(%(campaigns)s) AND status = ANY(%(statuses)s)
    GROUP BY 1, 2
    UNION ALL
    SELECT d.campaign_id, d.status, 0, count(*), sum(conv.window_revenue)
    FROM (
        SELECT delivery_id, sum(revenue) AS window_revenue
        FROM campaigns_conversion WHERE campaign_id = ANY(%(campaigns)s)
        GROUP BY delivery_id
    ) conv
    JOIN campaigns_delivery d ON d.id = conv.delivery_id
    WHERE d.status = ANY(%(statuses)s)
    GROUP BY 1, 2
"""


def campaign_summaries(*, campaign_ids: Collection[int]) -> dict[int, CampaignSummary]:
    """The total row of each campaign's report (sent, converted, conversion rate, lift), for
    many campaigns in one query: the figures `campaign_report` gives, by the same rules."""
    arms: dict[tuple[int, str], tuple[int, int, Decimal]] = {}
    if campaign_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                _SUMMARIES_SQL,
                {
                    "campaigns": list(campaign_ids),
                    "statuses": [DeliveryStatus.SENT, DeliveryStatus.HELD_OUT],
                },
            )
            for campaign_id, status, count, converted, revenue in cursor.fetchall():
                before = arms.get((campaign_id, status), (0, 0, _ZERO))
                arms[campaign_id, status] = (
                    before[0] + count,
                    before[1] + converted,
                    before[2] + Decimal(revenue),
                )
    summaries = {}
    for campaign_id in campaign_ids:
        sent, converted, revenue = arms.get((campaign_id, DeliveryStatus.SENT), (0, 0, _ZERO))
        held, held_converted, held_revenue = arms.get(
            (campaign_id, DeliveryStatus.HELD_OUT), (0, 0, _ZERO)
        )
        summaries[campaign_id] = CampaignSummary(
            sent=sent,
            converted=converted,
            conversion_rate=converted / sent if sent else None,
            lift=lift_statistics(
                treated=sent,
                treated_converted=converted,
                holdout=held,
                holdout_converted=held_converted,
                treated_revenue=revenue,
                holdout_revenue=held_revenue,
            ),
        )
    return summaries
