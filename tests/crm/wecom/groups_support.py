"""What the group chat tests share: callback events, a small corp in the WeCom fake, and the
state of group chats here in WeCom's ids (to compare runs)."""

from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from crm.models import Group, GroupKind, GroupMembership
from crm.personal_data import identity_key
from crm.selectors.customers import customer_ids_by_identities
from crm.wecom.registry import HANDLERS, CallbackEvent
from devstack.wecom_directory import CHAT_MEMBER_EXTERNAL, Directory

EVENT = "change_external_chat"
START = 1_700_000_000  # the generated corp's first chat


def at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def deliver(change_type: str, chat_id: str, event_at: datetime, **fields: Any) -> str:
    """Run the handler of one change_external_chat event, as the callback task would."""
    event = CallbackEvent(
        event=EVENT,
        change_type=change_type,
        event_at=event_at,
        fields={"ChatId": chat_id, "ChangeType": change_type, **fields},
        event_id=0,
    )
    return HANDLERS[(EVENT, change_type)](event)


def small_corp(chats: int = 3, contacts: int = 300) -> Directory:
    return Directory.generate(staff=3, contacts=contacts, chats=chats, tags=0)


def customer_of(external_userid: str) -> int | None:
    key = identity_key(provider="wecom", value=external_userid, namespace=settings.WECOM_CORP_ID)
    return customer_ids_by_identities([key]).get(key.unique_key)


def state(directory: Directory) -> dict[str, Any]:
    """Every WeCom chat here: (name, owner userid, dismissed, its stays as (external_userid,
    joined_at, is open)), keyed by chat_id; customers named by their ids in `directory`."""
    # The chats' members (customers who left every chat show as "#<customer id>").
    keys = {
        m.userid: identity_key(provider="wecom", value=m.userid, namespace=settings.WECOM_CORP_ID)
        for chat in directory.chats.values()
        for m in chat.members
        if m.type == CHAT_MEMBER_EXTERNAL
    }
    known = customer_ids_by_identities(list(keys.values()))
    customer_to_userid = {
        known[key.unique_key]: userid for userid, key in keys.items() if key.unique_key in known
    }
    chats: dict[str, Any] = {}
    for group in Group.objects.filter(kind=GroupKind.WECOM_GROUP).select_related("owner"):
        stays = sorted(
            (customer_to_userid.get(customer_id, f"#{customer_id}"), joined_at, left_at is None)
            for customer_id, joined_at, left_at in GroupMembership.objects.filter(
                group=group
            ).values_list("customer_id", "joined_at", "left_at")
        )
        chats[group.external_id] = (
            group.name,
            group.owner.wecom_userid if group.owner else None,
            group.dismissed_at is not None,
            stays,
        )
    return chats


def expected_state(directory: Directory) -> dict[str, Any]:
    """What `state` should read after applying every chat of `directory` to an empty CRM."""
    return {
        chat.chat_id: (
            chat.name,
            chat.owner,
            False,
            sorted(
                (m.userid, at(m.join_time), True)
                for m in chat.members
                if m.type == CHAT_MEMBER_EXTERNAL
            ),
        )
        for chat in directory.chats.values()
    }


def group_chat(
    chat_id: str, members: range, *, name: str = "社群", member_prefix: str | None = None
) -> dict:
    """groupchat/get's `group_chat` with the owner and external members numbered `members`
    (ids from `member_prefix`, the chat id by default; every other one with a unionid)."""
    prefix = chat_id if member_prefix is None else member_prefix
    return {
        "chat_id": chat_id,
        "name": name,
        "owner": "staff000",
        "create_time": START,
        "notice": "",
        "member_list": [{"userid": "staff000", "type": 1, "join_time": START, "join_scene": 1}]
        + [
            {
                "userid": f"wm{prefix}{n:05d}",
                "type": 2,
                "join_time": START + n,
                "join_scene": 3,
                **({"unionid": f"o{prefix}{n:05d}"} if n % 2 else {}),
            }
            for n in members
        ],
        "admin_list": [],
    }
