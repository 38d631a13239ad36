"""The full sync's contacts scope through the WeCom fake: 20k customers of 30 staff members
imported with the right counts, a second run writing nothing, a run stopped halfway resumed
to the same state as a clean run, deletions WeCom never told reconciled, staff members the
app may not see skipped, rate limits waited out."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import (
    Customer,
    StaffMember,
    WeComFollow,
    WeComSyncRun,
    WeComSyncSeenFollow,
    WeComSyncStatus,
)
from crm.personal_data import hash_identity
from crm.wecom import client as client_module
from crm.wecom import contacts_sync
from crm.wecom.client import ERRCODE_NO_PRIVILEGE, ERRCODE_RATE_LIMITED
from crm.wecom.contacts import contact_details_parse, contacts_apply
from crm.wecom.contacts_sync import ENDPOINT_BATCH_GET_BY_USER
from crm.wecom.sync import wecom_sync_run
from devstack.wecom_directory import Directory
from devstack.wecom_fake import FakeWeCom
from tests.campaigns.support import CORP_ID
from tests.crm.wecom.contacts_support import contacts_dump, row_versions

pytestmark = pytest.mark.django_db(transaction=True)


GENDERS = {0: "unknown", 1: "male", 2: "female"}


def expected_customers(directory: Directory) -> list[tuple[str, str, str, str]]:
    earliest: dict[str, tuple[int, str]] = {}
    for follow in directory.follows.values():
        current = earliest.get(follow.external_userid)
        if current is None or (follow.createtime, follow.userid) < current:
            earliest[follow.external_userid] = (follow.createtime, follow.userid)
    return sorted(
        (
            hash_identity("wecom", CORP_ID, contact.external_userid),
            contact.name,
            GENDERS[contact.gender],
            earliest[contact.external_userid][1],
        )
        for contact in directory.contacts.values()
        if contact.external_userid in earliest
    )


def _sync() -> WeComSyncRun:
    return wecom_sync_run(scopes=["contacts"], trigger="command")


def test_full_sync_of_20k_contacts_then_nothing_to_write(fake: FakeWeCom) -> None:
    fake.directory = Directory.generate(staff=30, contacts=20_000, chats=0, tags=200)
    relations = len(fake.directory.follows)
    with_unionid = sum(1 for c in fake.directory.contacts.values() if c.unionid)

    started = time.monotonic()
    run = _sync()
    first_seconds = time.monotonic() - started

    assert run.status == WeComSyncStatus.FINISHED
    assert run.changes == {"contacts_created": 20_000, "follows_opened": relations}
    assert (run.items_done, run.items_total) == (relations, relations)
    assert Customer.objects.count() == 20_000
    assert WeComFollow.objects.filter(deleted_at__isnull=True).count() == relations
    assert StaffMember.objects.exclude(name="").count() == 30
    dump = contacts_dump()
    assert len(dump["identities"]) == 20_000 + with_unionid
    # Each customer is named and owned as WeCom says: the earliest relation's staff member.
    assert dump["customers"] == expected_customers(fake.directory)
    assert not WeComSyncSeenFollow.objects.exists()

    versions = [row_versions(t) for t in ("crm_customer", "crm_wecomfollow", "crm_identity")]
    second = _sync()

    assert second.changes == {}
    assert second.items_done == relations
    assert [
        row_versions(t) for t in ("crm_customer", "crm_wecomfollow", "crm_identity")
    ] == versions
    assert first_seconds < 60, first_seconds


class Killed(BaseException):
    """The process dying mid-page: not an Exception, so the run is left running, as after a
    kill -9."""


def _wipe() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE crm_customer, crm_staffmember, crm_wecomsyncrun, crm_wecomsyncseenfollow "
            "CASCADE"
        )


def test_a_run_killed_halfway_resumes_to_the_state_of_a_clean_run(
    fake: FakeWeCom, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.directory = Directory.generate(staff=30, contacts=10_000, chats=0, tags=200)
    clean_run = _sync()
    clean = contacts_dump()
    _wipe()

    pages = {"n": 0}
    original = contacts_sync.follows_seen_record

    def dying(**kwargs: object) -> None:
        original(**kwargs)  # type: ignore[arg-type]
        pages["n"] += 1
        if pages["n"] == 60:  # about halfway, inside the page's transaction
            raise Killed

    monkeypatch.setattr(contacts_sync, "follows_seen_record", dying)
    with pytest.raises(Killed):
        _sync()
    killed = WeComSyncRun.objects.get()
    assert killed.status == WeComSyncStatus.RUNNING
    assert 0 < killed.items_done < clean_run.items_done
    assert 0 < Customer.objects.count() < 10_000

    monkeypatch.setattr(contacts_sync, "follows_seen_record", original)
    resumed = _sync()

    assert resumed.pk == killed.pk
    assert contacts_dump() == clean
    assert resumed.changes == clean_run.changes
    assert (resumed.items_done, resumed.items_total) == (
        clean_run.items_done,
        clean_run.items_total,
    )


def _small_corp(fake: FakeWeCom) -> Directory:
    fake.directory = Directory.generate(staff=5, contacts=600, chats=0, tags=20)
    return fake.directory


def test_relations_gone_from_wecom_are_ended_by_the_next_run(fake: FakeWeCom) -> None:
    directory = _small_corp(fake)
    _sync()
    gone = [key for key in sorted(directory.follows) if key[0] == "staff001"][:7]
    for key in gone:
        del directory.follows[key]

    run = _sync()

    assert run.changes == {"follows_ended": 7}
    ended = WeComFollow.objects.filter(deleted_at__isnull=False)
    assert sorted(ended.values_list("staff_member__wecom_userid", flat=True)) == ["staff001"] * 7
    assert {f.deleted_at for f in ended} == {run.started_at}
    # Owners move to the staff member still connected; a customer left with none keeps theirs.
    expected = expected_customers(directory)
    still_connected = {row[0] for row in expected}
    assert [c for c in contacts_dump()["customers"] if c[0] in still_connected] == expected
    assert _sync().changes == {}


def test_a_relation_back_in_wecom_is_reopened(fake: FakeWeCom) -> None:
    directory = _small_corp(fake)
    _sync()
    key = sorted(directory.follows)[0]
    follow = directory.follows.pop(key)
    _sync()
    directory.follows[key] = follow

    assert _sync().changes == {"follows_opened": 1}
    assert not WeComFollow.objects.filter(deleted_at__isnull=False).exists()


def test_a_staff_member_the_app_may_not_see_is_skipped(fake: FakeWeCom) -> None:
    directory = _small_corp(fake)
    _sync()
    fake.inject_errcode("externalcontact/list", ERRCODE_NO_PRIVILEGE)  # staff000, listed first

    run = _sync()

    # Skipped, and their relations are not taken for deleted.
    assert run.changes == {"staff_skipped_no_privilege": 1}
    assert not WeComFollow.objects.filter(deleted_at__isnull=False).exists()
    assert run.items_total == sum(1 for f in directory.follows.values() if f.userid != "staff000")


def test_rate_limits_are_waited_out(fake: FakeWeCom, monkeypatch: pytest.MonkeyPatch) -> None:
    _small_corp(fake)
    # No waiting in a test: the waits between attempts are read when a call is refused.
    monkeypatch.setattr(client_module, "BACKOFF_SECONDS", (0.0, 0.0, 0.0, 0.0, 0.0))
    fake.inject_errcode(ENDPOINT_BATCH_GET_BY_USER, ERRCODE_RATE_LIMITED, times=2)

    run = _sync()

    assert run.status == WeComSyncStatus.FINISHED
    assert Customer.objects.count() == 600
    errcodes = [c["errcode"] for c in fake.calls() if c["endpoint"] == ENDPOINT_BATCH_GET_BY_USER]
    assert errcodes[:3] == [ERRCODE_RATE_LIMITED, ERRCODE_RATE_LIMITED, 0]


def test_a_page_costs_the_same_queries_whatever_its_length(fake: FakeWeCom) -> None:
    directory = _small_corp(fake)
    entries = [
        {
            "external_contact": {
                "external_userid": f.external_userid,
                "name": directory.contacts[f.external_userid].name,
                "gender": 1,
                "unionid": directory.contacts[f.external_userid].unionid,
            },
            "follow_info": {
                "userid": f.userid,
                "createtime": f.createtime,
                "add_way": f.add_way,
                "tag_id": f.tag_ids,
            },
        }
        for f in sorted(directory.follows.values(), key=lambda f: f.external_userid)
    ]
    counts = []
    for page in (entries[:10], entries[10:110], entries[10:110]):
        with CaptureQueriesContext(connection) as queries:
            contacts_apply(
                contacts=contact_details_parse(page), observed_at=timezone.now(), actor="test"
            )
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert counts[2] <= counts[1], counts  # the same page again: nothing to create


def test_an_expired_access_token_is_fetched_again(fake: FakeWeCom) -> None:
    _small_corp(fake)
    _sync()
    fake.expire_tokens()  # the token in the shared cache is refused from now on (42001)

    run = _sync()

    assert (run.status, run.changes) == (WeComSyncStatus.FINISHED, {})
    gettokens = [c for c in fake.calls() if c["endpoint"] == "gettoken"]
    assert len(gettokens) == 2
