"""The dry run: what launching a campaign now would do, written nowhere. The audience after
exclusions is judged exactly as planning and reservation would judge it (the same SQL): who
opted out, who cannot be reached, who falls in the holdout, who a frequency rule would hold
back now, and which variant each of the others would get. Answers the counts and a sample of
recipients with the reason each would or would not be sent."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign, Channel, DeliveryReason, FrequencyRule
from campaigns.services.campaigns import campaign_audience
from campaigns.services.planning import group_audience_sql, judged_ctes, named_params
from campaigns.services.reservation import applicable_rules, judged_verdicts_sql, verdict_sql
from segments.rules import RULE_SESSION_SQL

SAMPLE_SIZE = 20

# What would happen to one audience member, in the order the pipeline decides it.
OUTCOME_OPTED_OUT = "opted_out"
OUTCOME_NO_IDENTITY = "no_identity"
OUTCOME_GROUP_BLOCKED = "group_blocked"
OUTCOME_CAPPED = "capped"
OUTCOME_DEFERRED = "deferred"
OUTCOME_HOLDOUT = "holdout"
OUTCOME_SEND = "send"


@dataclass
class DryRun:
    audience: int = 0
    holdout: int = 0
    would_send: int = 0
    opted_out: int = 0
    no_identity: int = 0
    group_blocked: int = 0  # a group-chat campaign's members whose chat may not be sent to
    capped_by_rule: dict[str, int] = field(default_factory=dict)
    deferred_by_rule: dict[str, int] = field(default_factory=dict)
    per_variant: dict[str, int] = field(default_factory=dict)
    quiet_until: datetime | None = None
    sample: list[dict[str, Any]] = field(default_factory=list)


_OUTCOME_SQL = f"""
    CASE WHEN j.is_opted_out THEN '{OUTCOME_OPTED_OUT}'
         WHEN NOT j.is_reachable AND j.unreachable_reason = '{DeliveryReason.GROUP_BLOCKED}'
             THEN '{OUTCOME_GROUP_BLOCKED}'
         WHEN NOT j.is_reachable OR v.is_left THEN '{OUTCOME_NO_IDENTITY}'
         WHEN v.is_group_blocked THEN '{OUTCOME_GROUP_BLOCKED}'
         WHEN v.until = 'infinity' THEN '{OUTCOME_CAPPED}'
         WHEN v.until IS NOT NULL THEN '{OUTCOME_DEFERRED}'
         WHEN j.is_holdout THEN '{OUTCOME_HOLDOUT}'
         ELSE '{OUTCOME_SEND}' END
"""


def campaign_dry_run(*, campaign: Campaign, at: datetime | None = None) -> DryRun:
    at = at or timezone.now()
    variants = list(campaign.variants.order_by("name", "id").values_list("id", "weight"))
    names = dict(campaign.variants.values_list("pk", "name"))
    audience_sql, params = named_params(campaign_audience(campaign, at=at))
    is_by_chat = campaign.channel == Channel.WECOM_GROUP
    if is_by_chat:
        audience_sql = group_audience_sql(audience_sql)
    rules = applicable_rules(campaign)
    verdicts, verdict_params = verdict_sql(
        rules,
        at,
        # An array, not `IN (SELECT ...)`: the ledger is then read by index
        # delivery_counted_by_customer for the audience's customers only, whatever its size,
        # where a semi-join over the audience's CTE (whose size the planner cannot know) may
        # read every counted delivery of the window.
        customers="d.customer_id = ANY(ARRAY(SELECT customer_id FROM b))",
        is_consent_checked=True,  # as in planning: b holds those who did not opt out
    )
    params.update(verdict_params)
    params.update({"salt": campaign.salt, "consent_channel": campaign.consent_channel})
    # The judged audience goes to a temporary table, read twice: once to count, once to
    # sample. Nothing else is written, and it goes at the end of the transaction.
    tail = f""",
        b AS (
            SELECT customer_id AS id, customer_id, is_holdout, group_id,
                   %(at)s::timestamptz AS first_due_at
            FROM judged WHERE is_reachable AND NOT is_opted_out
        ),
        {judged_verdicts_sql(verdicts, is_by_chat=is_by_chat)}
        SELECT j.customer_id, j.variant_id, v.rule_id, v.until, {_OUTCOME_SQL} AS outcome,
               hashtextextended(%(salt)s || ':sample:' || j.customer_id::text, 0) AS draw
        FROM judged j LEFT JOIN v ON v.id = j.customer_id
    """  # noqa: S608 - this package's SQL and integers
    statement = judged_ctes(campaign, audience_sql, variants) + tail
    result = DryRun(quiet_until=campaign.quiet_until(at))
    rule_names = dict(FrequencyRule.objects.values_list("pk", "name"))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(RULE_SESSION_SQL)
        cursor.execute(
            "DROP TABLE IF EXISTS dry_run"
        )  # one of an earlier dry run, same transaction
        cursor.execute(f"CREATE TEMPORARY TABLE dry_run ON COMMIT DROP AS {statement}", params)
        cursor.execute(
            "SELECT outcome, rule_id, variant_id, count(*) FROM dry_run GROUP BY 1, 2, 3"
        )
        for outcome, rule_id, variant_id, count in cursor.fetchall():
            _count(result, outcome, rule_names.get(rule_id, ""), names.get(variant_id), count)
        cursor.execute(
            """
            SELECT r.customer_id, c.display_name, r.outcome, r.rule_id,
                   CASE WHEN r.outcome = %s THEN r.until END, r.variant_id
            FROM dry_run r JOIN crm_customer c ON c.id = r.customer_id
            ORDER BY r.draw LIMIT %s
            """,
            [OUTCOME_DEFERRED, SAMPLE_SIZE],
        )
        for customer_id, display_name, outcome, rule_id, until, variant_id in cursor.fetchall():
            result.sample.append(
                {
                    "customer_id": customer_id,
                    "display_name": display_name,
                    "outcome": outcome,
                    "rule": rule_names.get(rule_id) if rule_id else None,
                    "deferred_until": until if outcome == OUTCOME_DEFERRED else None,
                    "variant": names.get(variant_id) if outcome == OUTCOME_SEND else None,
                }
            )
    return result


def _count(result: DryRun, outcome: str, rule: str, variant: str | None, count: int) -> None:
    result.audience += count
    if outcome == OUTCOME_OPTED_OUT:
        result.opted_out += count
    elif outcome == OUTCOME_NO_IDENTITY:
        result.no_identity += count
    elif outcome == OUTCOME_GROUP_BLOCKED:
        result.group_blocked += count
    elif outcome == OUTCOME_CAPPED:
        result.capped_by_rule[rule] = result.capped_by_rule.get(rule, 0) + count
    elif outcome == OUTCOME_DEFERRED:
        result.deferred_by_rule[rule] = result.deferred_by_rule.get(rule, 0) + count
    elif outcome == OUTCOME_HOLDOUT:
        result.holdout += count
    else:
        result.would_send += count
        if variant is not None:
            result.per_variant[variant] = result.per_variant.get(variant, 0) + count
