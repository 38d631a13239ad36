"""Reservation: the step that decides, just before a send, whether it may go. For one batch of
a campaign's due deliveries, in one transaction: consent is checked again, and every frequency
rule that applies is checked and consumed, so that no customer ever exceeds a cap even when
several campaigns reserve at once on several workers.

How that holds: before counting, a batch takes the advisory lock of every bucket of customer
ids its customers fall in (CUSTOMER_BUCKET ids each), in ascending order, so two transactions
reserving for one customer take turns (and never deadlock), and the second counts the first's
reservation (a new statement, a new snapshot, under READ COMMITTED). Buckets rather than one
lock per customer: a launch's batches are bucket-aligned, so each takes one lock where a
million row locks cost some 5 µs each, and two campaigns launched together still work side by
side, one bucket apart. A reservation counts at `reserved_at` (the moment it is made) for as
long as its delivery is reserved, submitted or sent (`COUNTED_STATUSES`).

The verdict for each delivery is computed in SQL: suppressed (opted out; capped by a skipping
rule; deferred past a rule's maximum delay), deferred (pending again, due when the window frees
up), held out (a holdout member who would have been sent now: it does not count), or reserved.
The same statement writes the calls the reserved deliveries will go out in and assigns each its
call (see `campaigns.services.dispatch`), so that dispatching rewrites no delivery.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns import enqueue
from campaigns.models import (
    COUNTED_STATUSES,
    Campaign,
    CampaignState,
    Channel,
    DeliveryReason,
    DeliveryStatus,
    FrequencyRule,
    OnHit,
    RuleScope,
    WindowKind,
)
from campaigns.services.dispatch import CallLayout, call_layout
from core.locks import Lock, xact_lock_all
from crm.selectors.consents import opted_out_sql

logger = logging.getLogger(__name__)

# Outcomes reported by status; the others (suppressed, deferred) by their reason.
_COUNTED_BY_STATUS = (DeliveryStatus.RESERVED, DeliveryStatus.HELD_OUT)

# Deliveries judged per transaction: the fixed cost of a batch (a dozen statements) shrinks
# to nothing per delivery, while the customers' locks are still held for a fraction of a
# second. Reserved ones are dispatched in tasks of whole calls, DISPATCH_BATCH_SIZE
# deliveries or so each (a call larger than that is a task of its own).
RESERVE_BATCH_SIZE = 5000
DISPATCH_BATCH_SIZE = 1000
CUSTOMER_BUCKET = 20_000
# Batch statements (arrays, CTEs) are planned for far more rows than a batch holds, which sets
# off JIT compilation: it took 0.9 s of a 1.3 s planning statement for 20,000 customers.
# Every batch transaction of the pipeline runs this first.
NO_JIT_SQL = "SET LOCAL jit = off"


@dataclass
class ReserveOutcome:
    # The ids of the deliveries reserved by a reservation batch (planning counts them only).
    reserved_ids: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # delivery status (or reason) -> n
    sends: dict[int, int] = field(default_factory=dict)  # ChannelSend id -> deliveries
    is_exhausted: bool = True  # nothing more is due now


def applicable_rules(campaign: Campaign) -> list[FrequencyRule]:
    """The active rules that judge a send of this campaign: all-channel rules, its channel's,
    and those of its labels. None when the campaign does not respect caps."""
    if not campaign.respects_caps:
        return []
    scope = Q(scope=RuleScope.ALL_CHANNELS) | Q(scope=RuleScope.CHANNEL, channel=campaign.channel)
    if campaign.labels:
        scope |= Q(scope=RuleScope.LABEL, label__in=campaign.labels)
    return list(FrequencyRule.objects.filter(scope, is_active=True).order_by("id"))


def _scope_condition(rule: FrequencyRule, params: dict[str, Any], index: int) -> str:
    """A condition on the counted campaign `c`: its sends are in the rule's scope."""
    if rule.scope == RuleScope.CHANNEL:
        params[f"channel{index}"] = rule.channel
        return f"c.channel = %(channel{index})s"
    if rule.scope == RuleScope.LABEL:
        params[f"label{index}"] = rule.label
        return f"%(label{index})s = ANY(c.labels)"
    return "TRUE"


# Which counted sends to read: those of the batch's customers, given as a sorted array, so
# that the planner reads one range of delivery_counted_by_customer (or probes it per id).
BATCH_CUSTOMERS = "d.customer_id = ANY(%(customers)s) AND d.customer_id BETWEEN %(lo)s AND %(hi)s"


def customer_params(customer_ids: list[int]) -> dict[str, Any]:
    """The params of BATCH_CUSTOMERS."""
    ordered = sorted(customer_ids)
    return {
        "customers": ordered,
        "lo": ordered[0] if ordered else 0,
        "hi": ordered[-1] if ordered else 0,
    }


def verdict_sql(
    rules: list[FrequencyRule],
    at: datetime,
    *,
    customers: str = BATCH_CUSTOMERS,
    is_consent_checked: bool = False,
) -> tuple[str, dict[str, Any]]:
    """A query over the batch `b(id, customer_id, is_holdout, first_due_at)` answering, per
    delivery: `is_opted_out`; `until`, NULL when no rule holds the send back, 'infinity' when a
    rule refuses it, else when the latest window it hits frees up; the `rule_id` that set
    `until`; `is_delay_exceeded` when that rule defers but not that long; and `latest`, the
    latest time the deferring rules that hold the send back allow it (NULL: none does).
    Judged at `at`.
    `customers` is a condition on `d.customer_id` naming (at least) the batch's customers.
    `is_consent_checked`: the batch holds no opted-out customer (the same statement judged
    consent already), so it is not read again."""
    params: dict[str, Any] = {"at": at}
    counts: list[str] = []
    holds: list[str] = []
    picks: list[tuple[str, int, bool]] = []
    latests: list[str] = []
    for index, rule in enumerate(rules):
        params[f"start{index}"] = rule.window_start(at)
        # A send holds a rolling window for its length from the moment it is reserved, so the
        # window at `at` excludes its start (a send made exactly N hours ago has left, as
        # `window_frees_at` promises); a calendar window includes its start.
        after = ">" if rule.window_kind == WindowKind.ROLLING else ">="
        scope = _scope_condition(rule, params, index)
        in_window = f"d.reserved_at {after} %(start{index})s AND {scope}"
        counts.append(f"count(*) FILTER (WHERE {in_window}) AS n{index}")
        if rule.window_kind == WindowKind.ROLLING:
            counts.append(
                f"array_agg(d.reserved_at ORDER BY d.reserved_at) FILTER (WHERE {in_window})"
                f" AS sent{index}"
            )
            # Room again once the count falls below the maximum: when the (n - max + 1)-th
            # oldest send leaves (the oldest, unless sends made before the rule existed, or by
            # a campaign ignoring caps, overfill the window).
            frees = (
                f"k.sent{index}[k.n{index} - {int(rule.max_count)} + 1]"
                f" + interval '{int(rule.window_hours or 0)} hours'"
            )
        else:
            params[f"frees{index}"] = rule.window_frees_at(at, at)
            frees = f"%(frees{index})s::timestamptz"
        if rule.on_hit == OnHit.SKIP:
            until = "'infinity'::timestamptz"
        else:
            params[f"delay{index}"] = timedelta(hours=rule.max_delay_hours or 0)
            latests.append(
                f"CASE WHEN k.n{index} >= {int(rule.max_count)}"
                f" THEN b.first_due_at + %(delay{index})s END"
            )
            until = (
                f"CASE WHEN {frees} > b.first_due_at + %(delay{index})s"
                f" THEN 'infinity'::timestamptz ELSE {frees} END"
            )
        holds.append(f"CASE WHEN k.n{index} >= {int(rule.max_count)} THEN {until} END AS u{index}")
        picks.append((f"WHEN h.u{index} = g.until", int(rule.pk), rule.on_hit == OnHit.DEFER))
    if not rules:
        until_sql = "SELECT NULL::timestamptz AS until, NULL::bigint AS rule_id,"
        until_sql += " FALSE AS is_delay_exceeded, NULL::timestamptz AS latest"
        judging = f"CROSS JOIN LATERAL ({until_sql}) AS j"
    else:
        params["window"] = min(rule.window_start(at) for rule in rules)
        counted = ", ".join(f"'{status}'" for status in COUNTED_STATUSES)
        judging = f"""
            LEFT JOIN (
                SELECT d.customer_id, {", ".join(counts)}
                FROM campaigns_delivery d  -- index delivery_counted_by_customer
                JOIN campaigns_campaign c ON c.id = d.campaign_id AND c.counts_toward_caps
                WHERE {customers} AND d.status IN ({counted})
                  AND d.reserved_at >= %(window)s
                GROUP BY d.customer_id
            ) AS k ON k.customer_id = b.customer_id
            CROSS JOIN LATERAL (SELECT {", ".join(holds)}) AS h
            CROSS JOIN LATERAL (
                SELECT GREATEST({", ".join(f"h.u{i}" for i in range(len(rules)))}) AS until
            ) AS g
            CROSS JOIN LATERAL (
                SELECT g.until, CASE {" ".join(f"{w} THEN {pk}" for w, pk, _d in picks)} END
                           AS rule_id,
                       g.until = 'infinity' AND coalesce(
                           CASE {" ".join(f"{w} THEN {d}" for w, _pk, d in picks)} END, FALSE)
                           AS is_delay_exceeded,
                       {f"LEAST({', '.join(latests)})" if latests else "NULL::timestamptz"}
                           AS latest
            ) AS j
        """  # noqa: S608 - this module's SQL, integers and placeholders
    opted_out, consent = "FALSE", ""
    if not is_consent_checked:
        opted_out = "co.customer_id IS NOT NULL"
        consent = f"""
        LEFT JOIN ({opted_out_sql(channel_param="consent_channel")}) AS co
               ON co.customer_id = b.customer_id  -- index consent_unique_channel"""
    sql = f"""
        SELECT b.id, b.is_holdout, {opted_out} AS is_opted_out,
               j.until, j.rule_id, j.is_delay_exceeded, j.latest
        FROM b {consent}
        {judging}
    """  # noqa: S608 - this module's SQL
    return sql, params


def group_verdicts_sql(verdicts: str) -> str:
    """The verdicts of a group-chat campaign's batch, whole chats (see `verdict_sql` for
    `verdicts`; the batch `b` also has group_id): a message posted in a chat reaches every
    member, so one member refused (opted out, capped) refuses the whole chat, one deferred
    defers it to the latest member's time, and a chat someone joined since planning (who has
    no delivery in it) is not sent to; nor is one deferred past a member's rule's maximum delay
    (that member is `is_delay_exceeded`). A member who left the chat is not reached by it: it is
    judged apart, `is_left`. The others held back by the chat are `is_group_blocked`: all of a
    refused chat's members not refused themselves, and a deferred chat's members not deferred
    themselves."""
    return f"""
        v0 AS ({verdicts}),
        members AS (
            SELECT b.id, b.group_id,
                   (SELECT TRUE FROM crm_groupmembership gm  -- index group_membership_one_open
                    WHERE gm.group_id = b.group_id AND gm.customer_id = b.customer_id
                      AND gm.left_at IS NULL) IS NULL AS is_left
            FROM b
        ),
        joined AS (
            SELECT DISTINCT gm.group_id FROM crm_groupmembership gm
            WHERE gm.group_id IN (SELECT group_id FROM b) AND gm.left_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM b x
                              WHERE x.group_id = gm.group_id AND x.customer_id = gm.customer_id)
        ),
        chat AS (
            SELECT m.group_id,
                   coalesce(bool_or(v.is_opted_out OR v.until = 'infinity')
                            FILTER (WHERE NOT m.is_left), FALSE)
                   OR m.group_id IN (SELECT group_id FROM joined)
                   OR coalesce(max(v.until) FILTER (WHERE NOT m.is_left)
                               > min(v.latest) FILTER (WHERE NOT m.is_left), FALSE)
                       AS is_refused,
                   max(v.until) FILTER (WHERE NOT m.is_left) AS until
            FROM v0 v JOIN members m USING (id) GROUP BY m.group_id
        ),
        v AS (
            SELECT v.id, v.is_holdout, v.is_opted_out,
                   CASE WHEN m.is_left OR v.is_opted_out OR v.until = 'infinity' THEN v.until
                        WHEN c.is_refused THEN 'infinity'::timestamptz
                        ELSE c.until END AS until,
                   v.rule_id, v.is_delay_exceeded OR t.is_too_late AS is_delay_exceeded,
                   v.latest,
                   NOT m.is_left AND NOT v.is_opted_out AND v.until IS DISTINCT FROM 'infinity'
                       AND NOT t.is_too_late
                       AND (c.is_refused OR (v.until IS NULL AND c.until IS NOT NULL))
                       AS is_group_blocked,
                   m.is_left
            FROM v0 v JOIN members m USING (id) JOIN chat c USING (group_id)
            -- would the chat's time pass this member's own rules' maximum delay
            CROSS JOIN LATERAL (SELECT coalesce(v.latest < c.until, FALSE) AS is_too_late) t
        )"""  # noqa: S608 - this module's SQL


def judged_verdicts_sql(verdicts: str, *, is_by_chat: bool) -> str:
    """CTEs ending in `v`: the verdicts (see `verdict_sql`) with `is_group_blocked` and
    `is_left`, judged whole chats `is_by_chat` (see `group_verdicts_sql`)."""
    if is_by_chat:
        return group_verdicts_sql(verdicts)
    return f"""v0 AS ({verdicts}),
        v AS (SELECT *, FALSE AS is_group_blocked, FALSE AS is_left FROM v0)"""  # noqa: S608


def calls_sql(source: str, layout: CallLayout) -> str:
    """CTEs writing the calls of the batch's reserved deliveries and answering `assigned
    (customer_id, channel_send_id)`. `source` names a CTE of the batch with customer_id,
    status, sender_id, variant_id and group_id. A call holds up to `size` deliveries, or with
    `layout.is_by_chat` up to `size` group chats (all the deliveries of each). Calls are
    numbered from their table's sequence first, so that deliveries and calls are written in
    one statement (a delivery's call is read from the sequence's numbers, not from the call's
    RETURNING). Named params: campaign, channel, and those of `layout.params()`."""
    keys = [
        f"WHEN {int(variant_id)} THEN ARRAY[{', '.join(f'c.{c}::text' for c in columns)}]::text"
        for variant_id, columns in layout.key_columns.items()
        if columns
    ]
    key_sql, customers = "''", ""
    rank, unit = (
        ("dense_rank", "s.group_id") if layout.is_by_chat else ("row_number", "s.customer_id")
    )
    if keys:  # the customer's values of the variables the variant names
        key_sql = f"CASE s.variant_id {' '.join(keys)} ELSE '' END"
        customers = "LEFT JOIN crm_customer c ON c.id = s.customer_id"
    return f"""
        , layout AS (
            SELECT * FROM unnest(%(layout_variants)s::bigint[], %(layout_sizes)s::int[],
                                 %(layout_texts)s::text[]) AS l(variant_id, size, text)
        ),
        keyed AS (
            SELECT s.customer_id, s.sender_id, s.variant_id, s.group_id, {key_sql} AS text_key
            FROM {source} s {customers}
            WHERE s.status = '{DeliveryStatus.RESERVED}'
        ),
        parted AS (
            SELECT s.customer_id, coalesce(s.sender_id, 0) AS sender_key, s.variant_id,
                   s.text_key,
                   ({rank}() OVER (PARTITION BY s.sender_id, s.variant_id, s.text_key
                                   ORDER BY {unit}) - 1) / l.size AS part
            FROM keyed s JOIN layout l ON l.variant_id = s.variant_id
        ),
        calls AS MATERIALIZED (
            SELECT nextval(pg_get_serial_sequence('campaigns_channelsend', 'id')) AS id, g.*
            FROM (SELECT DISTINCT sender_key, variant_id, text_key, part FROM parted) AS g
        ),
        written_calls AS (
            INSERT INTO campaigns_channelsend (
                id, campaign_id, channel, sender_id, content, state, external_id, error,
                attempts, requested_at)
            SELECT k.id, %(campaign)s, %(channel)s, nullif(k.sender_key, 0), l.text,
                   'requested', '', '', 0, now()
            FROM calls k JOIN layout l ON l.variant_id = k.variant_id
        ),
        assigned AS (
            SELECT p.customer_id, k.id AS channel_send_id
            FROM parted p JOIN calls k USING (sender_key, variant_id, text_key, part)
        )
    """  # noqa: S608 - this module's SQL


def _apply_sql(verdicts: str, layout: CallLayout) -> str:
    """Update the batch's deliveries from their verdicts and assign the reserved ones their
    calls, answering (id, status, reason, channel_send_id). A group-chat campaign's are
    judged whole chats (`group_verdicts_sql`)."""
    return f"""
        , {judged_verdicts_sql(verdicts, is_by_chat=layout.is_by_chat)},
        decided AS (
            SELECT v.id, b.customer_id, b.sender_id, b.variant_id, b.group_id,
                CASE
                    WHEN v.is_left OR v.is_opted_out OR v.until = 'infinity'
                        THEN '{DeliveryStatus.SUPPRESSED}'
                    WHEN v.until IS NOT NULL THEN '{DeliveryStatus.PENDING}'
                    WHEN v.is_holdout THEN '{DeliveryStatus.HELD_OUT}'
                    ELSE '{DeliveryStatus.RESERVED}' END AS status,
                CASE
                    WHEN v.is_opted_out THEN '{DeliveryReason.OPTED_OUT}'
                    WHEN v.is_left THEN '{DeliveryReason.NO_IDENTITY}'
                    WHEN v.is_group_blocked THEN '{DeliveryReason.GROUP_BLOCKED}'
                    WHEN v.is_delay_exceeded THEN '{DeliveryReason.CAP_DELAY_EXCEEDED}'
                    WHEN v.until IS NOT NULL THEN '{DeliveryReason.CAPPED}'
                    END AS reason,  -- NULL: kept
                CASE WHEN v.is_opted_out OR v.is_left OR v.is_group_blocked THEN NULL
                     ELSE v.rule_id END AS rule_id,
                CASE WHEN NOT v.is_opted_out AND NOT v.is_left AND v.until <> 'infinity'
                     THEN v.until END AS due_at,  -- NULL: kept
                CASE WHEN NOT v.is_opted_out AND NOT v.is_left AND v.until IS NULL
                     THEN %(at)s::timestamptz END AS reserved_at
            FROM v JOIN b ON b.id = v.id
        )
        {calls_sql("decided", layout)},
        written AS (
        UPDATE campaigns_delivery d SET
            status = x.status, reason = coalesce(x.reason, d.reason), rule_id = x.rule_id,
            sender_id = x.sender_id,
            due_at = coalesce(x.due_at, d.due_at), reserved_at = x.reserved_at,
            channel_send_id = x.channel_send_id
        FROM (decided LEFT JOIN assigned USING (customer_id)) AS x
        WHERE d.id = x.id AND d.id = ANY(%(ids)s)  -- the primary key, not a scan of the table
        RETURNING d.id, d.status, d.reason, d.channel_send_id
    ) {tally_sql(with_ids=True)}"""  # noqa: S608 - this module's SQL


def deliveries_reserve_batch(*, campaign_id: int, at: datetime | None = None) -> ReserveOutcome:
    """Reserve up to one batch of the campaign's due deliveries, in one transaction. Answers
    the ids reserved (to dispatch after commit) and whether more are due now."""
    at = at or timezone.now()
    outcome = ReserveOutcome()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None or campaign.state != CampaignState.SENDING:
            return outcome
        with connection.cursor() as cursor:
            cursor.execute(NO_JIT_SQL)
            quiet_until = campaign.quiet_until(at)
            if quiet_until is not None:
                # rule_id goes with reason: a send deferred by a rule now waits for the hours.
                cursor.execute(
                    """
                    UPDATE campaigns_delivery SET due_at = %s, reason = %s, rule_id = NULL
                    WHERE campaign_id = %s AND status = 'pending' AND due_at <= %s
                    """,  # index delivery_pending_due
                    [quiet_until, DeliveryReason.QUIET_HOURS, campaign.pk, at],
                )
                outcome.counts[DeliveryReason.QUIET_HOURS] = cursor.rowcount
                return outcome
            limit = _throttle_allowance(campaign, at)
            if limit == 0:
                outcome.is_exhausted = False
                return outcome
            cursor.execute(_batch_sql(campaign), [campaign.pk, at, limit])
            batch = cursor.fetchall()
            if not batch:
                return outcome
            ids = [row[0] for row in batch]
            customer_ids = [row[1] for row in batch]
            rules = applicable_rules(campaign)
            if rules or campaign.counts_toward_caps:
                lock_customers(customer_ids)
            verdicts, params = verdict_sql(rules, at)
            layout = call_layout(campaign)
            params.update(customer_params(customer_ids))
            params.update(
                {
                    "ids": ids,
                    "batch_customers": customer_ids,
                    "holdouts": [row[2] for row in batch],
                    "first_due": [row[3] for row in batch],
                    "variants": [row[4] for row in batch],
                    "senders": [row[5] for row in batch],
                    "groups": [row[6] for row in batch],
                    "consent_channel": campaign.consent_channel,
                    "campaign": campaign.pk,
                    "channel": campaign.channel,
                    **layout.params(),
                }
            )
            batch_cte = (
                "WITH b AS (SELECT * FROM unnest(%(ids)s::bigint[], %(batch_customers)s::bigint[],"
                " %(holdouts)s::boolean[], %(first_due)s::timestamptz[], %(variants)s::bigint[],"
                " %(senders)s::bigint[], %(groups)s::bigint[])"
                " AS b(id, customer_id, is_holdout, first_due_at, variant_id, sender_id,"
                " group_id))"
            )
            cursor.execute(batch_cte + _apply_sql(verdicts, layout), params)
            tally(outcome, cursor.fetchall())
            if campaign.throttle_per_minute is not None:
                Campaign.objects.filter(pk=campaign.pk).update(
                    throttle_minute=at.replace(second=0, microsecond=0),
                    throttle_used=campaign.throttle_used + len(batch),
                )
            outcome.is_exhausted = len(batch) < limit
            dispatch_after_commit(outcome)
    logger.info(
        "campaign.reserved",
        extra={"campaign_id": campaign_id, "batch": len(batch), **outcome.counts},
    )
    return outcome


def _batch_sql(campaign: Campaign) -> str:
    """The next batch of the campaign's due deliveries, locked (params: campaign, at, limit):
    up to `limit` of them in order of due time and sender, or for a group-chat campaign, whole
    chats, the first ones due until `limit` deliveries are reached (at least one chat), each
    sent by its owner now (the owner may have changed since planning)."""
    if campaign.channel != Channel.WECOM_GROUP:
        return """
            SELECT id, customer_id, is_holdout, first_due_at, variant_id, sender_id, group_id
            FROM campaigns_delivery
            WHERE campaign_id = %s AND status = 'pending' AND due_at <= %s
            ORDER BY due_at, sender_id, id LIMIT %s
            FOR UPDATE SKIP LOCKED
        """  # index delivery_pending_due
    # One worker reserves a campaign at a time (its row is locked), so no chat is split. A
    # delivery without a chat (none is planned so) would be one of its own.
    return """
        WITH due AS (
            SELECT id, due_at, coalesce(group_id, -id) AS chat FROM campaigns_delivery
            WHERE campaign_id = %s AND status = 'pending' AND due_at <= %s
        ),
        chats AS (
            SELECT chat, sum(count(*)) OVER (ORDER BY min(due_at), chat) - count(*) AS before
            FROM due GROUP BY chat
        )
        SELECT d.id, d.customer_id, d.is_holdout, d.first_due_at, d.variant_id,
               (SELECT g.owner_id FROM crm_group g WHERE g.id = d.group_id) AS sender_id,
               d.group_id
        FROM campaigns_delivery d
        WHERE d.id IN (SELECT id FROM due WHERE chat IN (SELECT chat FROM chats WHERE before < %s))
          AND d.status = 'pending'
        ORDER BY d.due_at, d.group_id, d.id
        FOR UPDATE OF d
    """


def lock_customers(customer_ids: list[int]) -> None:
    """Take, until the transaction ends, the lock of every bucket these customers fall in, in
    ascending order."""
    xact_lock_all(
        Lock.CUSTOMER_BUCKET, {customer_id // CUSTOMER_BUCKET for customer_id in customer_ids}
    )


def tally_sql(*, with_ids: bool) -> str:
    """The end of a statement whose CTE `written` returns (id, status, reason,
    channel_send_id) of each delivery written: the deliveries counted per status, reason and
    call (and the reserved ones' ids `with_ids`), so that a batch of 20,000 comes back as a
    few rows (see `tally`)."""
    ids = (
        f"array_agg(id) FILTER (WHERE status = '{DeliveryStatus.RESERVED}')" if with_ids else "NULL"
    )
    return f"""
        SELECT status, reason, channel_send_id, count(*), {ids}
        FROM written GROUP BY status, reason, channel_send_id
    """  # noqa: S608 - this module's SQL


def tally(
    outcome: ReserveOutcome, rows: list[tuple[str, str, int | None, int, list[int] | None]]
) -> None:
    """Count judged deliveries (the rows of `tally_sql`) into `outcome`, keeping the reserved
    ones' calls for dispatch (and their ids, when the rows have them)."""
    for status, reason, channel_send_id, count, reserved_ids in rows:
        key = status if status in _COUNTED_BY_STATUS or not reason else reason
        outcome.counts[key] = outcome.counts.get(key, 0) + count
        if status == DeliveryStatus.RESERVED:
            if channel_send_id is None:
                raise RuntimeError(f"{count} reserved deliveries have no channel call")
            outcome.sends[channel_send_id] = outcome.sends.get(channel_send_id, 0) + count
            outcome.reserved_ids.extend(reserved_ids or [])


def dispatch_after_commit(outcome: ReserveOutcome) -> None:
    """Queue the calls `outcome` wrote, whole calls of about DISPATCH_BATCH_SIZE deliveries
    per task, once the caller's transaction commits."""
    task: list[int] = []
    size = 0
    for send_id, deliveries in sorted(outcome.sends.items()):
        task.append(send_id)
        size += deliveries
        if size >= DISPATCH_BATCH_SIZE:
            enqueue.channel_sends_run(channel_send_ids=task)
            task, size = [], 0
    if task:
        enqueue.channel_sends_run(channel_send_ids=task)


def _throttle_allowance(campaign: Campaign, at: datetime) -> int:
    """How many deliveries this batch may take under the campaign's throttle. It counts every
    delivery judged in the minute, sent or not, so that a minute's work stays bounded; the
    counter starts again each minute (`throttle_used` is reset in memory for the caller)."""
    if campaign.throttle_per_minute is None:
        return RESERVE_BATCH_SIZE
    if campaign.throttle_minute != at.replace(second=0, microsecond=0):
        campaign.throttle_used = 0
    return max(0, min(RESERVE_BATCH_SIZE, campaign.throttle_per_minute - campaign.throttle_used))
