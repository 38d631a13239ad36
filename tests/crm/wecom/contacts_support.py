"""Helpers of the contact tests: callback events as the callback endpoint hands them to
handlers, and a dump of what contacts left in the database (compared between runs)."""

import itertools
from datetime import UTC, datetime
from typing import Any

from django.db import connection

from crm.wecom.registry import HANDLERS, CallbackEvent
from devstack.wecom_directory import Contact, CorpTag, CorpTagGroup, Directory, Follow

_event_ids = itertools.count(1)
T0 = 1_760_000_000  # createtime of the relations below (2025-10-09)


def event(change_type: str, at: int, **fields: str) -> CallbackEvent:
    return CallbackEvent(
        event="change_external_contact",
        change_type=change_type,
        event_at=datetime.fromtimestamp(at, UTC),
        fields={"ChangeType": change_type, **fields},
        event_id=next(_event_ids),
    )


def deliver(change_type: str, at: int, **fields: str) -> str:
    return HANDLERS[("change_external_contact", change_type)](event(change_type, at, **fields))


def add_contact(
    directory: Directory,
    external_userid: str,
    userid: str,
    *,
    name: str = "王小明",
    gender: int = 2,
    unionid: str = "",
    createtime: int = T0,
    state: str = "",
    tag_ids: list[str] | None = None,
) -> None:
    directory.staff.setdefault(userid, f"员工{userid}")
    directory.contacts.setdefault(
        external_userid, Contact(external_userid, name, gender=gender, unionid=unionid)
    )
    for tag_id in tag_ids or []:
        directory.tag_groups.setdefault("etGROUP", CorpTagGroup("etGROUP", "客户等级", T0))
        directory.tags.setdefault(tag_id, CorpTag(tag_id, tag_id, "etGROUP", T0))
    directory.follows[(userid, external_userid)] = Follow(
        userid, external_userid, createtime=createtime, state=state, tag_ids=tag_ids or []
    )


def contacts_dump() -> dict[str, list[tuple[Any, ...]]]:
    """Customers, identities and relations as the operator would see them (no surrogate
    keys, no write times), in a stable order."""
    queries = {
        "customers": """
            SELECT i.value_hash, c.display_name, c.gender, s.wecom_userid
            FROM crm_customer c
            JOIN crm_identity i ON i.customer_id = c.id AND i.provider = 'wecom'
            LEFT JOIN crm_staffmember s ON s.id = c.owner_id
            ORDER BY 1""",
        "identities": """
            SELECT w.value_hash, i.provider, i.value_hash
            FROM crm_identity i
            JOIN crm_identity w ON w.customer_id = i.customer_id AND w.provider = 'wecom'
            ORDER BY 1, 2, 3""",
        "follows": """
            SELECT i.value_hash, s.wecom_userid, f.added_at, f.add_way, f.state,
                   f.wecom_tag_ids, f.deleted_at IS NULL
            FROM crm_wecomfollow f
            JOIN crm_identity i ON i.customer_id = f.customer_id AND i.provider = 'wecom'
            JOIN crm_staffmember s ON s.id = f.staff_member_id
            ORDER BY 1, 2""",
    }
    dump = {}
    with connection.cursor() as cursor:
        for name, query in queries.items():
            cursor.execute(query)
            dump[name] = cursor.fetchall()
    return dump


def row_versions(table: str) -> list[tuple[int, str]]:
    """(id, xmin) of every row: a row written again gets a new xmin."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, xmin::text FROM {table} ORDER BY id")  # noqa: S608
        return cursor.fetchall()
