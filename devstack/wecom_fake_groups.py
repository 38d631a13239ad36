"""The WeCom fake's customer group chat endpoints (客户群管理), over the corp directory:

- ``externalcontact/groupchat/list`` (获取客户群列表): `status_filter` (0 all, 1-3 the chats of
  staff who left, none here), `owner_filter.userid_list` (at most 100; required, errcode
  81017, when the corp has more than 1000 staff), `cursor`, `limit` (1-1000); answers
  `group_chat_list` [{chat_id, status}] and `next_cursor`. A dismissed chat is no longer
  listed.
- ``externalcontact/groupchat/get`` (获取客户群详情): `chat_id`, `need_name`; answers
  `group_chat` {chat_id, name, owner, create_time, notice, member_list, admin_list}. An unknown
  or dismissed chat answers errcode 40050 (chatid 不存在), as the real API does.

The cursor is the last chat_id of the page (chats in chat_id order), so a chat dismissed
between two pages moves no other chat across the page boundary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devstack.wecom_directory import CHAT_MEMBER_EXTERNAL, Chat, ChatMember
from devstack.wecom_fake import ERRCODE_INVALID_PARAMETER, WeComError

if TYPE_CHECKING:
    from devstack.wecom_fake import FakeWeCom

JSONDict = dict[str, Any]

ENDPOINT_GROUPCHAT_LIST = "externalcontact/groupchat/list"
ENDPOINT_GROUPCHAT_GET = "externalcontact/groupchat/get"
ERRCODE_INVALID_CHATID = 40050  # 全局错误码: chatid 不存在 (unknown or dismissed chat)
GROUPCHAT_PAGE_DEFAULT, GROUPCHAT_PAGE_MAX = 100, 1000
MAX_OWNER_FILTER = 100
# Without owner_filter the real API refuses to list for an app that sees more than 1000 staff.
ERRCODE_OWNER_FILTER_REQUIRED = 81017
MAX_STAFF_WITHOUT_OWNER_FILTER = 1000
CHAT_STATUS_NORMAL = 0  # 跟进人正常
JOIN_SCENES_WITH_INVITOR = (1, 2)  # invited directly or by link: WeCom names who invited


def _groupchat_list(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    status_filter = body.get("status_filter", 0)
    if status_filter not in (0, 1, 2, 3):
        raise WeComError(ERRCODE_INVALID_PARAMETER, "invalid status_filter")
    owners: set[str] | None = None
    owner_filter = body.get("owner_filter")
    if owner_filter:
        userids = owner_filter.get("userid_list") if isinstance(owner_filter, dict) else None
        if not isinstance(userids, list) or not all(isinstance(u, str) for u in userids):
            raise WeComError(ERRCODE_INVALID_PARAMETER, "owner_filter.userid_list must be a list")
        if len(userids) > MAX_OWNER_FILTER:
            raise WeComError(ERRCODE_INVALID_PARAMETER, "owner_filter holds more than 100 ids")
        owners = set(userids)
    elif len(fake.directory.staff) > MAX_STAFF_WITHOUT_OWNER_FILTER:
        raise WeComError(ERRCODE_OWNER_FILTER_REQUIRED, "owner_filter is required")
    limit = body.get("limit")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= GROUPCHAT_PAGE_MAX:
        limit = GROUPCHAT_PAGE_DEFAULT
    cursor = body.get("cursor") or ""
    if not isinstance(cursor, str):
        raise WeComError(ERRCODE_INVALID_PARAMETER, "invalid cursor")
    # No staff member has left in the fake: every chat's owner is normal (status 0).
    chats = (
        sorted(
            chat_id
            for chat_id, chat in fake.directory.chats.items()
            if chat_id > cursor and (owners is None or chat.owner in owners)
        )
        if status_filter == 0
        else []
    )
    page = chats[:limit]
    return {
        "group_chat_list": [{"chat_id": c, "status": CHAT_STATUS_NORMAL} for c in page],
        "next_cursor": page[-1] if len(chats) > limit else "",
    }


def _member_json(fake: FakeWeCom, chat: Chat, member: ChatMember, need_name: bool) -> JSONDict:
    entry: JSONDict = {
        "userid": member.userid,
        "type": member.type,
        "join_time": member.join_time,
        "join_scene": member.join_scene,
        "group_nickname": "",
    }
    if member.join_scene in JOIN_SCENES_WITH_INVITOR:
        entry["invitor"] = {"userid": chat.owner}
    if member.type == CHAT_MEMBER_EXTERNAL and member.unionid:
        entry["unionid"] = member.unionid
    if need_name:
        contact = fake.directory.contacts.get(member.userid)
        entry["name"] = contact.name if contact else fake.directory.staff.get(member.userid, "")
    return entry


def _groupchat_get(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    chat_id = body.get("chat_id")
    if not isinstance(chat_id, str) or not chat_id:
        raise WeComError(ERRCODE_INVALID_PARAMETER, "chat_id is required")
    chat = fake.directory.chats.get(chat_id)
    if chat is None:
        raise WeComError(ERRCODE_INVALID_CHATID, "invalid chatid")
    need_name = body.get("need_name") == 1
    return {
        "group_chat": {
            "chat_id": chat.chat_id,
            "name": chat.name,
            "owner": chat.owner,
            "create_time": chat.create_time,
            "notice": chat.notice,
            "member_list": [_member_json(fake, chat, m, need_name) for m in chat.members],
            "admin_list": [],
        }
    }


ROUTES = {
    ENDPOINT_GROUPCHAT_LIST: _groupchat_list,
    ENDPOINT_GROUPCHAT_GET: _groupchat_get,
}
