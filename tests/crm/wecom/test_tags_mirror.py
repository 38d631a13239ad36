"""WeCom's corp tag groups and tags mirrored here: the full sync's tag step and the
change_external_tag callbacks, each applied once even when repeated or out of order."""

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection

from crm.models import CustomerTag, Tag, TagGroup, TagSource, WeComFollow, WeComSyncStatus
from crm.wecom.registry import HANDLERS, CallbackEvent
from crm.wecom.sync import wecom_sync_run
from crm.wecom.tags import corp_tags_apply
from devstack.wecom_directory import CorpTag, CorpTagGroup, Directory
from devstack.wecom_fake import FakeWeCom
from tests.crm.wecom.tag_support import corp, relations_copy, writes_to
from tests.factories.crm import CustomerTagFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db

TAG_TABLES = ("crm_tag", "crm_taggroup", "crm_customertag")


def _event(change_type: str, wecom_id: str, tag_type: str = "tag", **fields: str) -> str:
    event = CallbackEvent(
        event="change_external_tag",
        change_type=change_type,
        event_at=datetime(2026, 12, 1, tzinfo=UTC),
        fields={"Id": wecom_id, "TagType": tag_type, "ChangeType": change_type, **fields},
        event_id=1,
    )
    return HANDLERS[("change_external_tag", change_type)](event)


def _mirror() -> dict[str, tuple[str, str]]:
    """Our WeCom-linked tags: WeCom tag id -> (WeCom group id, name)."""
    return {
        t.wecom_tag_id: (t.group.wecom_group_id, t.name)
        for t in Tag.objects.select_related("group").exclude(wecom_tag_id=None)
    }


def _wecom(directory: Directory) -> dict[str, tuple[str, str]]:
    return {t.id: (t.group_id, t.name) for t in directory.tags.values()}


def test_full_sync_mirrors_200_tags_in_20_groups_and_a_second_run_writes_nothing(
    fake: FakeWeCom,
) -> None:
    directory = corp(fake, contacts=0, tags=200)

    first = wecom_sync_run(scopes=["tags"], trigger="test")

    assert first.status == WeComSyncStatus.FINISHED
    assert first.changes == {"tag_groups_created": 20, "tags_created": 200}
    assert first.items_done == 220
    assert _mirror() == _wecom(directory)
    groups = TagGroup.objects.exclude(wecom_group_id=None)
    assert groups.count() == 20
    assert all(g.is_wecom_mirrored and not g.is_exclusive for g in groups)
    assert {g.wecom_group_id: g.name for g in groups} == {
        g.group_id: g.group_name for g in directory.tag_groups.values()
    }

    with writes_to(*TAG_TABLES) as writes:
        second = wecom_sync_run(scopes=["tags"], trigger="test")
    assert second.pk != first.pk
    assert second.changes == {}
    assert writes == []


def test_full_sync_renames_deletes_and_takes_deleted_tags_holdings_away(
    fake: FakeWeCom,
) -> None:
    directory = corp(fake, contacts=6, tags=20)
    wecom_sync_run(scopes=["tags"], trigger="test")
    relations_copy(directory)
    gone_group, kept_group = list(directory.tag_groups)
    renamed, deleted = [t.id for t in directory.tags.values() if t.group_id == kept_group][:2]
    held = CustomerTag.objects.filter(tag__wecom_tag_id=deleted).count()
    directory.tags[renamed].name = "高意向"
    del directory.tags[deleted]
    for follow in directory.follows.values():
        follow.tag_ids = [t for t in follow.tag_ids if t != deleted]
    for tag_id in [t.id for t in directory.tags.values() if t.group_id == gone_group]:
        del directory.tags[tag_id]
    del directory.tag_groups[gone_group]

    run = wecom_sync_run(scopes=["tags"], trigger="test")

    assert _mirror() == _wecom(directory)
    assert Tag.objects.get(wecom_tag_id=renamed).name == "高意向"
    assert not TagGroup.objects.filter(wecom_group_id=gone_group).exists()
    assert run.changes["tags_renamed"] == 1
    assert run.changes["tag_groups_deleted"] == 1
    assert run.changes["tags_deleted"] == 11
    assert not CustomerTag.objects.filter(tag__wecom_tag_id=deleted).exists()
    assert held > 0
    assert run.changes["tag_holdings_deleted"] >= held


def test_a_local_group_and_tag_of_the_same_name_are_adopted_with_their_holdings(
    fake: FakeWeCom,
) -> None:
    fake.directory = Directory(
        tag_groups={"etG1": CorpTagGroup("etG1", "消费能力", 1_700_000_000)},
        tags={"etT1": CorpTag("etT1", "高", "etG1", 1_700_000_000)},
    )
    group = TagGroupFactory(name="消费能力", is_exclusive=True)
    tag = TagFactory(group=group, name="高")
    holding = CustomerTagFactory(tag=tag)
    other = TagGroupFactory(name="已有企微组", wecom_group_id="etOLD")

    run = wecom_sync_run(scopes=["tags"], trigger="test")

    group.refresh_from_db()
    tag.refresh_from_db()
    assert (group.wecom_group_id, tag.wecom_tag_id) == ("etG1", "etT1")
    assert group.is_exclusive and not group.is_wecom_mirrored  # the operator's switches kept
    assert CustomerTag.objects.filter(pk=holding.pk, source=TagSource.MANUAL).exists()
    assert run.changes == {"tag_groups_adopted": 1, "tags_adopted": 1, "tag_groups_deleted": 1}
    assert not TagGroup.objects.filter(pk=other.pk).exists()  # linked, gone from WeCom, empty


def test_a_name_taken_by_a_group_linked_elsewhere_gets_the_id_tail(fake: FakeWeCom) -> None:
    TagGroupFactory(name="会员等级", wecom_group_id="etOTHER")
    TagFactory(group=TagGroup.objects.get(name="会员等级"), name="本地标签")
    fake.directory = Directory(
        tag_groups={"etNEW123456": CorpTagGroup("etNEW123456", "会员等级", 1_700_000_000)},
        tags={"etT1": CorpTag("etT1", "金卡", "etNEW123456", 1_700_000_000)},
    )

    wecom_sync_run(scopes=["tags"], trigger="test")

    assert TagGroup.objects.get(wecom_group_id="etNEW123456").name == "会员等级（123456）"
    # The other one kept its own tag: unlinked, no longer mirrored, not deleted.
    unlinked = TagGroup.objects.get(name="会员等级")
    assert (unlinked.wecom_group_id, unlinked.is_wecom_mirrored) == (None, False)


@pytest.mark.parametrize("repeat", [1, 2])
def test_callbacks_create_update_delete_shuffle_applied_once_even_twice(
    fake: FakeWeCom, repeat: int
) -> None:
    directory = corp(fake, contacts=0, tags=20)
    wecom_sync_run(scopes=["tags"], trigger="test")
    group_id = next(iter(directory.tag_groups))
    directory.tags["etNEW"] = CorpTag("etNEW", "直播间新客", group_id, 1_700_000_100)
    outcomes = [_event("create", "etNEW") for _ in range(repeat)]
    assert outcomes == ["applied"] + ["ignored"] * (repeat - 1)
    assert Tag.objects.get(wecom_tag_id="etNEW").group.wecom_group_id == group_id

    directory.tags["etNEW"].name = "直播间老客"
    directory.tag_groups[group_id].group_name = "直播标签"
    outcomes = [_event("update", "etNEW") for _ in range(repeat)]
    assert outcomes == ["applied"] + ["ignored"] * (repeat - 1)
    assert Tag.objects.get(wecom_tag_id="etNEW").name == "直播间老客"
    # The tag's read named its group's new name too: the group's own event finds it done.
    assert [_event("update", group_id, "tag_group") for _ in range(repeat)] == ["ignored"] * repeat
    assert TagGroup.objects.get(wecom_group_id=group_id).name == "直播标签"

    directory.tag_groups[group_id].order = 9
    assert _event("shuffle", group_id) == "ignored"
    assert _event("shuffle", "") == "ignored"

    del directory.tags["etNEW"]
    with writes_to(*TAG_TABLES) as writes:
        outcomes = [_event("delete", "etNEW") for _ in range(repeat)]
    assert outcomes == ["applied"] + ["ignored"] * (repeat - 1)
    assert not Tag.objects.filter(wecom_tag_id="etNEW").exists()
    assert len([w for w in writes if w.startswith("DELETE")]) >= 1

    for tag_id in [t.id for t in directory.tags.values() if t.group_id == group_id]:
        del directory.tags[tag_id]
    del directory.tag_groups[group_id]
    outcomes = [_event("delete", group_id, "tag_group") for _ in range(repeat)]
    assert outcomes == ["applied"] + ["ignored"] * (repeat - 1)
    assert not TagGroup.objects.filter(wecom_group_id=group_id).exists()
    assert _mirror() == _wecom(directory)


def test_callbacks_out_of_order_end_in_wecoms_state(fake: FakeWeCom) -> None:
    directory = corp(fake, contacts=0, tags=10)
    wecom_sync_run(scopes=["tags"], trigger="test")
    group_id = next(iter(directory.tag_groups))
    # The tag was created and deleted in WeCom; its delete event arrives before its create.
    assert _event("delete", "etGONE") == "ignored"
    assert _event("create", "etGONE") == "ignored"
    assert not Tag.objects.filter(wecom_tag_id="etGONE").exists()
    # An update arriving before the create of a new group: the group and tag appear at once.
    directory.tag_groups["etG2"] = CorpTagGroup("etG2", "新标签组", 1_700_000_200)
    directory.tags["etT2"] = CorpTag("etT2", "新标签", "etG2", 1_700_000_200)
    assert _event("update", "etT2") == "applied"
    assert _event("create", "etG2", "tag_group") == "ignored"
    assert TagGroup.objects.get(wecom_group_id="etG2").is_wecom_mirrored
    assert _mirror() == _wecom(directory)
    assert group_id in {g.wecom_group_id for g in TagGroup.objects.all()}


def test_a_rule_group_tag_is_not_mirrored(fake: FakeWeCom) -> None:
    corp(fake, contacts=0, tags=10)
    assert _event("create", "etSTRATEGY", StrategyId="3") == "ignored"
    assert fake.calls() == []


def test_a_tag_created_in_wecom_after_the_relations_gives_its_holdings(fake: FakeWeCom) -> None:
    directory = corp(fake, contacts=4, tags=10)
    wecom_sync_run(scopes=["tags"], trigger="test")
    customers = relations_copy(directory)
    group_id = next(iter(directory.tag_groups))
    directory.tags["etLATE"] = CorpTag("etLATE", "晚到的标签", group_id, 1_700_000_300)
    # The relations here name the tag before the mirror knows it (an edit before the create).
    customer = next(iter(customers.values()))
    follow = WeComFollow.objects.filter(customer=customer).first()
    assert follow is not None
    WeComFollow.objects.filter(pk=follow.pk).update(wecom_tag_ids=[*follow.wecom_tag_ids, "etLATE"])

    assert _event("create", "etLATE") == "applied"

    assert CustomerTag.objects.get(customer=customer, tag__wecom_tag_id="etLATE").source == (
        TagSource.WECOM
    )


@pytest.mark.django_db(transaction=True)
def test_two_mirrors_at_once_apply_wecoms_tags_once() -> None:
    directory = Directory.generate(staff=1, contacts=0, chats=0, tags=30, seed=3)
    answer = [
        {
            "group_id": g.group_id,
            "group_name": g.group_name,
            "tag": [
                {"id": t.id, "name": t.name} for t in directory.tags.values() if t.group_id == gid
            ],
        }
        for gid, g in directory.tag_groups.items()
    ]
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def mirror() -> None:
        try:
            barrier.wait()
            outcomes.append(corp_tags_apply(tag_groups=answer, is_complete=True))
        except Exception as error:  # reported by the assertion below
            outcomes.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=mirror) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(isinstance(outcome, dict) for outcome in outcomes), outcomes
    assert sorted(outcomes, key=len) == [{}, {"tag_groups_created": 3, "tags_created": 30}]
    assert _mirror() == _wecom(directory)
