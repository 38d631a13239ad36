"""The WeCom fake's customer group chat endpoints, through wechatpy: the list by cursor and
owner, the details of a chat, and the errcodes of the real API."""

from collections.abc import Iterator

import pytest
from wechatpy.exceptions import WeChatClientException

from crm.wecom.client import WeComClient
from devstack.wecom_directory import Directory
from devstack.wecom_fake import FakeWeCom, FakeWeComConfig


@pytest.fixture
def client() -> Iterator[tuple[FakeWeCom, WeComClient]]:
    with FakeWeCom(FakeWeComConfig(corps={"corp": "secret"})) as fake:
        fake.directory = Directory.generate(staff=4, contacts=100, chats=7, tags=0)
        # A session of its own: no cache, no database.
        yield fake, WeComClient(fake.api_base_url, "corp", "secret", session=_MemorySession())


class _MemorySession:
    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)

    def set(self, key: str, value: object, ttl: int | None = None) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def test_the_list_walks_every_chat_by_cursor_and_filters_owners(client) -> None:
    fake, wecom = client
    chats = wecom.external_contact_group_chat
    seen, cursor = [], None
    while True:
        page = chats.list(cursor=cursor, limit=3)
        assert len(page["group_chat_list"]) <= 3
        seen += [c["chat_id"] for c in page["group_chat_list"]]
        cursor = page["next_cursor"]
        if not cursor:
            break

    assert seen == sorted(fake.directory.chats)
    owned = chats.list(owner_userid_list=["staff001"], limit=1000)["group_chat_list"]
    assert {c["chat_id"] for c in owned} == {
        c.chat_id for c in fake.directory.chats.values() if c.owner == "staff001"
    }
    assert chats.list(status_filter=1)["group_chat_list"] == []


def test_a_chat_has_its_members_with_join_times_and_unionids(client) -> None:
    fake, wecom = client
    chat = next(iter(fake.directory.chats.values()))

    group_chat = wecom.external_contact_group_chat.get(chat.chat_id)["group_chat"]

    assert (group_chat["chat_id"], group_chat["name"], group_chat["owner"]) == (
        chat.chat_id,
        chat.name,
        chat.owner,
    )
    assert [(m["userid"], m["type"], m["join_time"]) for m in group_chat["member_list"]] == [
        (m.userid, m.type, m.join_time) for m in chat.members
    ]
    with_unionid = [m for m in group_chat["member_list"] if "unionid" in m]
    assert with_unionid and all(m["type"] == 2 for m in with_unionid)
    assert group_chat["admin_list"] == []


def test_a_dismissed_or_unknown_chat_answers_40050(client) -> None:
    fake, wecom = client
    chat_id = next(iter(fake.directory.chats))
    fake.directory.chat_dismiss(chat_id)

    for unknown in (chat_id, "wrNoSuchChat"):
        with pytest.raises(WeChatClientException) as refused:
            wecom.external_contact_group_chat.get(unknown)
        assert refused.value.errcode == 40050
    assert chat_id not in [
        c["chat_id"] for c in wecom.external_contact_group_chat.list(limit=1000)["group_chat_list"]
    ]


def test_a_corp_of_more_than_1000_staff_needs_an_owner_filter(client) -> None:
    fake, wecom = client
    fake.directory.staff.update({f"extra{i:04d}": "员工" for i in range(1_000)})

    with pytest.raises(WeChatClientException) as refused:
        wecom.external_contact_group_chat.list()

    assert refused.value.errcode == 81017
    assert wecom.external_contact_group_chat.list(owner_userid_list=["staff000"])["errcode"] == 0
