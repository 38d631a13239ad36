"""The WeCom fake's corp tag endpoints, through wechatpy as the product calls them: the real
API's fields and errcodes."""

import pytest
from wechatpy.exceptions import WeChatClientException

from crm.wecom.client import wecom_client
from devstack.wecom_directory import CorpTag, CorpTagGroup, Directory, Follow
from devstack.wecom_fake import FakeWeCom

# The client keeps its access token in Django's cache (a database table here).
pytestmark = pytest.mark.django_db


@pytest.fixture
def directory(fake: FakeWeCom) -> Directory:
    fake.directory = Directory(
        staff={"zhangsan": "张三"},
        tag_groups={"etG1": CorpTagGroup("etG1", "客户等级", 1_700_000_000, 1)},
        tags={
            "etT1": CorpTag("etT1", "一般", "etG1", 1_700_000_000, 1),
            "etT2": CorpTag("etT2", "重要", "etG1", 1_700_000_000, 2),
        },
        follows={("zhangsan", "wmC1"): Follow("zhangsan", "wmC1", 1_700_000_000)},
    )
    return fake.directory


def _errcode(call: object, *args: object, **kwargs: object) -> int | None:
    with pytest.raises(WeChatClientException) as refused:
        call(*args, **kwargs)  # type: ignore[operator]
    return refused.value.errcode  # type: ignore[no-any-return]


def test_get_corp_tag_list_answers_every_group_or_those_asked_for(directory: Directory) -> None:
    contact = wecom_client().external_contact

    everything = contact.get_corp_tag_list()["tag_group"]
    assert everything == [
        {
            "group_id": "etG1",
            "group_name": "客户等级",
            "create_time": 1_700_000_000,
            "order": 1,
            "deleted": False,
            "tag": [
                {
                    "id": "etT1",
                    "name": "一般",
                    "create_time": 1_700_000_000,
                    "order": 1,
                    "deleted": False,
                },
                {
                    "id": "etT2",
                    "name": "重要",
                    "create_time": 1_700_000_000,
                    "order": 2,
                    "deleted": False,
                },
            ],
        }
    ]
    by_tag = contact.get_corp_tag_list(["etT2"])["tag_group"]
    assert [t["id"] for t in by_tag[0]["tag"]] == ["etT2"]
    assert contact.get_corp_tag_list(["etNONE"])["tag_group"] == []
    # group_id wins over tag_id, and names the group with all its tags.
    by_group = wecom_client().post(
        "externalcontact/get_corp_tag_list", data={"group_id": ["etG1"], "tag_id": ["etT2"]}
    )["tag_group"]
    assert [t["id"] for t in by_group[0]["tag"]] == ["etT1", "etT2"]


def test_corp_tags_are_added_edited_and_deleted(directory: Directory) -> None:
    contact = wecom_client().external_contact

    added = contact.add_corp_tag(None, "购买意向", 0, [{"name": "高"}, {"name": "低"}])
    group_id = added["tag_group"]["group_id"]
    assert [t["name"] for t in added["tag_group"]["tag"]] == ["高", "低"]
    assert _errcode(contact.add_corp_tag, group_id, None, 0, [{"name": "高"}]) == 40071
    high = added["tag_group"]["tag"][0]["id"]

    contact.edit_corp_tag(high, "很高", 5)
    assert directory.tags[high].name == "很高"
    assert _errcode(contact.edit_corp_tag, "etNONE", "x", 0) == 40068

    directory.follows[("zhangsan", "wmC1")].tag_ids = [high, "etT1"]
    contact.del_corp_tag(tag_id=[high])
    assert directory.follows[("zhangsan", "wmC1")].tag_ids == ["etT1"]
    assert group_id in directory.tag_groups  # its other tag is left
    contact.del_corp_tag(group_id=[group_id])
    assert group_id not in directory.tag_groups
    assert _errcode(contact.del_corp_tag, tag_id=["etNONE"]) == 40068


def test_mark_tag_changes_one_relation_and_refuses_what_is_not_there(
    directory: Directory,
) -> None:
    contact = wecom_client().external_contact

    contact.mark_tag("zhangsan", "wmC1", add_tag=["etT1", "etT2"])
    contact.mark_tag("zhangsan", "wmC1", add_tag=["etT1"], remove_tag=["etT2"])
    assert directory.follows[("zhangsan", "wmC1")].tag_ids == ["etT1"]

    assert _errcode(contact.mark_tag, "lisi", "wmC1", add_tag=["etT1"]) == 84061
    assert _errcode(contact.mark_tag, "zhangsan", "wmC1", add_tag=["etNONE"]) == 40068
    assert directory.follows[("zhangsan", "wmC1")].tag_ids == ["etT1"]
