"""The whole of a full sync, every scope at once, on the issue's corp through the WeCom fake:
20k contacts of 30 staff members, 50 customer group chats and 200 corp tags. The database ends
as WeCom's directory says; a second run changes nothing; a run killed halfway and started
again ends in the same state."""

from typing import Any

import pytest
from django.db import connection

from crm.models import WeComSyncRun, WeComSyncSeenChat, WeComSyncStatus
from crm.personal_data import hash_identity
from crm.wecom import client as client_module
from crm.wecom.registry import SYNC_SCOPES
from crm.wecom.sync import wecom_sync_run
from crm.wecom.sync_labels import CHANGE_LABELS
from devstack.wecom_directory import CHAT_MEMBER_EXTERNAL, Directory
from devstack.wecom_fake import FakeWeCom
from tests.campaigns.support import CORP_ID
from tests.crm.wecom.contacts_support import contacts_dump, row_versions

pytestmark = pytest.mark.django_db(transaction=True)

TABLES = (
    "crm_customer",
    "crm_identity",
    "crm_staffmember",
    "crm_wecomfollow",
    "crm_taggroup",
    "crm_tag",
    "crm_customertag",
    "crm_group",
    "crm_groupmembership",
)


def _hash(external_userid: str) -> str:
    return hash_identity("wecom", CORP_ID, external_userid)


def _state() -> dict[str, Any]:
    """What the operator would see, without surrogate keys or write times."""
    queries = {
        "tags": """
            SELECT g.wecom_group_id, g.name, g.is_wecom_mirrored, t.wecom_tag_id, t.name
            FROM crm_tag t JOIN crm_taggroup g ON g.id = t.group_id ORDER BY 4""",
        "customer_tags": """
            SELECT i.value_hash, t.wecom_tag_id, ct.source
            FROM crm_customertag ct JOIN crm_tag t ON t.id = ct.tag_id
            JOIN crm_identity i ON i.customer_id = ct.customer_id AND i.provider = 'wecom'
            ORDER BY 1, 2""",
        "stays": """
            SELECT g.external_id, i.value_hash, m.joined_at, m.left_at IS NULL
            FROM crm_groupmembership m JOIN crm_group g ON g.id = m.group_id
            JOIN crm_identity i ON i.customer_id = m.customer_id AND i.provider = 'wecom'
            ORDER BY 1, 2""",
        "groups": """
            SELECT g.external_id, g.name, s.wecom_userid, g.dismissed_at IS NULL
            FROM crm_group g LEFT JOIN crm_staffmember s ON s.id = g.owner_id ORDER BY 1""",
    }
    state: dict[str, Any] = dict(contacts_dump())
    with connection.cursor() as cursor:
        for name, query in queries.items():
            cursor.execute(query)
            state[name] = cursor.fetchall()
    return state


def _assert_as_wecom_says(directory: Directory, state: dict[str, Any]) -> None:
    assert len(state["customers"]) == len(directory.contacts) == 20_000
    assert len(state["follows"]) == len(directory.follows)
    assert {(h, userid) for h, userid, *_rest in state["follows"]} == {
        (_hash(external_userid), userid) for userid, external_userid in directory.follows
    }
    assert {row[3] for row in state["tags"]} == set(directory.tags)
    assert len({row[0] for row in state["tags"]}) == len(directory.tag_groups)
    held = {
        (_hash(f.external_userid), tag_id)
        for f in directory.follows.values()
        for tag_id in f.tag_ids
    }
    assert {(h, tag_id) for h, tag_id, _source in state["customer_tags"]} == held
    assert {source for *_rest, source in state["customer_tags"]} == {"wecom"}
    assert [(chat_id, name, owner) for chat_id, name, owner, _open in state["groups"]] == sorted(
        (chat.chat_id, chat.name, chat.owner) for chat in directory.chats.values()
    )
    members = {
        (chat.chat_id, _hash(member.userid))
        for chat in directory.chats.values()
        for member in chat.members
        if member.type == CHAT_MEMBER_EXTERNAL
    }
    assert {(chat_id, h) for chat_id, h, _joined, is_open in state["stays"] if is_open} == members


def _sync() -> WeComSyncRun:
    return wecom_sync_run(scopes=SYNC_SCOPES, trigger="command")


def test_the_whole_corp_then_nothing_to_write(fake: FakeWeCom) -> None:
    fake.directory = Directory.generate(staff=30, contacts=20_000, chats=50, tags=200)
    run = _sync()
    assert run.status == WeComSyncStatus.FINISHED
    assert run.changes["contacts_created"] == 20_000
    assert run.changes["tags_created"] == 200
    assert run.changes["group_chats_created"] == 50
    assert set(run.changes) <= set(CHANGE_LABELS)  # every kind reads in words
    state = _state()
    _assert_as_wecom_says(fake.directory, state)

    versions = {table: row_versions(table) for table in TABLES}
    again = _sync()
    assert again.changes == {}
    assert not WeComSyncSeenChat.objects.exists()  # a finished run's bookkeeping is gone
    assert _state() == state
    for table in TABLES:
        assert row_versions(table) == versions[table], table


class Killed(BaseException):
    """The process dying mid-call: not an Exception, so the run is left running, as after a
    kill -9."""


def test_a_run_killed_halfway_ends_as_a_clean_run(
    fake: FakeWeCom, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.directory = Directory.generate(staff=30, contacts=20_000, chats=50, tags=200)
    calls = {"n": 0}
    original = client_module.WeComClient._request

    def dying(self: client_module.WeComClient, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 150:  # among the contacts' pages, about halfway
            raise Killed
        return original(self, *args, **kwargs)

    monkeypatch.setattr(client_module.WeComClient, "_request", dying)
    with pytest.raises(Killed):
        _sync()
    killed = WeComSyncRun.objects.get()
    assert killed.status == WeComSyncStatus.RUNNING

    monkeypatch.setattr(client_module.WeComClient, "_request", original)
    resumed = _sync()
    assert (resumed.pk, resumed.status) == (killed.pk, WeComSyncStatus.FINISHED)
    _assert_as_wecom_says(fake.directory, _state())
