"""Planning: freeze a campaign's audience into deliveries, one per customer, in one set-based
statement per batch of customer ids. Opted-out customers and those the channel cannot reach
are written as suppressed with their reason; the others are split into holdout and variants by
a stable salted hash of (campaign, customer), so that planning again, or a dry run, draws the
same split."""

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from campaigns.models import Campaign, CampaignState, Channel, DeliveryReason, DeliveryStatus
from campaigns.services.dispatch import CallLayout, call_layout
from campaigns.services.reservation import (
    CUSTOMER_BUCKET,
    NO_JIT_SQL,
    ReserveOutcome,
    applicable_rules,
    calls_sql,
    dispatch_after_commit,
    lock_customers,
    tally,
    tally_sql,
    verdict_sql,
)
from crm.selectors.consents import opted_out_sql
from segments.rules import RULE_SESSION_SQL, rule_members_sql

logger = logging.getLogger(__name__)

# Hash buckets for the holdout and the variant draws: fine enough for shares of 0.1 %.
BUCKETS = 100_000
# A launch plans one bucket of customer ids (reservation.CUSTOMER_BUCKET, up to 20,000
# customers) per transaction: its lock is held for a fraction of a second, and two campaigns
# planned at once over the same customers follow each other bucket by bucket instead of one
# waiting for the other to finish.
# The audience of one batch: the ids given as %(chunk)s, one comma-separated string (Django's
# cursor binds parameters client-side, formatting a list element by element: 20 ms for 20,000
# ids, against 6 ms for the string).
CHUNK_AUDIENCE = "SELECT unnest(string_to_array(%(chunk)s, ',')::bigint[]) AS customer_id"
# A group-chat campaign's audience, with each member's group chat (see `group_audience_sql`)
# given alike: %(chunk_groups)s, empty for none, and %(chunk_grouped)s, t or f.
CHUNK_GROUP_AUDIENCE = """
    SELECT unnest(string_to_array(%(chunk)s, ',')::bigint[]) AS customer_id,
           unnest(string_to_array(%(chunk_groups)s, ',', '')::bigint[]) AS group_id,
           unnest(string_to_array(%(chunk_grouped)s, ',')::boolean[]) AS is_grouped"""


@dataclass(frozen=True)
class Audience:
    """SQL answering `customer_id` for every audience member (no duplicates), and its params."""

    sql: str
    params: list[Any]


def audience_query(
    campaign: Campaign,
    *,
    include_ids: Sequence[int],
    exclude_ids: Sequence[int],
    as_of: datetime,
    candidates_sql: str | None = None,
    candidates_params: Sequence[Any] = (),
) -> Audience:
    """The members of any included segment (or, with none, every customer the extra rule
    matches), minus the members of any excluded segment, within the extra rule. With
    `candidates_sql` (a query answering `customer_id`) the audience is limited to those
    candidates: the customers a trigger fired for."""
    params: list[Any] = []
    if candidates_sql is not None:
        source = f"SELECT DISTINCT customer_id FROM ({candidates_sql}) AS cand"  # noqa: S608
        params.extend(candidates_params)
        if include_ids:
            source += (
                " WHERE EXISTS (SELECT 1 FROM segments_segmentmembership m"
                "  WHERE m.customer_id = cand.customer_id AND m.segment_id = ANY(%s))"
            )
            params.append(list(include_ids))
    elif include_ids:
        # Index membership_by_customer_seg is not used here: a segment's members are read
        # through segment_membership_unique (segment_id, customer_id).
        source = (
            "SELECT DISTINCT customer_id FROM segments_segmentmembership WHERE segment_id = ANY(%s)"
        )
        params.append(list(include_ids))
    else:
        assert campaign.extra_rule is not None, "a campaign has segments or an extra rule"
        source, rule_params = rule_members_sql(campaign.extra_rule, as_of=as_of)
        params.extend(rule_params)
    sql = f"SELECT a.customer_id FROM ({source}) AS a WHERE TRUE"  # noqa: S608
    if exclude_ids:
        sql += (
            " AND NOT EXISTS (SELECT 1 FROM segments_segmentmembership x"
            " WHERE x.customer_id = a.customer_id AND x.segment_id = ANY(%s))"
        )
        params.append(list(exclude_ids))
    if campaign.extra_rule is not None and (include_ids or candidates_sql is not None):
        rule_sql, rule_params = rule_members_sql(campaign.extra_rule, as_of=as_of)
        sql += f" AND a.customer_id IN ({rule_sql})"
        params.extend(rule_params)
    return Audience(sql=sql, params=params)


def group_audience_sql(audience_sql: str) -> str:
    """For a group-chat campaign: each audience member (`audience_sql` answers customer_id)
    with the WeCom group chat its message would go through, `group_id` (NULL when none may
    carry it), and whether it is in any WeCom group chat at all, `is_grouped`.

    A message posted in a group chat reaches every member, so a chat is sent to only when the
    audience covers it: each of its members now is in the audience and none opted out of the
    consent channel (named param consent_channel), and it has an owner to send it. A customer
    in two covered chats goes through the one with the lower id, and the other chat is not
    sent to (it would bring the customer the message twice). Frequency rules are judged per
    member at reservation, and hold back the whole chat (`reservation`)."""
    return f"""
        WITH aud AS MATERIALIZED ({audience_sql}),
        mem AS MATERIALIZED (
            SELECT gm.group_id, gm.customer_id, g.owner_id
            FROM crm_groupmembership gm JOIN crm_group g ON g.id = gm.group_id
            WHERE gm.left_at IS NULL AND g.kind = 'wecom_group'
        ),
        covered AS (
            SELECT m.group_id FROM mem m
            LEFT JOIN aud ON aud.customer_id = m.customer_id
            LEFT JOIN ({opted_out_sql(channel_param="consent_channel")}) AS co
                   ON co.customer_id = m.customer_id  -- index consent_unique_channel
            GROUP BY m.group_id
            HAVING bool_and(aud.customer_id IS NOT NULL AND co.customer_id IS NULL
                            AND m.owner_id IS NOT NULL)
        ),
        chosen AS (
            SELECT m.customer_id, min(m.group_id) AS group_id
            FROM mem m JOIN covered USING (group_id) GROUP BY m.customer_id
        ),
        clear AS (
            SELECT m.group_id FROM mem m JOIN chosen c USING (customer_id)
            WHERE m.group_id IN (SELECT group_id FROM covered)
            GROUP BY m.group_id HAVING bool_and(c.group_id = m.group_id)
        )
        SELECT aud.customer_id, ok.group_id, grouped.customer_id IS NOT NULL AS is_grouped
        FROM aud
        LEFT JOIN (SELECT customer_id, group_id FROM chosen JOIN clear USING (group_id)) AS ok
               ON ok.customer_id = aud.customer_id
        LEFT JOIN (SELECT DISTINCT customer_id FROM mem) AS grouped
               ON grouped.customer_id = aud.customer_id
    """  # noqa: S608 - the interpolated part is this package's SQL


def _facts(campaign: Campaign) -> dict[str, str]:
    """What is looked up per customer when judging: name -> SQL of a relation holding the
    customer_id of the customers with the fact."""
    facts = {"is_opted_out": opted_out_sql(channel_param="consent_channel")}
    if campaign.channel == Channel.WECOM_CUSTOMER:
        facts["is_reachable"] = "SELECT customer_id FROM crm_identity WHERE provider = 'wecom'"
    # A webhook receiver gets the customer id and looks the person up itself; a group chat's
    # members come with their chat (`group_audience_sql`).
    return facts


def _lookups(campaign: Campaign, *, ranged: bool) -> tuple[list[str], str]:
    """The judged columns of the facts (and, over a range, the message's sender), and the
    joins they need: is_opted_out, is_reachable, unreachable_reason (the delivery reason when
    not reachable), group_id (a group chat's, else NULL) and with `ranged` owner_id.

    Over one range of customer ids (`ranged`, params lo and hi: a planning batch), each table's
    range is read once and merged with the batch. Otherwise (the dry run's whole audience),
    each is a scalar subquery: one index probe per customer, which for a small audience is the
    cheapest, and never a hash of a whole table (an EXISTS may become one). Every piece is
    this module's SQL."""
    facts = _facts(campaign)
    columns: list[str] = []
    joins: list[str] = []
    for name, source in facts.items():
        if ranged:
            joins.append(
                f"LEFT JOIN (SELECT DISTINCT f.customer_id FROM ({source}) AS f"  # noqa: S608
                f" WHERE f.customer_id BETWEEN %(lo)s AND %(hi)s) AS {name}"
                f" ON {name}.customer_id = a.customer_id"
            )
            columns.append(f"{name}.customer_id IS NOT NULL AS {name}")
        else:
            columns.append(
                f"(SELECT TRUE FROM ({source}) AS f"  # noqa: S608
                f" WHERE f.customer_id = a.customer_id LIMIT 1) IS NOT NULL AS {name}"
            )
    if campaign.channel == Channel.WECOM_GROUP:
        columns += [
            "a.group_id IS NOT NULL AS is_reachable",
            "a.group_id",
            f"CASE WHEN a.is_grouped THEN '{DeliveryReason.GROUP_BLOCKED}'"
            f" ELSE '{DeliveryReason.NO_IDENTITY}' END AS unreachable_reason",
        ]
    else:
        if "is_reachable" not in facts:
            columns.append("TRUE AS is_reachable")
        columns += [
            "NULL::bigint AS group_id",
            f"'{DeliveryReason.NO_IDENTITY}' AS unreachable_reason",
        ]
    if ranged and campaign.channel == Channel.WECOM_GROUP:  # sent by the chat's owner
        joins.append("LEFT JOIN crm_group grp ON grp.id = a.group_id")
        columns.append("grp.owner_id AS owner_id")
    elif ranged:  # planning: the sender of a WeCom message is the customer's owner
        joins.append(
            "LEFT JOIN crm_customer c ON c.id = a.customer_id AND c.id BETWEEN %(lo)s AND %(hi)s"
        )
        columns.append("c.owner_id AS owner_id")
    return columns, "\n".join(joins)


def _bucket(draw: str, buckets: int, unit: str) -> str:
    """A number in [0, buckets) from the salted hash of `unit` (text: the customer id, or a
    group chat's; 64 bits, so the modulo's bias is nil); `draw` keeps the holdout and variant
    draws independent."""
    hashed = f"hashtextextended(%(salt)s || '{draw}' || {unit}, 0)"
    return f"(({hashed} %% {buckets}) + {buckets}) %% {buckets}"


def assignment_columns(campaign: Campaign, variants: Sequence[tuple[int, int]]) -> tuple[str, str]:
    """SQL for (is the customer held out, which variant id), on `a.customer_id`, from the
    campaign's salt: holdout when its bucket falls below the share, the variant by weight from
    a second, independent draw. `variants` are (id, weight) in a fixed order. A group chat's
    members share its draws (a message reaches the whole chat, or none of it)."""
    unit = "a.customer_id::text"
    if campaign.channel == Channel.WECOM_GROUP:
        unit = "coalesce('g' || a.group_id, a.customer_id::text)"
    share = int(campaign.holdout_share * BUCKETS)
    holdout = f"{_bucket(':h:', BUCKETS, unit)} < {share}" if share else "FALSE"
    total = sum(weight for _id, weight in variants)
    draw = _bucket(":v:", total, unit)
    whens, bound = [], 0
    for variant_id, weight in variants[:-1]:
        bound += weight
        whens.append(f"WHEN {draw} < {bound} THEN {int(variant_id)}")
    last = int(variants[-1][0])
    variant = f"CASE {' '.join(whens)} ELSE {last} END" if whens else str(last)
    return holdout, variant


def judged_ctes(
    campaign: Campaign,
    audience_sql: str,
    variants: Sequence[tuple[int, int]],
    *,
    ranged: bool = False,
) -> str:
    """`WITH a AS (...), judged AS (...)`: each audience member with whether they opted out of
    the campaign's consent channel, whether the channel can reach them, their draws, and (with
    `ranged`) their owner. Named params: salt, consent_channel, the audience's, and with
    `ranged` (an audience within ids lo..hi) lo and hi. Shared by planning and the dry run, so
    that both judge alike; `ranged` changes how the facts are read, not what they are."""
    holdout, variant = assignment_columns(campaign, variants)
    columns, joins = _lookups(campaign, ranged=ranged)
    return f"""
        WITH a AS MATERIALIZED ({audience_sql}),
        judged AS (
            SELECT a.customer_id, {", ".join(columns)},
                   {holdout} AS is_holdout,
                   {variant} AS variant_id
            FROM a
            {joins}
        )"""  # noqa: S608 - the interpolated parts are this module's SQL and integers


def _sender_sql(channel: str, alias: str) -> str:
    """The staff member a WeCom message goes out from: the customer's owner when planned."""
    if channel in (Channel.WECOM_CUSTOMER, Channel.WECOM_GROUP):
        return f"{alias}.owner_id"
    return "NULL::bigint"


def _unplanned(skip_planned: bool) -> str:
    """A WHERE on the judged batch `j`: with `skip_planned` (the campaign has deliveries
    already: a re-plan after a crash, a trigger's entrants), customers planned before are left
    out, one probe each; a first plan needs none (planning is one worker's at a time: the plan
    lock, or the campaign's row for entrants). So the insert needs no ON CONFLICT, whose
    speculative insertion costs half as much again as the row, and no call is written for a
    delivery that is not. A delivery written twice all the same breaks `delivery_unique`,
    rolling its batch back."""
    if not skip_planned:
        return ""
    return """
            WHERE (SELECT TRUE FROM campaigns_delivery x  -- index delivery_unique
                   WHERE x.customer_id = j.customer_id AND x.campaign_id = %(campaign)s
                     AND x.step = 0) IS NULL"""


def _insert_sql(
    campaign: Campaign, variants: Sequence[tuple[int, int]], *, skip_planned: bool
) -> str:
    """One statement writing the batch's deliveries pending (or suppressed), answering the rows
    of `tally_sql` (no call: none is reserved). Named params: campaign, due_at, quiet, and
    those of `judged_ctes`. See `_unplanned` for `skip_planned`."""
    tail = f""",
        written AS (
            INSERT INTO campaigns_delivery (
                customer_id, campaign_id, step, variant_id, is_holdout, status, reason,
                due_at, first_due_at, planned_at, attempts, error, sender_id, group_id)
            SELECT customer_id, %(campaign)s, 0,
                   CASE WHEN is_opted_out OR NOT is_reachable OR NOT is_holdout
                        THEN variant_id END,
                   is_holdout AND NOT is_opted_out AND is_reachable,
                   CASE WHEN is_opted_out OR NOT is_reachable THEN '{DeliveryStatus.SUPPRESSED}'
                        ELSE '{DeliveryStatus.PENDING}' END,
                   CASE WHEN is_opted_out THEN '{DeliveryReason.OPTED_OUT}'
                        WHEN NOT is_reachable THEN unreachable_reason
                        WHEN %(quiet)s THEN '{DeliveryReason.QUIET_HOURS}'
                        ELSE '' END,
                   %(due_at)s, %(due_at)s, now(), 0, '', {_sender_sql(campaign.channel, "j")},
                   group_id
            FROM judged j{_unplanned(skip_planned)}
            RETURNING id, status, reason, channel_send_id
        ) {tally_sql(with_ids=False)}"""  # noqa: S608 - this package's SQL and integers
    chunk = CHUNK_GROUP_AUDIENCE if campaign.channel == Channel.WECOM_GROUP else CHUNK_AUDIENCE
    return judged_ctes(campaign, chunk, variants, ranged=True) + tail


def _insert_judged_sql(
    campaign: Campaign,
    variants: Sequence[tuple[int, int]],
    verdicts: str,
    layout: CallLayout,
    *,
    skip_planned: bool,
) -> str:
    """Write a batch's deliveries with their verdicts (see `reservation.verdict_sql`) and the
    calls of the reserved ones (`reservation.calls_sql`), answering the rows of `tally_sql`.
    See `_unplanned` for `skip_planned`."""
    tail = f""",
        b AS (
            SELECT customer_id AS id, customer_id, is_holdout,
                   %(at)s::timestamptz AS first_due_at
            FROM judged WHERE is_reachable AND NOT is_opted_out
        ),
        v AS ({verdicts}),
        decided AS (
            SELECT j.customer_id,
                   CASE WHEN j.is_opted_out OR NOT j.is_reachable OR NOT j.is_holdout
                        THEN j.variant_id END AS variant_id,
                   j.is_holdout AND NOT j.is_opted_out AND j.is_reachable AS is_holdout,
                   CASE WHEN j.is_opted_out OR NOT j.is_reachable OR v.is_opted_out
                             OR v.until = 'infinity' THEN '{DeliveryStatus.SUPPRESSED}'
                        WHEN v.until IS NOT NULL THEN '{DeliveryStatus.PENDING}'
                        WHEN j.is_holdout THEN '{DeliveryStatus.HELD_OUT}'
                        ELSE '{DeliveryStatus.RESERVED}' END AS status,
                   CASE WHEN j.is_opted_out OR v.is_opted_out THEN '{DeliveryReason.OPTED_OUT}'
                        WHEN NOT j.is_reachable THEN j.unreachable_reason
                        WHEN v.is_delay_exceeded THEN '{DeliveryReason.CAP_DELAY_EXCEEDED}'
                        WHEN v.until IS NOT NULL THEN '{DeliveryReason.CAPPED}'
                        ELSE '' END AS reason,
                   v.rule_id,
                   CASE WHEN v.until <> 'infinity' THEN v.until ELSE %(at)s END AS due_at,
                   CASE WHEN v.id IS NOT NULL AND NOT v.is_opted_out AND v.until IS NULL
                        THEN %(at)s::timestamptz END AS reserved_at,
                   {_sender_sql(campaign.channel, "j")} AS sender_id, j.group_id
            FROM judged j LEFT JOIN v ON v.id = j.customer_id{_unplanned(skip_planned)}
        )
        {calls_sql("decided", layout)},
        written AS (
        INSERT INTO campaigns_delivery (
            customer_id, campaign_id, step, variant_id, is_holdout, status, reason, rule_id,
            due_at, first_due_at, reserved_at, planned_at, attempts, error, sender_id,
            group_id, channel_send_id)
        SELECT x.customer_id, %(campaign)s, 0, x.variant_id, x.is_holdout, x.status, x.reason,
               x.rule_id, x.due_at, %(at)s, x.reserved_at, now(), 0, '', x.sender_id,
               x.group_id, x.channel_send_id
        FROM (decided LEFT JOIN assigned USING (customer_id)) AS x
        RETURNING id, status, reason, channel_send_id
    ) {tally_sql(with_ids=False)}"""  # noqa: S608 - this package's SQL and integers
    return judged_ctes(campaign, CHUNK_AUDIENCE, variants, ranged=True) + tail


def named_params(audience: Audience) -> tuple[str, dict[str, Any]]:
    """The audience SQL with its positional placeholders turned into named ones."""
    parts = audience.sql.replace("%%", "\0").split("%s")
    assert len(parts) == len(audience.params) + 1
    named = parts[0]
    params: dict[str, Any] = {}
    for index, part in enumerate(parts[1:]):
        named += f"%(aud{index})s" + part
        params[f"aud{index}"] = audience.params[index]
    return named.replace("\0", "%%"), params


def audience_ids(audience: Audience) -> list[int]:
    """The audience's customer ids, ascending (one statement)."""
    sql = f"SELECT customer_id FROM ({audience.sql}) AS audience ORDER BY 1"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(RULE_SESSION_SQL)
        cursor.execute(sql, audience.params)
        return [row[0] for row in cursor.fetchall()]


def _group_chunk(campaign: Campaign, audience: Audience) -> dict[str, Any]:
    """The whole audience of a group-chat campaign as one chunk's params (see
    `CHUNK_GROUP_AUDIENCE`), ascending, with each member's group chat: one statement."""
    audience_sql, params = named_params(audience)
    params["consent_channel"] = campaign.consent_channel
    sql = f"SELECT * FROM ({group_audience_sql(audience_sql)}) AS g ORDER BY 1"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(RULE_SESSION_SQL)
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {
        "chunk": ",".join(str(customer_id) for customer_id, _g, _i in rows),
        "chunk_groups": ",".join("" if group is None else str(group) for _c, group, _i in rows),
        "chunk_grouped": ",".join("t" if is_grouped else "f" for _c, _g, is_grouped in rows),
        "lo": rows[0][0] if rows else 0,
        "hi": rows[-1][0] if rows else 0,
        "size": len(rows),
    }


def deliveries_plan(
    campaign: Campaign,
    *,
    audience: Audience,
    at: datetime,
    due_at: datetime,
    is_quiet: bool,
    reserve: bool,
) -> ReserveOutcome:
    """Write the deliveries of `audience` for `campaign` (variants must exist), a bucket of
    customer ids per transaction, in customer-id order. With `reserve` (a campaign due now, not
    throttled, outside quiet hours), each batch is judged against consent and the frequency
    rules at `at` as it is written, exactly as a reservation batch would judge it, so that each
    delivery is written once; otherwise deliveries are written pending, due at `due_at`.
    Answers what was written (deliveries already planned are left as they are). Planning
    stops when the campaign is cancelled, and stops reserving when it is paused.

    A group-chat campaign is planned in one transaction and reserved afterwards: whether a
    chat may be sent to depends on all its members, who fall in any bucket, and reservation
    must never see part of a chat."""
    variants = list(campaign.variants.order_by("name", "id").values_list("id", "weight"))
    assert variants, "a campaign has at least one variant"
    if campaign.channel == Channel.WECOM_GROUP:
        whole = _group_chunk(campaign, audience)
        chunks = [whole] if whole["size"] else []
        reserve = False
    else:
        chunks = list(_bucket_chunks(audience_ids(audience)))
    layout = call_layout(campaign) if reserve else None
    skip_planned = campaign.deliveries.exists()
    outcome = ReserveOutcome()
    size = 0
    for chunk in chunks:
        size += chunk["size"]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(NO_JIT_SQL)
            cursor.execute(
                "SELECT state FROM campaigns_campaign WHERE id = %s FOR SHARE", [campaign.pk]
            )
            (state,) = cursor.fetchone()
            if state == CampaignState.CANCELLED:
                break
            params: dict[str, Any] = {
                **chunk,
                "salt": campaign.salt,
                "campaign": campaign.pk,
                "consent_channel": campaign.consent_channel,
                "at": at,
                "due_at": due_at,
                "quiet": is_quiet,
                "channel": campaign.channel,
            }
            if layout is not None and state == CampaignState.SENDING:
                params.update(layout.params())
                _plan_reserved(
                    cursor,
                    campaign,
                    variants,
                    params,
                    outcome,
                    layout,
                    skip_planned=skip_planned,
                )
            else:
                sql = _insert_sql(campaign, variants, skip_planned=skip_planned)
                cursor.execute(sql, params)
                tally(outcome, cursor.fetchall())
    logger.info(
        "campaign.planned",
        extra={"campaign_id": campaign.pk, "audience": size, **outcome.counts},
    )
    return outcome


def _bucket_chunks(ids: list[int]) -> Iterator[dict[str, Any]]:
    """The ascending ids split at bucket boundaries (see `reservation.CUSTOMER_BUCKET`), so
    that each batch locks one bucket: each chunk's params (see `CHUNK_AUDIENCE`; lo and hi
    bound its ids)."""
    start = 0
    for index in range(1, len(ids) + 1):
        if index == len(ids) or ids[index] // CUSTOMER_BUCKET != ids[start] // CUSTOMER_BUCKET:
            yield {
                "chunk": ",".join(map(str, ids[start:index])),
                "lo": ids[start],
                "hi": ids[index - 1],
                "size": index - start,
            }
            start = index


def _plan_reserved(
    cursor: Any,
    campaign: Campaign,
    variants: list[tuple[int, int]],
    params: dict[str, Any],
    outcome: ReserveOutcome,
    layout: CallLayout,
    *,
    skip_planned: bool,
) -> None:
    """Write one batch already judged: lock its customers' bucket, then one statement judges
    and inserts (see `reservation`)."""
    rules = applicable_rules(campaign)
    if rules or campaign.counts_toward_caps:
        lock_customers([params["lo"], params["hi"]])
    # The batch is one bucket of ids: its counted sends are one range of the index.
    verdicts, verdict_params = verdict_sql(
        rules,
        params["at"],
        customers="d.customer_id BETWEEN %(lo)s AND %(hi)s",
        is_consent_checked=True,  # b holds the batch's customers who did not opt out
    )
    params.update(verdict_params)
    sql = _insert_judged_sql(campaign, variants, verdicts, layout, skip_planned=skip_planned)
    cursor.execute(sql, params)
    batch = ReserveOutcome()
    tally(batch, cursor.fetchall())
    dispatch_after_commit(batch)
    for key, count in batch.counts.items():
        outcome.counts[key] = outcome.counts.get(key, 0) + count
