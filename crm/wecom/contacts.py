"""External contacts (客户) and their relations with staff members (跟进关系) from WeCom,
applied a page at a time, set-based: a page of contacts costs the same few statements whatever
its length, and applying the same observation twice writes nothing.

Decisions (where WeCom leaves a choice):
- Profile: the contact's name becomes the display name; gender only when WeCom knows it
  (0 unknown leaves the customer's as it is). A profile read from WeCom is its state when read,
  so it is applied unversioned: only fields that differ are written.
- Owner (跟进人): while the customer has open relations in WeCom, the staff member of the
  earliest of them (the first to add the customer and still connected, ties by staff id):
  WeCom is where relations are made and handed over (在职继承), and the same rule whatever
  order pages and events arrive in gives one answer. An owner set by hand is replaced when
  the customer's relations are next applied. A customer with no open relation keeps their
  last owner.
- Relations are versioned by `observed_at`: a callback's event time, or a sync page's read
  time. An older observation never changes a newer one; a deletion older than the add applied
  last changes nothing, an add older than a deletion does not reopen it.
"""

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from django.conf import settings
from django.db import connection, transaction

from crm.models import FollowDeletedBy, Gender
from crm.personal_data import IdentityError, IdentityKey, identity_key
from crm.selectors.customers import customer_ids_by_identities
from crm.services.customers import CustomerInput, customers_bulk_upsert, staff_members_ensure
from crm.wecom.tags import customer_wecom_tags_apply

logger = logging.getLogger(__name__)

_encode = msgspec.json.Encoder().encode

# WeCom's gender codes (external_contact.gender).
GENDERS = {1: Gender.MALE.value, 2: Gender.FEMALE.value}
# follow_user[].tags[].type of a corp tag (企业标签); 2 is a staff member's own tag.
TAG_TYPE_CORP = 1


@dataclass(frozen=True)
class FollowDetail:
    userid: str
    added_at: datetime | None
    add_way: int | None
    state: str
    tag_ids: tuple[str, ...]


@dataclass
class ContactDetail:
    external_userid: str
    name: str
    gender: int
    unionid: str
    follows: dict[str, FollowDetail] = field(default_factory=dict)  # by userid


def _time(createtime: Any) -> datetime | None:
    if isinstance(createtime, bool) or not isinstance(createtime, int | float) or createtime <= 0:
        return None
    return datetime.fromtimestamp(createtime, UTC)


def _follow(data: Mapping[str, Any]) -> FollowDetail | None:
    userid = data.get("userid")
    if not isinstance(userid, str) or not userid:
        return None
    if "tag_id" in data:  # batch/get_by_user: corp tags only, by id
        tag_ids = [t for t in data.get("tag_id") or [] if isinstance(t, str) and t]
    else:  # get: every tag with its names; staff members' own tags have no id here
        tag_ids = [
            t["tag_id"]
            for t in data.get("tags") or []
            if isinstance(t, Mapping)
            and t.get("type", TAG_TYPE_CORP) == TAG_TYPE_CORP
            and isinstance(t.get("tag_id"), str)
            and t["tag_id"]
        ]
    add_way = data.get("add_way")
    return FollowDetail(
        userid=userid,
        added_at=_time(data.get("createtime")),
        add_way=add_way if isinstance(add_way, int) and 0 <= add_way < 2**15 else None,
        state=str(data.get("state") or "")[:64],
        tag_ids=tuple(sorted(set(tag_ids))),
    )


def contact_details_parse(entries: Iterable[Mapping[str, Any]]) -> list[ContactDetail]:
    """Contacts as `externalcontact/get` answers one (external_contact + follow_user list) or
    `batch/get_by_user` lists them (external_contact + one follow_info each), one per
    external_userid with every relation given. Entries without an external_userid are
    dropped."""
    contacts: dict[str, ContactDetail] = {}
    for entry in entries:
        external = entry.get("external_contact") or {}
        external_userid = external.get("external_userid")
        if not isinstance(external_userid, str) or not external_userid:
            continue
        contact = contacts.get(external_userid)
        if contact is None:
            gender = external.get("gender")
            contact = contacts[external_userid] = ContactDetail(
                external_userid=external_userid,
                name=str(external.get("name") or "")[:128],
                gender=gender if isinstance(gender, int) else 0,
                unionid=str(external.get("unionid") or ""),
            )
        follows = entry.get("follow_user")
        if follows is None and entry.get("follow_info") is not None:
            follows = [entry["follow_info"]]
        for data in follows or []:
            if isinstance(data, Mapping) and (follow := _follow(data)) is not None:
                contact.follows[follow.userid] = follow
    return list(contacts.values())


def _identities(contact: ContactDetail) -> list[IdentityKey] | None:
    try:
        keys = [
            identity_key(
                provider="wecom",
                namespace=settings.WECOM_CORP_ID,
                value=contact.external_userid,
            )
        ]
        if contact.unionid:
            keys.append(identity_key(provider="unionid", value=contact.unionid))
    except IdentityError:
        return None
    return keys


@dataclass
class ContactsOutcome:
    contacts_created: int = 0
    contacts_updated: int = 0
    follows_opened: int = 0
    follows_changed: int = 0
    follows_ended: int = 0
    customer_ids: dict[str, int] = field(default_factory=dict)  # by external_userid

    def changes(self) -> dict[str, int]:
        return {
            "contacts_created": self.contacts_created,
            "contacts_updated": self.contacts_updated,
            "follows_opened": self.follows_opened,
            "follows_changed": self.follows_changed,
            "follows_ended": self.follows_ended,
        }


# Relations upserted: inserted, reopened or changed where the observation is not older and
# something differs (with `touch`, a newer observed_at alone differs too). The old rows are
# read by a CTE, which sees the table as it was before the statement.
_FOLLOWS_UPSERT = """
WITH incoming AS (
    SELECT * FROM json_to_recordset(%(rows)s::json) AS r(
        customer_id bigint, staff_member_id bigint, added_at timestamptz, add_way smallint,
        state text, tag_ids text[])
),
old AS (
    SELECT f.customer_id, f.staff_member_id, f.deleted_at IS NOT NULL AS was_ended
    FROM crm_wecomfollow f
    JOIN incoming i USING (customer_id, staff_member_id)
),
upserted AS (
    INSERT INTO crm_wecomfollow AS f (
        customer_id, staff_member_id, added_at, add_way, state, wecom_tag_ids, deleted_at,
        deleted_by, observed_at, created_at, updated_at)
    SELECT customer_id, staff_member_id, added_at, add_way, coalesce(state, ''),
           coalesce(tag_ids, '{}'), NULL, '', %(observed_at)s, now(), now()
    FROM incoming
    ORDER BY customer_id, staff_member_id  -- one lock order for every writer
    ON CONFLICT (customer_id, staff_member_id) DO UPDATE SET
        added_at = EXCLUDED.added_at, add_way = EXCLUDED.add_way, state = EXCLUDED.state,
        wecom_tag_ids = EXCLUDED.wecom_tag_ids, deleted_at = NULL, deleted_by = '',
        observed_at = GREATEST(f.observed_at, EXCLUDED.observed_at), updated_at = now()
    WHERE EXCLUDED.observed_at >= f.observed_at
      AND ((f.added_at, f.add_way, f.state, f.wecom_tag_ids, f.deleted_at, f.deleted_by)
           IS DISTINCT FROM (EXCLUDED.added_at, EXCLUDED.add_way, EXCLUDED.state,
                             EXCLUDED.wecom_tag_ids, NULL::timestamptz, '')
           OR (%(touch)s AND EXCLUDED.observed_at > f.observed_at))
    RETURNING f.customer_id, f.staff_member_id
)
SELECT count(*) FILTER (WHERE old.customer_id IS NULL OR old.was_ended),
       count(*) FILTER (WHERE NOT old.was_ended)
FROM upserted u
LEFT JOIN old USING (customer_id, staff_member_id)
"""

# The owner of each customer given: the staff member of their earliest open relation;
# customers without open relations are left alone.
_OWNERS_APPLY = """
WITH wanted AS (
    SELECT DISTINCT ON (f.customer_id) f.customer_id, f.staff_member_id
    FROM crm_wecomfollow f
    WHERE f.customer_id = ANY(%(customers)s::bigint[]) AND f.deleted_at IS NULL
    ORDER BY f.customer_id, f.added_at NULLS LAST, f.staff_member_id
)
UPDATE crm_customer c SET owner_id = w.staff_member_id, updated_at = now()
FROM wanted w
WHERE c.id = w.customer_id AND c.owner_id IS DISTINCT FROM w.staff_member_id
"""


def customers_owner_apply(*, customer_ids: Sequence[int]) -> int:
    """Set the owner (跟进人) of these customers from their open relations (see the module's
    decisions); returns how many owners changed."""
    if not customer_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_OWNERS_APPLY, {"customers": sorted(set(customer_ids))})
        return cursor.rowcount


def staff_member_names_fill(names: Mapping[str, str]) -> int:
    """Give staff members without a name the name WeCom knows (an operator's is kept)."""
    wanted = {u: n[:64] for u, n in names.items() if u and n}
    if not wanted:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE crm_staffmember s SET name = k.name
            FROM unnest(%s::text[], %s::text[]) AS k(userid, name)
            WHERE s.wecom_userid = k.userid AND s.name = ''
            """,
            [list(wanted), list(wanted.values())],
        )
        return cursor.rowcount


@transaction.atomic
def contacts_apply(
    *,
    contacts: Sequence[ContactDetail],
    observed_at: datetime,
    actor: str,
    touch_observed_at: bool = False,
) -> ContactsOutcome:
    """Apply WeCom's details of a page of contacts: customers found or created by their
    `wecom` identity (and `unionid`, which joins a mini-program customer to them), their
    profile, staff members, relations (upserted, never ended here: a contact's details list the
    relations it has, not those it lost), owners and `wecom` tags.

    `observed_at` versions the relations; `touch_observed_at` records a newer observation even
    where nothing else differs (callbacks: so that an older event arriving later is known to
    be older; a sync leaves unchanged rows unwritten). A constant number of statements per
    page."""
    outcome = ContactsOutcome()
    rows: list[CustomerInput] = []
    kept: list[ContactDetail] = []
    for contact in contacts:
        identities = _identities(contact)
        if identities is None:
            logger.warning("wecom.contact_skipped_malformed_id")
            continue
        profile: dict[str, Any] = {}
        if contact.name:
            profile["display_name"] = contact.name
        if contact.gender in GENDERS:
            profile["gender"] = GENDERS[contact.gender]
        rows.append(CustomerInput(identities=identities, profile=profile))
        kept.append(contact)
    if not rows:
        return outcome
    bulk = customers_bulk_upsert(rows=rows, actor=actor)
    outcome.contacts_created = bulk.created
    outcome.contacts_updated = bulk.updated
    outcome.customer_ids = {
        c.external_userid: customer_id
        for c, customer_id in zip(kept, bulk.customer_ids, strict=True)
    }
    staff_ids = staff_members_ensure(u for c in kept for u in c.follows)
    follow_rows = [
        {
            "customer_id": outcome.customer_ids[c.external_userid],
            "staff_member_id": staff_ids[f.userid],
            "added_at": f.added_at.isoformat() if f.added_at else None,
            "add_way": f.add_way,
            "state": f.state,
            "tag_ids": list(f.tag_ids),
        }
        for c in kept
        for f in c.follows.values()
    ]
    # Two external_userids merged into one customer (by unionid) may name one relation twice.
    unique_rows = list({(r["customer_id"], r["staff_member_id"]): r for r in follow_rows}.values())
    if unique_rows:
        with connection.cursor() as cursor:
            cursor.execute(
                _FOLLOWS_UPSERT,
                {
                    "rows": _encode(unique_rows).decode(),
                    "observed_at": observed_at,
                    "touch": touch_observed_at,
                },
            )
            opened, changed = cursor.fetchone()
        outcome.follows_opened, outcome.follows_changed = opened, changed
    customer_ids = sorted(set(outcome.customer_ids.values()))
    customers_owner_apply(customer_ids=customer_ids)
    customer_wecom_tags_apply(customer_ids=customer_ids, actor=actor)
    return outcome


def wecom_customer_id(external_userid: str) -> int | None:
    """The customer of an external_userid, if known."""
    try:
        key = identity_key(
            provider="wecom", namespace=settings.WECOM_CORP_ID, value=external_userid
        )
    except IdentityError:
        return None
    return customer_ids_by_identities([key]).get(key.unique_key)


@transaction.atomic
def follow_end(
    *,
    external_userid: str,
    userid: str,
    ended_at: datetime,
    deleted_by: FollowDeletedBy,
    actor: str,
) -> bool:
    """The relation of a staff member (userid) with a customer ended in WeCom at `ended_at`
    (an event's time): recorded, not deleted, unless something newer was applied already.
    A relation not known here is recorded ended (so that an older add arriving later does
    not open it); a customer not known here is not created for it. Returns whether anything
    changed."""
    customer_id = wecom_customer_id(external_userid)
    if customer_id is None or not userid:
        return False
    staff_member_id = staff_members_ensure([userid])[userid]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO crm_wecomfollow AS f (
                customer_id, staff_member_id, added_at, add_way, state, wecom_tag_ids,
                deleted_at, deleted_by, observed_at, created_at, updated_at)
            VALUES (%(customer)s, %(staff)s, NULL, NULL, '', '{}', %(at)s, %(by)s, %(at)s,
                    now(), now())
            ON CONFLICT (customer_id, staff_member_id) DO UPDATE SET
                deleted_at = EXCLUDED.deleted_at, deleted_by = EXCLUDED.deleted_by,
                observed_at = EXCLUDED.observed_at, updated_at = now()
            WHERE f.deleted_at IS NULL AND f.observed_at <= EXCLUDED.observed_at
            """,
            {"customer": customer_id, "staff": staff_member_id, "at": ended_at, "by": deleted_by},
        )
        changed = cursor.rowcount > 0
    if changed:
        customers_owner_apply(customer_ids=[customer_id])
        customer_wecom_tags_apply(customer_ids=[customer_id], actor=actor)
        logger.info(
            "wecom.follow_ended",
            extra={
                "customer_id": customer_id,
                "staff_member_id": staff_member_id,
                "deleted_by": str(deleted_by),
            },
        )
    return changed


@transaction.atomic
def follows_end_unseen(
    *, run_id: int, staff_member_ids: Sequence[int], ended_at: datetime, actor: str
) -> int:
    """The nightly reconciliation of deletions WeCom never told: relations of the staff
    members walked that are open here, were not seen by the sync run, and were observed no
    later than it started, end at `ended_at` (the run's start; who ended them is unknown).
    Returns how many ended."""
    if not staff_member_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE crm_wecomfollow f
            SET deleted_at = %(at)s, deleted_by = '', observed_at = %(at)s, updated_at = now()
            WHERE f.staff_member_id = ANY(%(staff)s::bigint[]) AND f.deleted_at IS NULL
              AND f.observed_at <= %(at)s
              AND NOT EXISTS (
                SELECT 1 FROM crm_wecomsyncseenfollow s
                WHERE s.run_id = %(run)s AND s.follow_id = f.id)
            RETURNING f.customer_id
            """,
            {"staff": sorted(set(staff_member_ids)), "at": ended_at, "run": run_id},
        )
        rows = cursor.fetchall()
    customer_ids = sorted({row[0] for row in rows})
    for start in range(0, len(customer_ids), 1000):
        batch = customer_ids[start : start + 1000]
        customers_owner_apply(customer_ids=batch)
        customer_wecom_tags_apply(customer_ids=batch, actor=actor)
    return len(rows)


def follows_seen_record(
    *, run_id: int, outcome: ContactsOutcome, contacts: Sequence[ContactDetail]
) -> None:
    """Note, for the run's reconciliation, the relations a sync page saw."""
    pairs = [
        {"c": outcome.customer_ids[c.external_userid], "u": userid}
        for c in contacts
        if c.external_userid in outcome.customer_ids
        for userid in c.follows
    ]
    if not pairs:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO crm_wecomsyncseenfollow (run_id, follow_id)
            SELECT %(run)s, f.id
            FROM json_to_recordset(%(pairs)s::json) AS p(c bigint, u text)
            JOIN crm_staffmember s ON s.wecom_userid = p.u
            JOIN crm_wecomfollow f ON f.customer_id = p.c AND f.staff_member_id = s.id
            ON CONFLICT DO NOTHING
            """,
            {"run": run_id, "pairs": _encode(pairs).decode()},
        )
