"""What a launch would cost beyond the dry run's counts, written nowhere: for the customers it
would send to now (judged as the dry run and planning judge them, by the same SQL), how many
WeCom tasks each staff member would have to confirm, with the campaign's texts and with shared
texts, and which other campaigns' holdouts (control groups still being measured) they are in.

A WeCom task carries one text (`dispatch.call_layout`): a variant naming a customer variable
such as {{ display_name }} becomes one task per sender and value, so one task per customer."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from campaigns.models import Campaign, Channel
from campaigns.services.campaigns import campaign_audience
from campaigns.services.dispatch import call_layout
from campaigns.services.planning import group_audience_sql, judged_ctes, named_params
from campaigns.services.reservation import applicable_rules, judged_verdicts_sql, verdict_sql
from campaigns.services.templates import CUSTOMER_VARIABLES, template_variables
from segments.rules import RULE_SESSION_SQL

# Other campaigns' holdouts named at most (the largest overlaps).
HOLDOUT_CAMPAIGNS_SHOWN = 3


@dataclass(frozen=True)
class StaffTasks:
    """The WeCom tasks one staff member (None: customers without an owner) would confirm."""

    staff_id: int | None
    staff_name: str
    recipients: int
    tasks: int
    shared_tasks: int  # were every text shared (no customer variable)


@dataclass(frozen=True)
class HoldoutOverlap:
    """Recipients of this launch in another campaign's holdout, measured still."""

    campaign_id: int
    campaign_name: str
    recipients: int


@dataclass
class LaunchCheck:
    would_send: int = 0
    personal_variables: list[str] = field(default_factory=list)  # customer variables used
    staff_tasks: list[StaffTasks] = field(default_factory=list)  # WeCom campaigns only
    holdout_overlaps: list[HoldoutOverlap] = field(default_factory=list)

    @property
    def tasks(self) -> int:
        return sum(staff.tasks for staff in self.staff_tasks)

    @property
    def shared_tasks(self) -> int:
        return sum(staff.shared_tasks for staff in self.staff_tasks)


def _recipients_sql(campaign: Campaign, at: datetime) -> tuple[str, dict[str, Any]]:
    """The statement answering the customers a launch at `at` would send to now, with their
    variant and group chat: the dry run's outcome "send"."""
    variants = list(campaign.variants.order_by("name", "id").values_list("id", "weight"))
    audience_sql, params = named_params(campaign_audience(campaign, at=at))
    is_by_chat = campaign.channel == Channel.WECOM_GROUP
    if is_by_chat:
        audience_sql = group_audience_sql(audience_sql)
    verdicts, verdict_params = verdict_sql(
        applicable_rules(campaign),
        at,
        customers="d.customer_id IN (SELECT customer_id FROM b)",
        is_consent_checked=True,
    )
    params.update(verdict_params)
    params.update({"salt": campaign.salt, "consent_channel": campaign.consent_channel})
    tail = f""",
        b AS (
            SELECT customer_id AS id, customer_id, is_holdout, group_id,
                   %(at)s::timestamptz AS first_due_at
            FROM judged WHERE is_reachable AND NOT is_opted_out
        ),
        {judged_verdicts_sql(verdicts, is_by_chat=is_by_chat)}
        SELECT j.customer_id, j.variant_id, j.group_id
        FROM judged j JOIN v ON v.id = j.customer_id
        WHERE v.until IS NULL AND NOT v.is_left AND NOT v.is_group_blocked AND NOT j.is_holdout
    """  # noqa: S608 - this package's SQL
    return judged_ctes(campaign, audience_sql, variants) + tail, params


def _tasks_sql(campaign: Campaign) -> tuple[str, dict[str, int]]:
    """Tasks per sender over the table `launch_recipients`: each (variant, text) of a sender
    is a task of up to the channel's size, customers (or, by chat, group chats)."""
    layout = call_layout(campaign)
    keys = [
        f"WHEN {int(variant_id)} THEN ARRAY[{', '.join(f'c.{name}::text' for name in names)}]::text"
        for variant_id, names in layout.key_columns.items()
        if names
    ]
    text_key = f"CASE r.variant_id {' '.join(keys)} ELSE '' END" if keys else "''"
    size = layout.sizes[0] if layout.sizes else 1
    if layout.is_by_chat:  # the chat's owner posts it, one unit per chat
        sender, unit, joins = "g.owner_id", "r.group_id", "JOIN crm_group g ON g.id = r.group_id"
    else:  # the customer's owner sends it
        sender, unit, joins = "c.owner_id", "r.customer_id", ""
    statement = f"""
        WITH texts AS (
            SELECT coalesce({sender}, 0) AS sender_key, r.variant_id, {text_key} AS text_key,
                   count(*) AS recipients, count(DISTINCT {unit}) AS units
            FROM launch_recipients r JOIN crm_customer c ON c.id = r.customer_id {joins}
            GROUP BY 1, 2, 3
        ),
        own AS (
            SELECT sender_key, sum(recipients) AS recipients,
                   sum(ceil(units::numeric / %(size)s)) AS tasks
            FROM texts GROUP BY 1
        ),
        shared AS (
            SELECT sender_key, sum(ceil(units::numeric / %(size)s)) AS tasks
            FROM (SELECT sender_key, variant_id, sum(units) AS units FROM texts GROUP BY 1, 2) x
            GROUP BY 1
        )
        SELECT nullif(o.sender_key, 0), coalesce(nullif(m.name, ''), m.wecom_userid, ''),
               o.recipients::bigint, o.tasks::bigint, s.tasks::bigint
        FROM own o JOIN shared s USING (sender_key)
        LEFT JOIN crm_staffmember m ON m.id = o.sender_key
        ORDER BY 4 DESC, 2, 1
    """  # noqa: S608 - this module's SQL and integers
    return statement, {"size": size}


# Holdout deliveries of other campaigns, not cancelled, whose conversion window is still open:
# their control group is still being measured. Index delivery_unique (customer, campaign, step)
# finds each recipient's deliveries.
_HOLDOUT_SQL = """
    SELECT d.campaign_id, c.name, count(DISTINCT d.customer_id)
    FROM launch_recipients r
    JOIN campaigns_delivery d ON d.customer_id = r.customer_id AND d.is_holdout
    JOIN campaigns_campaign c ON c.id = d.campaign_id
    WHERE d.campaign_id <> %s AND c.state <> 'cancelled'
      AND coalesce(d.reserved_at, d.planned_at)
          >= %s - c.conversion_window_days * interval '1 day'
    GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT %s
"""


def campaign_launch_check(*, campaign: Campaign, at: datetime) -> LaunchCheck:
    contents = campaign.variants.values_list("content", flat=True)
    used = {name for content in contents for name in template_variables(content)}
    result = LaunchCheck(personal_variables=[n for n in CUSTOMER_VARIABLES if n in used])
    statement, params = _recipients_sql(campaign, at)
    is_wecom = campaign.channel in (Channel.WECOM_CUSTOMER, Channel.WECOM_GROUP)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(RULE_SESSION_SQL)
        cursor.execute("DROP TABLE IF EXISTS launch_recipients")  # an earlier check's
        cursor.execute(
            f"CREATE TEMPORARY TABLE launch_recipients ON COMMIT DROP AS {statement}", params
        )
        cursor.execute("SELECT count(*) FROM launch_recipients")
        (result.would_send,) = cursor.fetchone()
        if is_wecom and result.would_send:
            cursor.execute(*_tasks_sql(campaign))
            result.staff_tasks = [StaffTasks(*row) for row in cursor.fetchall()]
        if result.would_send:
            cursor.execute(_HOLDOUT_SQL, [campaign.pk, at, HOLDOUT_CAMPAIGNS_SHOWN])
            result.holdout_overlaps = [HoldoutOverlap(*row) for row in cursor.fetchall()]
    return result
