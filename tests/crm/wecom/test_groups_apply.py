"""group_chat_apply on its own: a chat costs the same queries whatever its size, an older
observation changes nothing (not even customers), join times are kept per member."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Customer, Group, GroupMembership
from crm.services.groups import group_members_sync
from crm.wecom.groups import group_chat_apply, group_chat_dismiss
from tests.campaigns.support import CORP_ID
from tests.crm.wecom.groups_support import START, at, group_chat

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def corp_id(settings) -> None:
    settings.WECOM_CORP_ID = CORP_ID


def queries(chat: dict, observed_at) -> int:
    with CaptureQueriesContext(connection) as captured:
        group_chat_apply(group_chat=chat, observed_at=observed_at, actor="t")
    return len(captured)


def test_a_chat_costs_the_same_queries_whatever_its_size() -> None:
    now = timezone.now()
    small, large = group_chat("a", range(5)), group_chat("b", range(300))

    # Created, with new customers.
    assert queries(small, now) == queries(large, now)
    # Read again, nothing changed.
    assert queries(small, now + timedelta(seconds=1)) == queries(large, now + timedelta(seconds=1))
    # Some left, some joined (new customers), renamed.
    small["member_list"] = (
        small["member_list"][:3] + group_chat("a", range(10, 14))["member_list"][1:]
    )
    large["member_list"] = (
        large["member_list"][:200] + group_chat("b", range(400, 450))["member_list"][1:]
    )
    small["name"] = large["name"] = "新名字"
    assert queries(small, now + timedelta(seconds=2)) == queries(large, now + timedelta(seconds=2))
    assert GroupMembership.objects.filter(group__external_id="b", left_at=None).count() == 249


def test_an_older_observation_changes_nothing() -> None:
    now = timezone.now()
    group_chat_apply(group_chat=group_chat("a", range(3)), observed_at=now, actor="t")
    customers = Customer.objects.count()
    stays = list(GroupMembership.objects.values_list("customer_id", "joined_at", "left_at"))

    outcome = group_chat_apply(
        group_chat=group_chat("a", range(10, 20), name="旧名字"),
        observed_at=now - timedelta(seconds=1),
        actor="t",
    )

    assert outcome.is_stale and not outcome.is_changed
    assert Customer.objects.count() == customers
    assert list(GroupMembership.objects.values_list("customer_id", "joined_at", "left_at")) == stays
    assert Group.objects.get().name == "社群"


def test_join_times_are_kept_per_member_and_leaves_close_at_the_observation() -> None:
    now = timezone.now()
    group_chat_apply(group_chat=group_chat("a", range(3)), observed_at=now, actor="t")
    assert sorted(GroupMembership.objects.values_list("joined_at", flat=True)) == [
        at(START),
        at(START + 1),
        at(START + 2),
    ]

    outcome = group_chat_apply(
        group_chat=group_chat("a", range(2)), observed_at=now + timedelta(hours=1), actor="t"
    )

    assert (outcome.stays_opened, outcome.stays_closed) == (0, 1)
    assert GroupMembership.objects.get(left_at__isnull=False).left_at == now + timedelta(hours=1)


def test_a_chat_seen_alive_after_an_assumed_dismissal_is_restored() -> None:
    now = timezone.now()
    chat = group_chat("a", range(3))
    group_chat_apply(group_chat=chat, observed_at=now, actor="t")
    group_chat_dismiss(chat_id="a", dismissed_at=now + timedelta(minutes=1), actor="t")

    outcome = group_chat_apply(group_chat=chat, observed_at=now + timedelta(minutes=2), actor="t")

    assert outcome.is_restored and outcome.stays_opened == 3
    assert Group.objects.get().dismissed_at is None
    assert GroupMembership.objects.filter(left_at=None).count() == 3


def test_group_members_sync_opens_each_stay_at_its_join_time() -> None:
    now = timezone.now()
    group = Group.objects.create(kind="community", external_id="c1", name="社群")
    first, second, third = (Customer.objects.create() for _ in range(3))

    group_members_sync(
        group_id=group.pk,
        # `second` named twice: the earlier time stands; `third` has no time: the observation.
        customer_ids=[first.pk, second.pk, second.pk, third.pk],
        joined_at=[at(START), at(START + 20), at(START + 10)],
        observed_at=now,
        actor="t",
    )

    assert dict(GroupMembership.objects.values_list("customer_id", "joined_at")) == {
        first.pk: at(START),
        second.pk: at(START + 10),
        third.pk: now,
    }
