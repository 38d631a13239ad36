"""Tags given or taken here pushed to WeCom (mark_tag on every open relation), and the round
trip without loops: what comes back by callback or sync writes nothing."""

import importlib
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTask

from crm.models import (
    Customer,
    CustomerTag,
    Tag,
    TagGroup,
    TagPushStatus,
    TagSource,
    WeComFollow,
    WeComTagPush,
)
from crm.services.tags import tag_group_update, tags_assign, tags_remove
from crm.tasks import wecom_tag_push_task
from crm.wecom import tag_push
from crm.wecom.sync import wecom_sync_run
from crm.wecom.tag_push import MAX_ATTEMPTS, wecom_tag_pushes_send
from crm.wecom.tags import customer_wecom_tags_apply
from devstack.wecom_directory import Directory, Follow
from devstack.wecom_fake import FakeWeCom
from tests.conftest import Enqueued
from tests.crm.wecom.tag_support import corp, relations_copy, relations_refresh
from tests.factories.crm import CustomerFactory, StaffMemberFactory, TagFactory

pytestmark = pytest.mark.django_db

MARK_TAG = "externalcontact/mark_tag"


@pytest.fixture
def world(fake: FakeWeCom) -> tuple[Directory, dict[str, Customer]]:
    """A corp of 2 staff members and 6 customers with 20 tags, mirrored here with its
    relations and their tags."""
    directory = corp(fake, contacts=6, tags=20)
    wecom_sync_run(scopes=["tags"], trigger="test")
    return directory, relations_copy(directory)


def _multi_relation_contact(directory: Directory, customers: dict[str, Customer]) -> str:
    """A contact of both staff members (its relation with the second made here if needed)."""
    external_userid = next(iter(customers))
    userids = sorted(directory.staff)
    for userid in userids:
        if (userid, external_userid) not in directory.follows:
            directory.follows[(userid, external_userid)] = Follow(
                userid, external_userid, createtime=1_700_000_000
            )
            WeComFollow.objects.create(
                customer=customers[external_userid],
                staff_member=StaffMemberFactory(wecom_userid=userid),
                observed_at="2026-12-01T00:00:00Z",
            )
    return external_userid


def _tag_not_held(directory: Directory, external_userid: str) -> Tag:
    held = {t for (u, e), f in directory.follows.items() if e == external_userid for t in f.tag_ids}
    wecom_tag_id = next(t for t in sorted(directory.tags) if t not in held)
    return Tag.objects.select_related("group").get(wecom_tag_id=wecom_tag_id)


def _fake_tags(directory: Directory, external_userid: str) -> dict[str, list[str]]:
    follows = sorted(directory.follows.items())
    return {u: list(f.tag_ids) for (u, e), f in follows if e == external_userid}


def _mark_tag_calls(fake: FakeWeCom) -> list[dict[str, Any]]:
    return [call for call in fake.calls() if call["endpoint"] == MARK_TAG]


def test_round_trip_without_loops(
    fake: FakeWeCom,
    world: tuple[Directory, dict[str, Customer]],
    enqueued: list[Enqueued],
    django_capture_on_commit_callbacks: Any,
) -> None:
    directory, customers = world
    external_userid = _multi_relation_contact(directory, customers)
    customer = customers[external_userid]
    tag = _tag_not_held(directory, external_userid)

    # An operator gives the tag here: one push waits, the task is queued after commit.
    with django_capture_on_commit_callbacks(execute=True):
        outcome = tags_assign(
            customer_ids=[customer.pk], tags=[tag], source=TagSource.MANUAL, actor="user:1"
        )
    assert outcome.assigned == 1
    assert [e.name for e in enqueued] == ["crm.wecom_tag_push"]
    push = WeComTagPush.objects.get()
    assert (push.customer_id, push.tag_id, push.action, push.status) == (
        customer.pk,
        tag.pk,
        "add",
        "pending",
    )

    # The push: mark_tag on each of the customer's relations; WeCom shows it on every one.
    assert wecom_tag_pushes_send() == {"calls": 2, "done": 1}
    assert all(tag.wecom_tag_id in t for t in _fake_tags(directory, external_userid).values())
    push.refresh_from_db()
    assert (push.status, push.attempts, push.error_code) == ("done", 1, "")
    assert push.finished_at is not None
    assert all(
        tag.wecom_tag_id in f.wecom_tag_ids for f in WeComFollow.objects.filter(customer=customer)
    )

    # What comes back (edit_external_contact read from WeCom, the nightly sync) writes nothing.
    before = _snapshot()
    assert relations_refresh(directory, customer, external_userid) == {
        "tags_given": 0,
        "tags_taken": 0,
    }
    assert wecom_sync_run(scopes=["tags"], trigger="test").changes == {}
    assert wecom_tag_pushes_send() == {}
    assert _snapshot() == before
    assert CustomerTag.objects.get(customer=customer, tag=tag).source == TagSource.MANUAL
    assert WeComTagPush.objects.count() == 1
    assert len(_mark_tag_calls(fake)) == 2

    # The operator takes it away: WeCom still shows it until the push, and must not bring it
    # back meanwhile.
    with django_capture_on_commit_callbacks(execute=True):
        assert tags_remove(customer_ids=[customer.pk], tags=[tag], actor="user:1") == 1
    assert relations_refresh(directory, customer, external_userid) == {
        "tags_given": 0,
        "tags_taken": 0,
    }
    assert not CustomerTag.objects.filter(customer=customer, tag=tag).exists()
    assert wecom_tag_pushes_send() == {"calls": 2, "done": 1}
    assert not any(tag.wecom_tag_id in t for t in _fake_tags(directory, external_userid).values())
    before = _snapshot()
    assert relations_refresh(directory, customer, external_userid) == {
        "tags_given": 0,
        "tags_taken": 0,
    }
    assert _snapshot() == before


def _snapshot() -> tuple[list[Any], ...]:
    """Every row the round trip could write, with the columns a write would change."""
    return (
        list(CustomerTag.objects.order_by("pk").values_list("pk", "tag_id", "source", "tagged_at")),
        list(WeComTagPush.objects.order_by("pk").values_list("pk", "action", "status", "attempts")),
        list(WeComFollow.objects.order_by("pk").values_list("pk", "wecom_tag_ids", "updated_at")),
    )


def test_a_staff_member_tagging_in_wecom_is_held_here_and_never_pushed_back(
    fake: FakeWeCom,
    world: tuple[Directory, dict[str, Customer]],
    enqueued: list[Enqueued],
    django_capture_on_commit_callbacks: Any,
) -> None:
    directory, customers = world
    external_userid, customer = next(iter(customers.items()))
    tag = _tag_not_held(directory, external_userid)
    userid = next(u for (u, e) in directory.follows if e == external_userid)
    directory.follows[(userid, external_userid)].tag_ids.append(tag.wecom_tag_id)

    with django_capture_on_commit_callbacks(execute=True):
        assert relations_refresh(directory, customer, external_userid) == {
            "tags_given": 1,
            "tags_taken": 0,
        }

    assert CustomerTag.objects.get(customer=customer, tag=tag).source == TagSource.WECOM
    assert not WeComTagPush.objects.exists()
    assert enqueued == []

    # The staff member takes it away again: it goes here too.
    directory.follows[(userid, external_userid)].tag_ids.remove(tag.wecom_tag_id)
    assert relations_refresh(directory, customer, external_userid) == {
        "tags_given": 0,
        "tags_taken": 1,
    }
    assert not WeComTagPush.objects.exists()


def test_a_tag_given_here_and_pushed_goes_when_staff_remove_it_in_wecom(
    fake: FakeWeCom, world: tuple[Directory, dict[str, Customer]]
) -> None:
    directory, customers = world
    (external_userid, customer), (other_userid, other) = list(customers.items())[:2]
    tag = _tag_not_held(directory, external_userid)
    tags_assign(customer_ids=[customer.pk], tags=[tag], source=TagSource.RULE, actor="rule")
    wecom_tag_pushes_send()
    # Given before the group was mirrored (never pushed): WeCom's state says nothing of it.
    never_pushed = _tag_not_held(directory, other_userid)
    CustomerTag.objects.create(customer=other, tag=never_pushed, source=TagSource.MANUAL)

    for follow in directory.follows.values():
        if follow.external_userid == external_userid:
            follow.tag_ids = [t for t in follow.tag_ids if t != tag.wecom_tag_id]
    assert relations_refresh(directory, customer, external_userid)["tags_taken"] == 1
    assert relations_refresh(directory, other, other_userid) == {"tags_given": 0, "tags_taken": 0}

    assert not CustomerTag.objects.filter(customer=customer, tag=tag).exists()
    assert CustomerTag.objects.filter(customer=other, tag=never_pushed).exists()


def test_a_give_then_a_take_before_the_push_pushes_only_the_net_effect(
    fake: FakeWeCom, world: tuple[Directory, dict[str, Customer]]
) -> None:
    directory, customers = world
    external_userid, customer = next(iter(customers.items()))
    tag = _tag_not_held(directory, external_userid)
    before = _fake_tags(directory, external_userid)

    tags_assign(customer_ids=[customer.pk], tags=[tag], source=TagSource.MANUAL, actor="user:1")
    tags_remove(customer_ids=[customer.pk], tags=[tag], actor="user:1")
    push = WeComTagPush.objects.get()
    assert (push.action, push.status) == ("remove", "pending")

    assert wecom_tag_pushes_send() == {"done": 1}
    assert _mark_tag_calls(fake) == []
    assert _fake_tags(directory, external_userid) == before

    # A take then a give of a tag WeCom has: the give wins, nothing to send either.
    held = Tag.objects.get(wecom_tag_id=next(t for t in before[next(iter(before))]))
    tags_remove(customer_ids=[customer.pk], tags=[held], actor="user:1")
    tags_assign(customer_ids=[customer.pk], tags=[held], source=TagSource.MANUAL, actor="user:1")
    assert list(WeComTagPush.objects.filter(status="pending").values_list("tag_id", "action")) == [
        (held.pk, "add")
    ]
    wecom_tag_pushes_send()
    assert _mark_tag_calls(fake) == []
    assert _fake_tags(directory, external_userid) == before


def test_failures_are_recorded_and_transient_ones_retried(
    fake: FakeWeCom, world: tuple[Directory, dict[str, Customer]]
) -> None:
    directory, customers = world
    # Pushed in customer order: the first one's call meets the injected refusal.
    (second_id, second), (first_id, first) = list(customers.items())[:2]
    assert second.pk < first.pk
    tag = _tag_not_held(directory, first_id)
    other_tag = _tag_not_held(directory, second_id)

    # 84061: the contact is no longer that staff member's customer in WeCom.
    for key in [k for k in directory.follows if k[1] == first_id]:
        del directory.follows[key]
    tags_assign(customer_ids=[first.pk], tags=[tag], source=TagSource.MANUAL, actor="user:1")
    # 48002 (API forbidden): not known to be final, so retried.
    fake.inject_errcode(MARK_TAG, 48002, times=1)
    tags_assign(customer_ids=[second.pk], tags=[other_tag], source=TagSource.MANUAL, actor="u")

    assert wecom_tag_pushes_send() == {"calls": 2, "failed": 1, "pending": 1}
    failed = WeComTagPush.objects.get(customer=first)
    assert (failed.status, failed.error_code, failed.attempts) == ("failed", "84061", 1)
    retried = WeComTagPush.objects.get(customer=second)
    assert (retried.status, retried.error_code, retried.attempts) == ("pending", "48002", 1)
    # The operator's tag stays while its push has not reached WeCom.
    assert customer_wecom_tags_apply(customer_ids=[first.pk, second.pk], actor="t") == {
        "tags_given": 0,
        "tags_taken": 0,
    }
    assert CustomerTag.objects.filter(customer=first, tag=tag).exists()

    assert wecom_tag_pushes_send() == {"calls": 1, "done": 1}  # the next sweep
    retried.refresh_from_db()
    assert (retried.status, retried.error_code, retried.attempts) == ("done", "", 2)


def test_a_change_wecom_keeps_refusing_is_given_up(
    fake: FakeWeCom, world: tuple[Directory, dict[str, Customer]]
) -> None:
    directory, customers = world
    external_userid, customer = next(iter(customers.items()))
    tags_assign(
        customer_ids=[customer.pk],
        tags=[_tag_not_held(directory, external_userid)],
        source=TagSource.MANUAL,
        actor="user:1",
    )
    WeComTagPush.objects.update(attempts=MAX_ATTEMPTS - 1)
    fake.inject_errcode(MARK_TAG, 48002, times=5)

    wecom_tag_pushes_send()

    push = WeComTagPush.objects.get()
    assert (push.status, push.error_code, push.attempts) == ("failed", "48002", MAX_ATTEMPTS)


def test_nothing_is_pushed_for_a_group_not_mirrored_or_holdings_from_wecom(
    fake: FakeWeCom,
    world: tuple[Directory, dict[str, Customer]],
    enqueued: list[Enqueued],
    django_capture_on_commit_callbacks: Any,
) -> None:
    directory, customers = world
    external_userid, customer = next(iter(customers.items()))
    tag = _tag_not_held(directory, external_userid)
    TagGroup.objects.filter(pk=tag.group_id).update(is_wecom_mirrored=False)
    tag.group.refresh_from_db()
    local = TagFactory()  # a tag of our own, with no WeCom id
    TagGroup.objects.filter(pk=local.group_id).update(is_wecom_mirrored=True)
    wecom_held = _tag_not_held(directory, next(iter(list(customers)[1:])))

    with django_capture_on_commit_callbacks(execute=True):
        tags_assign(
            customer_ids=[customer.pk], tags=[tag, local], source=TagSource.MANUAL, actor="u"
        )
        tags_assign(
            customer_ids=[customer.pk], tags=[wecom_held], source=TagSource.WECOM, actor="wecom"
        )
        tags_remove(customer_ids=[customer.pk], tags=[tag, local], actor="u")
        # A customer without any WeCom relation.
        stranger = CustomerFactory()
        tags_assign(
            customer_ids=[stranger.pk], tags=[wecom_held], source=TagSource.MANUAL, actor="u"
        )

    assert not WeComTagPush.objects.exists()
    assert enqueued == []
    assert wecom_tag_pushes_send() == {}
    assert _mark_tag_calls(fake) == []


def test_switching_mirroring_off_drops_what_waits(
    fake: FakeWeCom, world: tuple[Directory, dict[str, Customer]]
) -> None:
    directory, customers = world
    external_userid, customer = next(iter(customers.items()))
    tag = _tag_not_held(directory, external_userid)
    tags_assign(customer_ids=[customer.pk], tags=[tag], source=TagSource.MANUAL, actor="u")
    TagGroup.objects.filter(pk=tag.group_id).update(is_wecom_mirrored=False)

    assert wecom_tag_pushes_send() == {"failed": 1}
    assert WeComTagPush.objects.get().error_code == "not_mirrored"
    assert _mark_tag_calls(fake) == []


def _queries_of_assign(customer_ids: list[int], tag: Tag) -> int:
    with CaptureQueriesContext(connection) as queries:
        tags_assign(customer_ids=customer_ids, tags=[tag], source=TagSource.MANUAL, actor="u")
        tags_remove(customer_ids=customer_ids, tags=[tag], actor="u")
    return len(queries)


def test_tagging_costs_the_same_queries_whether_pushed_or_not(
    fake: FakeWeCom, world: tuple[Directory, dict[str, Customer]]
) -> None:
    _directory, customers = world
    ids = [c.pk for c in customers.values()]
    mirrored = Tag.objects.select_related("group").exclude(wecom_tag_id=None).first()
    assert mirrored is not None
    local = Tag.objects.select_related("group").get(pk=TagFactory().pk)

    pushed_queries = _queries_of_assign(ids, mirrored)
    local_queries = _queries_of_assign(ids, local)

    assert WeComTagPush.objects.filter(tag=mirrored).exists()
    assert pushed_queries == local_queries
    # A savepoint's two statements per call, and the writes: two to give, one to take away.
    assert pushed_queries == 7


def test_assigning_many_customers_records_their_pushes_in_one_statement(
    fake: FakeWeCom, world: tuple[Directory, dict[str, Customer]]
) -> None:
    _directory, customers = world
    tag = Tag.objects.select_related("group").exclude(wecom_tag_id=None).first()
    assert tag is not None
    without = [c.pk for c in customers.values() if not c.customer_tags.filter(tag=tag).exists()]

    outcome = tags_assign(customer_ids=without, tags=[tag], source=TagSource.RULE, actor="rule")

    assert outcome.assigned == len(without)
    assert set(
        WeComTagPush.objects.filter(status=TagPushStatus.PENDING).values_list(
            "customer_id", flat=True
        )
    ) == set(without)


def test_the_task_pushes_and_beat_sweeps_every_five_minutes(
    fake: FakeWeCom, world: tuple[Directory, dict[str, Customer]]
) -> None:
    directory, customers = world
    external_userid, customer = next(iter(customers.items()))
    tag = _tag_not_held(directory, external_userid)
    tags_assign(customer_ids=[customer.pk], tags=[tag], source=TagSource.MANUAL, actor="u")

    assert wecom_tag_push_task.name == "crm.wecom_tag_push"
    assert wecom_tag_push_task.apply().get()["done"] == 1
    # As the data migration leaves it (restored here: a transactional test's flush drops it).
    importlib.import_module("crm.migrations.0016_wecom_tag_push").create_schedule(apps, None)
    schedule = PeriodicTask.objects.get(task="crm.wecom_tag_push")
    assert (schedule.interval.every, schedule.interval.period) == (300, "seconds")


def test_a_newer_intent_recorded_while_wecom_answers_is_not_marked_done(
    fake: FakeWeCom,
    world: tuple[Directory, dict[str, Customer]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory, customers = world
    external_userid, customer = next(iter(customers.items()))
    tag = _tag_not_held(directory, external_userid)
    tags_assign(customer_ids=[customer.pk], tags=[tag], source=TagSource.MANUAL, actor="u")
    call_through = tag_push.wecom_call

    def operator_takes_it_away_meanwhile(*args: Any, **kwargs: Any) -> Any:
        answer = call_through(*args, **kwargs)
        if not WeComTagPush.objects.filter(action="remove").exists():
            tags_remove(customer_ids=[customer.pk], tags=[tag], actor="u")
        return answer

    monkeypatch.setattr(tag_push, "wecom_call", operator_takes_it_away_meanwhile)
    wecom_tag_pushes_send()

    # The add went through; the removal recorded meanwhile waited, then went through too.
    push = WeComTagPush.objects.get()
    assert (push.action, push.status) == ("remove", "done")
    assert not any(tag.wecom_tag_id in t for t in _fake_tags(directory, external_userid).values())
    relations = WeComFollow.objects.filter(customer=customer)
    assert not any(tag.wecom_tag_id in f.wecom_tag_ids for f in relations)
    assert not CustomerTag.objects.filter(customer=customer, tag=tag).exists()


def test_a_tag_of_an_exclusive_mirrored_group_replaces_the_other_in_wecom_too(
    fake: FakeWeCom, world: tuple[Directory, dict[str, Customer]]
) -> None:
    directory, customers = world
    external_userid, customer = next(iter(customers.items()))
    first = _tag_not_held(directory, external_userid)
    group = first.group
    group_tags = Tag.objects.filter(group=group).order_by("pk")
    # The customer holds no other tag of the group, so that it may be made exclusive.
    CustomerTag.objects.filter(customer=customer, tag__group=group).exclude(tag=first).delete()
    for follow in directory.follows.values():
        if follow.external_userid == external_userid:
            follow.tag_ids = [
                t for t in follow.tag_ids if t not in {x.wecom_tag_id for x in group_tags}
            ]
    relations_refresh(directory, customer, external_userid)
    CustomerTag.objects.filter(tag__group=group).delete()
    tag_group_update(group_id=group.pk, is_exclusive=True)
    first = Tag.objects.select_related("group").get(pk=first.pk)
    second = Tag.objects.select_related("group").exclude(pk=first.pk).filter(group=group).first()
    assert second is not None
    tags_assign(customer_ids=[customer.pk], tags=[first], source=TagSource.MANUAL, actor="u")
    wecom_tag_pushes_send()

    outcome = tags_assign(
        customer_ids=[customer.pk], tags=[second], source=TagSource.MANUAL, actor="u"
    )
    assert (outcome.assigned, outcome.replaced) == (1, 1)
    assert sorted(
        WeComTagPush.objects.filter(status="pending").values_list("tag_id", "action")
    ) == sorted([(first.pk, "remove"), (second.pk, "add")])
    wecom_tag_pushes_send()

    for tag_ids in _fake_tags(directory, external_userid).values():
        assert second.wecom_tag_id in tag_ids and first.wecom_tag_id not in tag_ids
