"""The WeCom fake's external-contact endpoints, driven through wechatpy's enterprise client
over real HTTP, with the fields of the real API."""

from collections.abc import Iterator

import pytest
from wechatpy.exceptions import WeChatClientException

from devstack.wecom_directory import Directory
from devstack.wecom_fake import FakeWeCom, FakeWeComConfig
from tests.devstack.test_wecom_fake import CORP_ID, SECRET, FakeableWeChatClient

BATCH = "externalcontact/batch/get_by_user"


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    with FakeWeCom(FakeWeComConfig(corps={CORP_ID: SECRET})) as server:
        server.directory = Directory.generate(staff=3, contacts=250, chats=0, tags=20)
        yield server


@pytest.fixture
def client(fake: FakeWeCom) -> FakeableWeChatClient:
    return FakeableWeChatClient(fake.api_base_url, CORP_ID, SECRET)


def test_follow_user_list_and_a_staff_members_customers(
    fake: FakeWeCom, client: FakeableWeChatClient
) -> None:
    assert client.external_contact.get_follow_user_list()["follow_user"] == [
        "staff000",
        "staff001",
        "staff002",
    ]
    listed = client.external_contact.list("staff001")["external_userid"]
    assert listed == sorted(f.external_userid for f in fake.directory.follows_of("staff001"))
    with pytest.raises(WeChatClientException) as refused:
        client.external_contact.list("nobody")
    assert refused.value.errcode == 40003


def test_get_answers_the_contact_with_every_relation_and_its_tags(
    fake: FakeWeCom, client: FakeableWeChatClient
) -> None:
    directory = fake.directory
    follow = next(f for f in directory.follows.values() if f.tag_ids)
    contact = directory.contacts[follow.external_userid]

    answer = client.external_contact.get(follow.external_userid)

    assert answer["external_contact"]["external_userid"] == contact.external_userid
    assert answer["external_contact"]["name"] == contact.name
    assert answer["external_contact"]["gender"] == contact.gender
    assert answer["external_contact"].get("unionid", "") == contact.unionid
    relations = {f["userid"]: f for f in answer["follow_user"]}
    assert set(relations) == {
        f.userid for f in directory.follows_of_contact(contact.external_userid)
    }
    mine = relations[follow.userid]
    assert (mine["createtime"], mine["add_way"], mine["state"]) == (
        follow.createtime,
        follow.add_way,
        follow.state,
    )
    tag = directory.tags[follow.tag_ids[0]]
    assert {
        "group_name": directory.tag_groups[tag.group_id].group_name,
        "tag_name": tag.name,
        "tag_id": tag.id,
        "type": 1,
    } in mine["tags"]


def test_get_of_nobodys_contact_is_84061(client: FakeableWeChatClient) -> None:
    with pytest.raises(WeChatClientException) as refused:
        client.external_contact.get("wmNOBODY")
    assert refused.value.errcode == 84061


def test_batch_get_by_user_walks_every_relation_by_cursor(
    fake: FakeWeCom, client: FakeableWeChatClient
) -> None:
    seen: list[tuple[str, str]] = []
    cursor = ""
    pages = 0
    while True:
        page = client.post(
            BATCH, data={"userid_list": ["staff002", "staff000"], "cursor": cursor, "limit": 40}
        )
        pages += 1
        for entry in page["external_contact_list"]:
            info = entry["follow_info"]
            assert set(info) >= {"userid", "createtime", "tag_id", "add_way", "state", "remark"}
            assert entry["external_contact"]["external_userid"]
            seen.append((info["userid"], entry["external_contact"]["external_userid"]))
        cursor = page["next_cursor"]
        if not cursor:
            break
        assert len(page["external_contact_list"]) == 40

    wanted = sorted(k for k in fake.directory.follows if k[0] in ("staff000", "staff002"))
    assert seen == wanted
    assert pages == -(-len(wanted) // 40)


def test_batch_get_by_user_limits(client: FakeableWeChatClient) -> None:
    everyone = ["staff000", "staff001", "staff002"]
    page = client.post(BATCH, data={"userid_list": everyone, "limit": 500})
    assert len(page["external_contact_list"]) == 100  # above the maximum: the maximum
    default = client.post(BATCH, data={"userid_list": ["staff000", "staff001"]})
    assert len(default["external_contact_list"]) == 50
    with pytest.raises(WeChatClientException) as refused:
        client.post(BATCH, data={"userid_list": [f"u{i}" for i in range(101)]})
    assert refused.value.errcode == 40035


def test_user_get_names_the_staff_member(client: FakeableWeChatClient) -> None:
    assert client.user.get("staff001")["name"] == "员工001"
    with pytest.raises(WeChatClientException) as refused:
        client.user.get("nobody")
    assert refused.value.errcode == 60111
