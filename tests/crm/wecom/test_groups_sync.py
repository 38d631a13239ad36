"""The "groups" scope of the full sync against the WeCom fake: 50 chats imported with the right
counts, a second run writes nothing, a run killed or failed halfway and run again ends as a
clean run does, chats gone from WeCom are dismissed, chats out of sight are skipped."""

import pytest
from wechatpy.exceptions import WeChatClientException

import crm.wecom.groups as wecom_groups
from crm.models import Customer, Group, GroupMembership, WeComSyncRun, WeComSyncStatus
from crm.services.customers import staff_members_ensure
from crm.wecom.sync import wecom_sync_run
from devstack.wecom_directory import CHAT_MEMBER_EXTERNAL, Directory
from tests.crm.wecom.groups_support import customer_of, expected_state, small_corp, state

# Committed for real: a sync commits chat by chat, and the advisory locks of new identities
# would otherwise pile up in the test's one transaction.
pytestmark = pytest.mark.django_db(transaction=True)


def sync() -> WeComSyncRun:
    return wecom_sync_run(scopes=["groups"], trigger="command")


def external_members(directory: Directory) -> list[str]:
    return [
        m.userid
        for c in directory.chats.values()
        for m in c.members
        if m.type == CHAT_MEMBER_EXTERNAL
    ]


@pytest.fixture
def corp(fake):
    fake.directory = Directory.generate(staff=30, contacts=20_000, chats=50)
    return fake.directory


class Killed(BaseException):
    """The worker process dying (not an error the run records: it stays running)."""


def fail_after(monkeypatch, reads: int, fault) -> None:
    """Make the `reads + 1`-th groupchat/get fail with `fault()` (raised, or a callable that
    sets up the fake so the call fails)."""
    calls = {"n": 0}
    real = wecom_groups.wecom_call

    def call(fn, *args, **kwargs):
        if getattr(fn, "__name__", "") == "get":
            calls["n"] += 1
            if calls["n"] == reads + 1:
                fault()
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(wecom_groups, "wecom_call", call)


def test_full_sync_imports_every_chat_and_a_second_run_writes_nothing(fake, corp) -> None:
    run = sync()

    members = external_members(corp)
    assert run.status == WeComSyncStatus.FINISHED
    assert run.changes == {
        "group_chats_created": 50,
        "stays_opened": len(members),
        "customers_created": len(set(members)),
    }
    assert run.items_done == 50
    assert state(corp) == expected_state(corp)
    before = state(corp)
    customers = Customer.objects.count()

    second = sync()

    assert second.pk != run.pk
    assert second.changes == {}
    assert state(corp) == before
    assert Customer.objects.count() == customers


def test_a_run_killed_halfway_resumes_from_its_cursor(fake, corp, monkeypatch) -> None:
    monkeypatch.setattr(wecom_groups, "GROUPCHAT_PAGE_SIZE", 10)

    def kill() -> None:
        raise Killed

    fail_after(monkeypatch, 23, kill)
    with pytest.raises(Killed):
        sync()
    run = WeComSyncRun.objects.get()
    assert run.status == WeComSyncStatus.RUNNING
    # Two pages and three chats of the third applied; the cursor at the third page.
    assert Group.objects.count() == 23
    assert run.cursor["groups"]["next"] == sorted(corp.chats)[19]
    monkeypatch.undo()
    monkeypatch.setattr(wecom_groups, "GROUPCHAT_PAGE_SIZE", 10)

    resumed = sync()

    assert resumed.pk == run.pk
    assert resumed.status == WeComSyncStatus.FINISHED
    assert state(corp) == expected_state(corp)
    members = external_members(corp)
    assert resumed.changes["group_chats_created"] == 50
    assert resumed.changes["stays_opened"] == len(members)


def test_a_run_failed_halfway_and_run_again_ends_as_a_clean_run(fake, corp, monkeypatch) -> None:
    monkeypatch.setattr(wecom_groups, "GROUPCHAT_PAGE_SIZE", 10)
    fail_after(
        monkeypatch,
        31,
        lambda: fake.inject_http_error("externalcontact/groupchat/get", status=502),
    )
    with pytest.raises(WeChatClientException):
        sync()
    assert WeComSyncRun.objects.get().status == WeComSyncStatus.FAILED

    again = sync()

    assert again.status == WeComSyncStatus.FINISHED
    assert state(corp) == expected_state(corp)
    assert again.changes["group_chats_created"] == 19


def test_the_nightly_run_applies_what_no_event_said(fake, monkeypatch) -> None:
    fake.directory = corp = small_corp(chats=5)
    sync()
    gone, changed = list(corp.chats.values())[:2]
    gone_stays = sum(m.type == CHAT_MEMBER_EXTERNAL for m in gone.members)
    leaver = next(m for m in changed.members if m.type == CHAT_MEMBER_EXTERNAL)
    newcomer = next(u for u in corp.contacts if all(m.userid != u for m in changed.members))
    corp.chat_dismiss(gone.chat_id)
    corp.chat_leave(changed.chat_id, leaver.userid)
    corp.chat_join(changed.chat_id, newcomer, join_time=1_710_000_000)
    changed.name = "改名后的群"
    is_new_customer = customer_of(newcomer) is None

    run = sync()

    assert run.changes == {
        "group_chats_dismissed": 1,
        "group_chats_renamed": 1,
        "stays_closed": gone_stays + 1,
        "stays_opened": 1,
        **({"customers_created": 1} if is_new_customer else {}),
    }
    group = Group.objects.get(external_id=gone.chat_id)
    assert group.dismissed_at == run.started_at
    assert not group.memberships.filter(left_at=None).exists()
    left = GroupMembership.objects.get(
        customer_id=customer_of(leaver.userid), group__external_id=changed.chat_id
    )
    assert left.left_at is not None and left.left_at > run.started_at
    assert Group.objects.get(external_id=changed.chat_id).name == "改名后的群"
    assert sync().changes == {}


def test_a_chat_out_of_sight_is_skipped_not_dismissed(fake, monkeypatch) -> None:
    fake.directory = corp = small_corp(chats=3)
    sync()
    before = state(corp)
    fake.inject_errcode("externalcontact/groupchat/get", 60011)

    run = sync()

    assert run.changes == {"group_chats_skipped": 1}
    assert state(corp) == before
    assert not Group.objects.filter(dismissed_at__isnull=False).exists()


def test_a_chat_dismissed_between_list_and_read_is_dismissed(fake, monkeypatch) -> None:
    fake.directory = corp = small_corp(chats=3)
    sync()
    chat = next(iter(corp.chats.values()))
    real = wecom_groups.wecom_call

    def call(fn, *args, **kwargs):
        if getattr(fn, "__name__", "") == "get" and args == (chat.chat_id,):
            corp.chats.pop(chat.chat_id, None)
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(wecom_groups, "wecom_call", call)

    run = sync()

    assert run.changes["group_chats_dismissed"] == 1
    assert Group.objects.get(external_id=chat.chat_id).dismissed_at is not None


def test_a_corp_too_large_to_list_at_once_is_walked_by_owner(fake) -> None:
    fake.directory = corp = Directory.generate(staff=1_001, contacts=300, chats=5, tags=0)
    staff_members_ensure(corp.staff)  # as the contacts scope, walked first, leaves them
    ownerless = Group.objects.create(kind="wecom_group", external_id="wr-no-owner", name="无群主")

    run = sync()

    assert run.changes["group_chats_created"] == 5
    assert state(corp) == {**expected_state(corp), "wr-no-owner": ("无群主", None, False, [])}
    lists = [c for c in fake.calls() if c["endpoint"] == "externalcontact/groupchat/list"]
    assert [c["errcode"] for c in lists] == [81017] + [0] * 11  # 1001 owners, 100 a call
    # A chat gone from WeCom is dismissed; a chat without an owner here is not vouched for.
    corp.chat_dismiss(next(iter(corp.chats)))
    assert sync().changes["group_chats_dismissed"] == 1
    ownerless.refresh_from_db()
    assert ownerless.dismissed_at is None


def test_a_chat_an_integration_sent_is_not_wecoms_to_dismiss(fake) -> None:
    fake.directory = corp = small_corp(chats=2)
    sent = Group.objects.create(kind="wecom_group", external_id="wr-from-api", name="接口建的群")
    listed = next(iter(corp.chats))
    Group.objects.create(kind="wecom_group", external_id=listed, name="旧名")

    run = sync()

    sent.refresh_from_db()
    assert (sent.dismissed_at, sent.is_wecom_synced) == (None, False)
    assert "group_chats_dismissed" not in run.changes
    # The chat WeCom lists is now WeCom's: dismissed when WeCom stops listing it.
    assert Group.objects.get(external_id=listed).is_wecom_synced
    corp.chat_dismiss(listed)
    assert sync().changes["group_chats_dismissed"] == 1
