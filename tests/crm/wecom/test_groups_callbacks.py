"""change_external_chat callbacks (create, update, dismiss) against the WeCom fake: each applied
once when delivered twice, out of order, with each member's stay opening at their join time."""

import pytest
from django.db import transaction

from crm.models import Customer, Group, GroupMembership
from crm.personal_data import identity_key
from crm.services.identities import customers_resolve
from devstack.wecom_directory import CHAT_MEMBER_EXTERNAL, ChatMember
from tests.crm.wecom.groups_support import (
    at,
    customer_of,
    deliver,
    expected_state,
    small_corp,
    state,
)

pytestmark = pytest.mark.django_db

# The generated corp's chats were created from 1_700_000_000 on, members joining within 30
# days: events come after.
LATER = 1_710_000_000


@pytest.fixture
def corp(fake):
    fake.directory = small_corp()
    return fake.directory


def first_chat(corp):
    return next(iter(corp.chats.values()))


def test_create_applies_the_chat_once_when_delivered_twice(fake, corp) -> None:
    chat = first_chat(corp)
    created_at = at(chat.create_time)

    assert deliver("create", chat.chat_id, created_at) == "applied"
    after_first = state(corp)
    customers = Customer.objects.count()
    assert deliver("create", chat.chat_id, created_at) == "ignored"

    assert state(corp) == after_first
    assert Customer.objects.count() == customers
    assert after_first == {chat.chat_id: expected_state(corp)[chat.chat_id]}
    group = Group.objects.get(external_id=chat.chat_id)
    assert (group.kind, group.name, group.owner.wecom_userid) == (
        "wecom_group",
        chat.name,
        chat.owner,
    )
    assert group.created_at == created_at
    assert group.members_observed_at == created_at
    # Staff members are not customers: one customer per external member.
    externals = [m for m in chat.members if m.type == CHAT_MEMBER_EXTERNAL]
    assert customers == len(externals) < len(chat.members)


def test_each_stay_opens_at_the_members_join_time(fake, corp) -> None:
    chat = first_chat(corp)
    deliver("create", chat.chat_id, at(LATER))

    for member in chat.members:
        if member.type != CHAT_MEMBER_EXTERNAL:
            continue
        stay = GroupMembership.objects.get(customer_id=customer_of(member.userid))
        assert (stay.joined_at, stay.left_at) == (at(member.join_time), None)
    # A new customer was first seen when they joined.
    member = next(m for m in chat.members if m.type == CHAT_MEMBER_EXTERNAL)
    assert Customer.objects.get(pk=customer_of(member.userid)).first_seen_at == at(member.join_time)


def test_a_member_known_by_unionid_is_that_customer(fake, corp) -> None:
    chat = first_chat(corp)
    member = next(m for m in chat.members if m.type == CHAT_MEMBER_EXTERNAL and m.unionid)
    with transaction.atomic():  # a mini-program buyer, known by unionid only
        (buyer,) = customers_resolve(
            identity_rows=[[identity_key(provider="unionid", value=member.unionid)]], actor="t"
        ).customer_ids

    deliver("create", chat.chat_id, at(LATER))

    assert customer_of(member.userid) == buyer
    assert GroupMembership.objects.filter(customer_id=buyer, left_at=None).count() == 1


def test_update_opens_the_newcomers_stay_and_closes_the_leavers_at_the_event(fake, corp) -> None:
    chat = first_chat(corp)
    deliver("create", chat.chat_id, at(LATER))
    leaver = next(m for m in chat.members if m.type == CHAT_MEMBER_EXTERNAL)
    newcomer = next(u for u in corp.contacts if all(m.userid != u for m in chat.members))
    corp.chat_leave(chat.chat_id, leaver.userid)
    corp.chat_join(chat.chat_id, newcomer, join_time=LATER + 50)
    chat.name, chat.owner = "新群名", "staff002"

    fields = {"UpdateDetail": "add_member", "MemChangeCnt": "1"}
    assert deliver("update", chat.chat_id, at(LATER + 100), **fields) == "applied"
    after_first = state(corp)
    assert deliver("update", chat.chat_id, at(LATER + 100), **fields) == "ignored"

    assert state(corp) == after_first
    left = GroupMembership.objects.get(customer_id=customer_of(leaver.userid))
    assert (left.joined_at, left.left_at) == (at(leaver.join_time), at(LATER + 100))
    joined = GroupMembership.objects.get(customer_id=customer_of(newcomer))
    assert (joined.joined_at, joined.left_at) == (at(LATER + 50), None)
    group = Group.objects.get(external_id=chat.chat_id)
    assert (group.name, group.owner.wecom_userid) == ("新群名", "staff002")


def test_a_leave_delivered_before_the_join_leaves_no_open_stay(fake, corp) -> None:
    chat = first_chat(corp)
    deliver("create", chat.chat_id, at(LATER))
    visitor = next(u for u in corp.contacts if all(m.userid != u for m in chat.members))
    # The visitor joined at +10 and left at +20; the leave's event is processed first.
    corp.chat_join(chat.chat_id, visitor, join_time=LATER + 10)
    corp.chat_leave(chat.chat_id, visitor)
    before = state(corp)

    assert deliver("update", chat.chat_id, at(LATER + 20), UpdateDetail="del_member") == "ignored"
    assert deliver("update", chat.chat_id, at(LATER + 10), UpdateDetail="add_member") == "ignored"

    assert state(corp) == before
    assert not GroupMembership.objects.filter(customer_id=customer_of(visitor), left_at=None)


def test_a_join_redelivered_after_the_leave_changes_nothing(fake, corp) -> None:
    chat = first_chat(corp)
    deliver("create", chat.chat_id, at(LATER))
    visitor = next(u for u in corp.contacts if all(m.userid != u for m in chat.members))
    corp.chat_join(chat.chat_id, visitor, join_time=LATER + 10)
    assert deliver("update", chat.chat_id, at(LATER + 10), UpdateDetail="add_member") == "applied"
    corp.chat_leave(chat.chat_id, visitor)
    assert deliver("update", chat.chat_id, at(LATER + 20), UpdateDetail="del_member") == "applied"
    # The visitor rejoins; the old join's event comes again (WeCom retried it).
    corp.chat_join(chat.chat_id, visitor, join_time=LATER + 30)
    before = state(corp)

    assert deliver("update", chat.chat_id, at(LATER + 10), UpdateDetail="add_member") == "ignored"

    assert state(corp) == before
    stays = GroupMembership.objects.filter(customer_id=customer_of(visitor))
    assert list(stays.values_list("joined_at", "left_at")) == [(at(LATER + 10), at(LATER + 20))]


def test_dismiss_closes_every_stay_once_and_older_updates_change_nothing(fake, corp) -> None:
    chat = first_chat(corp)
    deliver("create", chat.chat_id, at(LATER))
    corp.chat_dismiss(chat.chat_id)
    dismissed_at = at(LATER + 100)

    assert deliver("dismiss", chat.chat_id, dismissed_at) == "applied"
    after_first = state(corp)
    assert deliver("dismiss", chat.chat_id, dismissed_at) == "ignored"

    assert state(corp) == after_first
    group = Group.objects.get(external_id=chat.chat_id)
    assert group.dismissed_at == dismissed_at
    assert not group.memberships.filter(left_at=None).exists()
    assert set(group.memberships.values_list("left_at", flat=True)) == {dismissed_at}
    # An update from before the dismissal, delivered late: nothing, and no call to WeCom.
    calls = len(fake.calls())
    assert deliver("update", chat.chat_id, at(LATER + 50), UpdateDetail="add_member") == "ignored"
    assert deliver("create", chat.chat_id, at(LATER)) == "ignored"
    assert len(fake.calls()) == calls
    assert state(corp) == after_first


def test_a_change_of_a_chat_dismissed_meanwhile_is_ignored(fake, corp) -> None:
    chat = first_chat(corp)
    corp.chat_dismiss(chat.chat_id)

    # WeCom answers groupchat/get of a dismissed chat with an errcode.
    assert deliver("create", chat.chat_id, at(LATER)) == "ignored"
    assert deliver("dismiss", chat.chat_id, at(LATER + 1)) == "ignored"

    assert not Group.objects.exists()
    assert fake.calls()[-1]["errcode"] == 40050


def test_a_dismissal_before_an_older_update_in_time_keeps_the_update_out(fake, corp) -> None:
    chat = first_chat(corp)
    deliver("create", chat.chat_id, at(LATER))
    newcomer = next(u for u in corp.contacts if all(m.userid != u for m in chat.members))
    corp.chat_join(chat.chat_id, newcomer, join_time=LATER + 10)
    corp.chat_dismiss(chat.chat_id)

    assert deliver("dismiss", chat.chat_id, at(LATER + 20)) == "applied"
    assert deliver("update", chat.chat_id, at(LATER + 10), UpdateDetail="add_member") == "ignored"

    assert customer_of(newcomer) is None


def test_a_chat_the_app_may_not_see_is_ignored(fake, corp) -> None:
    chat = first_chat(corp)
    fake.inject_errcode("externalcontact/groupchat/get", 60011)

    assert deliver("create", chat.chat_id, at(LATER)) == "ignored"

    assert not Group.objects.exists()


def test_staff_joining_opens_no_stay(fake, corp) -> None:
    chat = first_chat(corp)
    deliver("create", chat.chat_id, at(LATER))
    stays = GroupMembership.objects.count()
    chat.members.append(ChatMember("staff001", 1, LATER + 5))

    assert deliver("update", chat.chat_id, at(LATER + 10), UpdateDetail="add_member") == "ignored"

    assert GroupMembership.objects.count() == stays
    # Nothing changed: nothing is written, not even the observation's time.
    assert Group.objects.get().members_observed_at == at(LATER)
