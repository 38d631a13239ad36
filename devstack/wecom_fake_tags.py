"""The WeCom fake's corp tag endpoints (企业客户标签, developer.work.weixin.qq.com/document/path/
92117 and 92118), on the fake's directory (`fake.directory.tag_groups`, `.tags`, and each
relation's `tag_ids`):

- ``externalcontact/get_corp_tag_list``: every group with its tags; with ``group_id`` those
  groups with all their tags, else with ``tag_id`` the groups holding those tags with these
  tags only (``group_id`` wins when both are given, as in WeCom).
- ``externalcontact/add_corp_tag``: a new group with its tags, or tags added to the group of
  ``group_id`` (or of that ``group_name``); 40071 for a tag name the group has.
- ``externalcontact/edit_corp_tag``: rename (and reorder) a tag or a group.
- ``externalcontact/del_corp_tag``: delete tags and groups (a group left without tags goes
  too); their ids leave every relation.
- ``externalcontact/mark_tag``: give and take tags on one relation; 84061 if the contact is not
  that staff member's customer, 40068 for an id that is no corp tag.

Handlers run under the fake's lock (see `_ROUTE_MODULES` in devstack.wecom_fake)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from devstack.wecom_directory import CorpTag, CorpTagGroup, wecom_like_id
from devstack.wecom_fake import ERRCODE_INVALID_PARAMETER, WeComError

if TYPE_CHECKING:
    from devstack.wecom_fake import FakeWeCom

JSONDict = dict[str, Any]

ERRCODE_INVALID_TAG_ID = 40068  # 不合法的标签ID
ERRCODE_TAG_NAME_TAKEN = 40071  # 不合法的标签名字，标签名字已经存在
ERRCODE_NOT_EXTERNAL_CONTACT = 84061  # 不存在外部联系人的关系

_ids = random.SystemRandom()


def _id_list(body: JSONDict, key: str) -> list[str]:
    value = body.get(key) or []
    if isinstance(value, str) or not isinstance(value, list):
        raise WeComError(ERRCODE_INVALID_PARAMETER, f"invalid {key}")
    if not all(isinstance(item, str) for item in value):
        raise WeComError(ERRCODE_INVALID_PARAMETER, f"invalid {key}")
    return value


def _tag_json(tag: CorpTag) -> JSONDict:
    return {
        "id": tag.id,
        "name": tag.name,
        "create_time": tag.create_time,
        "order": tag.order,
        "deleted": False,
    }


def _group_json(group: CorpTagGroup, tags: list[CorpTag]) -> JSONDict:
    return {
        "group_id": group.group_id,
        "group_name": group.group_name,
        "create_time": group.create_time,
        "order": group.order,
        "deleted": False,
        "tag": [_tag_json(tag) for tag in tags],
    }


def get_corp_tag_list(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    directory = fake.directory
    group_ids = _id_list(body, "group_id")
    tag_ids = set(_id_list(body, "tag_id"))
    answer = []
    for group in directory.tag_groups.values():
        if group_ids and group.group_id not in group_ids:
            continue
        tags = [t for t in directory.tags.values() if t.group_id == group.group_id]
        if not group_ids and tag_ids:
            tags = [t for t in tags if t.id in tag_ids]
            if not tags:
                continue
        answer.append(_group_json(group, tags))
    return {"tag_group": answer}


def add_corp_tag(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    directory = fake.directory
    entries = body.get("tag")
    if not isinstance(entries, list) or not entries:
        raise WeComError(ERRCODE_INVALID_PARAMETER, "tag missing")
    group_id = body.get("group_id")
    if group_id:
        group = directory.tag_groups.get(group_id)
        if group is None:
            raise WeComError(ERRCODE_INVALID_TAG_ID, "invalid group_id")
    else:
        name = body.get("group_name")
        if not isinstance(name, str) or not name:
            raise WeComError(ERRCODE_INVALID_PARAMETER, "group_name missing")
        group = next((g for g in directory.tag_groups.values() if g.group_name == name), None)
        if group is None:
            group = CorpTagGroup(
                wecom_like_id("et", _ids), name, int(now), int(body.get("order") or 0)
            )
            directory.tag_groups[group.group_id] = group
    taken = {t.name for t in directory.tags.values() if t.group_id == group.group_id}
    created = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise WeComError(ERRCODE_INVALID_PARAMETER, "tag name missing")
        if name in taken:
            raise WeComError(ERRCODE_TAG_NAME_TAKEN, "tag name exists")
        taken.add(name)
        tag = CorpTag(
            wecom_like_id("et", _ids), name, group.group_id, int(now), int(entry.get("order", 0))
        )
        directory.tags[tag.id] = tag
        created.append(tag)
    return {"tag_group": _group_json(group, created)}


def edit_corp_tag(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    directory = fake.directory
    target_id, name = body.get("id"), body.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise WeComError(ERRCODE_INVALID_PARAMETER, "invalid name")
    if target_id in directory.tags:
        tag = directory.tags[target_id]
        siblings = {
            t.name for t in directory.tags.values() if t.group_id == tag.group_id and t is not tag
        }
        if name in siblings:
            raise WeComError(ERRCODE_TAG_NAME_TAKEN, "tag name exists")
        tag.name = name or tag.name
        tag.order = int(body.get("order", tag.order))
    elif target_id in directory.tag_groups:
        group = directory.tag_groups[target_id]
        group.group_name = name or group.group_name
        group.order = int(body.get("order", group.order))
    else:
        raise WeComError(ERRCODE_INVALID_TAG_ID, "invalid tag id")
    return {}


def del_corp_tag(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    directory = fake.directory
    tag_ids, group_ids = _id_list(body, "tag_id"), _id_list(body, "group_id")
    if not tag_ids and not group_ids:
        raise WeComError(ERRCODE_INVALID_PARAMETER, "tag_id and group_id missing")
    if any(t not in directory.tags for t in tag_ids) or any(
        g not in directory.tag_groups for g in group_ids
    ):
        raise WeComError(ERRCODE_INVALID_TAG_ID, "invalid tag id")
    doomed = set(tag_ids) | {t.id for t in directory.tags.values() if t.group_id in group_ids}
    touched_groups = {directory.tags[t].group_id for t in doomed} | set(group_ids)
    for tag_id in doomed:
        del directory.tags[tag_id]
    for group_id in touched_groups:
        if not any(t.group_id == group_id for t in directory.tags.values()):
            directory.tag_groups.pop(group_id, None)
    for follow in directory.follows.values():
        if doomed & set(follow.tag_ids):
            follow.tag_ids = [t for t in follow.tag_ids if t not in doomed]
    return {}


def mark_tag(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    directory = fake.directory
    add, remove = _id_list(body, "add_tag"), _id_list(body, "remove_tag")
    if not add and not remove:
        raise WeComError(ERRCODE_INVALID_PARAMETER, "add_tag and remove_tag missing")
    follow = directory.follows.get((str(body.get("userid")), str(body.get("external_userid"))))
    if follow is None:
        raise WeComError(ERRCODE_NOT_EXTERNAL_CONTACT, "not external contact")
    if any(t not in directory.tags for t in [*add, *remove]):
        raise WeComError(ERRCODE_INVALID_TAG_ID, "invalid tag id")
    kept = [t for t in follow.tag_ids if t not in remove]
    follow.tag_ids = kept + [t for t in dict.fromkeys(add) if t not in kept]
    return {}


ROUTES: dict[str, Callable[[FakeWeCom, JSONDict, float], JSONDict]] = {
    "externalcontact/get_corp_tag_list": get_corp_tag_list,
    "externalcontact/add_corp_tag": add_corp_tag,
    "externalcontact/edit_corp_tag": edit_corp_tag,
    "externalcontact/del_corp_tag": del_corp_tag,
    "externalcontact/mark_tag": mark_tag,
}
