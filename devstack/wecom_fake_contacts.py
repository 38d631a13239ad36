"""The WeCom fake's external-contact endpoints (客户联系), answering from `fake.directory` with
the real API's fields:

- ``GET externalcontact/get_follow_user_list``: staff members with customer contact
  (配置了客户联系功能的成员), ``follow_user``.
- ``GET externalcontact/list?userid=``: one staff member's customers, ``external_userid``.
- ``GET externalcontact/get?external_userid=``: one customer (``external_contact``) with every
  staff member's relation (``follow_user``, each with ``tags``: group_name, tag_name, tag_id,
  type), 84061 when the customer is nobody's contact.
- ``POST externalcontact/batch/get_by_user``: the customers of up to 100 staff members
  (``userid_list``), ``limit`` ≤ 100 (default 50, more is taken as 100) by ``cursor``; each
  entry is ``external_contact`` + ``follow_info`` (``tag_id`` list), then ``next_cursor``.
- ``GET user/get?userid=``: a staff member's name.

GET endpoints take their query parameters as the body (see `_request_json` in wecom_fake)."""

from __future__ import annotations

import base64
import json
from typing import Any

from devstack.wecom_directory import (
    ADD_WAY_QR_CODE,
    CONTACT_TYPE_WECHAT,
    Contact,
    Directory,
    Follow,
)
from devstack.wecom_fake import FakeWeCom, WeComError

JSONDict = dict[str, Any]

ERRCODE_INVALID_USERID = 40003
ERRCODE_INVALID_PARAMETER = 40035
ERRCODE_NO_PRIVILEGE = 60011
ERRCODE_USER_NOT_FOUND = 60111
ERRCODE_NOT_EXTERNAL_CONTACT = 84061

MAX_USERIDS = 100
PAGE_DEFAULT, PAGE_MAX = 50, 100


def _error(errcode: int, errmsg: str) -> WeComError:
    return WeComError(errcode, errmsg)


def _follows_by_user(fake: FakeWeCom) -> dict[str, list[Follow]]:
    """Each staff member's relations sorted by external_userid, kept on the fake until the
    directory or its number of relations changes (every page would sort them all again)."""
    directory = fake.directory
    key = (id(directory), len(directory.follows))
    cached = getattr(fake, "_contacts_index", None)
    if cached is not None and cached[0] == key:
        return cached[1]  # type: ignore[no-any-return]
    index: dict[str, list[Follow]] = {}
    for follow in directory.follows.values():
        index.setdefault(follow.userid, []).append(follow)
    for follows in index.values():
        follows.sort(key=lambda f: f.external_userid)
    fake._contacts_index = (key, index)  # type: ignore[attr-defined]
    return index


def _contact_json(contact: Contact) -> JSONDict:
    data: JSONDict = {
        "external_userid": contact.external_userid,
        "name": contact.name,
        "type": contact.type,
        "avatar": "",
        "gender": contact.gender,
    }
    if contact.unionid and contact.type == CONTACT_TYPE_WECHAT:
        data["unionid"] = contact.unionid
    return data


def _oper_userid(follow: Follow) -> str:
    # The one who started the add: the customer when they scanned a code, else the staff member.
    return follow.external_userid if follow.add_way == ADD_WAY_QR_CODE else follow.userid


def _follow_common(follow: Follow) -> JSONDict:
    return {
        "userid": follow.userid,
        "remark": follow.remark,
        "description": "",
        "createtime": follow.createtime,
        "remark_corp_name": "",
        "remark_mobiles": [],
        "oper_userid": _oper_userid(follow),
        "add_way": follow.add_way,
        "state": follow.state,
    }


def _tags_json(directory: Directory, tag_ids: list[str]) -> list[JSONDict]:
    tags = []
    for tag_id in tag_ids:
        tag = directory.tags.get(tag_id)
        if tag is None:
            continue
        group = directory.tag_groups.get(tag.group_id)
        tags.append(
            {
                "group_name": group.group_name if group else "",
                "tag_name": tag.name,
                "tag_id": tag.id,
                "type": 1,  # 企业设置
            }
        )
    return tags


def _string(body: JSONDict, field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise _error(ERRCODE_INVALID_PARAMETER, f"{field} is required")
    return value


def get_follow_user_list(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    return {"follow_user": sorted(fake.directory.staff)}


def list_contacts(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    userid = _string(body, "userid")
    if userid not in fake.directory.staff:
        raise _error(ERRCODE_INVALID_USERID, "invalid userid")
    follows = _follows_by_user(fake).get(userid, [])
    return {"external_userid": [f.external_userid for f in follows]}


def get_contact(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    external_userid = _string(body, "external_userid")
    directory = fake.directory
    contact = directory.contacts.get(external_userid)
    follows = directory.follows_of_contact(external_userid) if contact else []
    if contact is None or not follows:
        raise _error(ERRCODE_NOT_EXTERNAL_CONTACT, "not external contact")
    return {
        "external_contact": _contact_json(contact),
        "follow_user": [
            {**_follow_common(f), "tags": _tags_json(directory, f.tag_ids)} for f in follows
        ],
        "next_cursor": "",
    }


def _cursor_encode(userid: str, external_userid: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([userid, external_userid]).encode()).decode()


def _cursor_decode(cursor: object) -> tuple[str, str] | None:
    if cursor in (None, ""):
        return None
    try:
        userid, external_userid = json.loads(base64.urlsafe_b64decode(str(cursor)))
    except ValueError:
        raise _error(ERRCODE_INVALID_PARAMETER, "invalid cursor") from None
    return str(userid), str(external_userid)


def batch_get_by_user(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    userids = body.get("userid_list")
    if (
        not isinstance(userids, list)
        or not userids
        or not all(isinstance(u, str) and u for u in userids)
    ):
        raise _error(ERRCODE_INVALID_PARAMETER, "userid_list must be a non-empty list")
    if len(userids) > MAX_USERIDS:
        raise _error(ERRCODE_INVALID_PARAMETER, f"userid_list holds more than {MAX_USERIDS}")
    limit = body.get("limit")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        limit = PAGE_DEFAULT
    limit = min(limit, PAGE_MAX)
    after = _cursor_decode(body.get("cursor"))
    directory = fake.directory
    index = _follows_by_user(fake)
    page: list[Follow] = []
    more = False
    for userid in sorted(set(userids)):
        if after is not None and userid < after[0]:
            continue
        follows = index.get(userid, [])
        start = 0
        if after is not None and userid == after[0]:
            start = _after(follows, after[1])
        for follow in follows[start:]:
            if len(page) == limit:
                more = True
                break
            page.append(follow)
        if more:
            break
    entries = [
        {
            "external_contact": _contact_json(directory.contacts[f.external_userid]),
            "follow_info": {**_follow_common(f), "tag_id": list(f.tag_ids)},
        }
        for f in page
    ]
    next_cursor = _cursor_encode(page[-1].userid, page[-1].external_userid) if more else ""
    return {"external_contact_list": entries, "next_cursor": next_cursor}


def _after(follows: list[Follow], external_userid: str) -> int:
    """Index of the first relation after `external_userid` (the list is sorted by it)."""
    low, high = 0, len(follows)
    while low < high:
        middle = (low + high) // 2
        if follows[middle].external_userid <= external_userid:
            low = middle + 1
        else:
            high = middle
    return low


def get_user(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    userid = _string(body, "userid")
    name = fake.directory.staff.get(userid)
    if name is None:
        raise _error(ERRCODE_USER_NOT_FOUND, "userid not found")
    return {"userid": userid, "name": name, "status": 1}


ROUTES = {
    "externalcontact/get_follow_user_list": get_follow_user_list,
    "externalcontact/list": list_contacts,
    "externalcontact/get": get_contact,
    "externalcontact/batch/get_by_user": batch_get_by_user,
    "user/get": get_user,
}
