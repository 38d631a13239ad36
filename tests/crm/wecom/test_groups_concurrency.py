"""Observations of group chats applied at once, each on its own connection: one group per chat,
one customer per member, one open stay each, and the latest observation standing."""

from datetime import timedelta
from functools import partial

import pytest
from django.utils import timezone

from crm.models import Customer, Group, GroupMembership
from crm.wecom.groups import group_chat_apply, group_chat_dismiss
from tests.campaigns.support import CORP_ID
from tests.crm.wecom.groups_support import group_chat
from tests.support import run_together

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def corp_id(settings) -> None:
    settings.WECOM_CORP_ID = CORP_ID


def test_parallel_observations_of_chats_sharing_members_agree() -> None:
    now = timezone.now()
    # Two chats of the same 40 customers, each observed four times at once; the last
    # observation of "a" has lost member 0.
    observations = [
        (group_chat("a", range(n == 3, 40), member_prefix="x"), now + timedelta(seconds=n))
        for n in range(4)
    ] + [
        (group_chat("b", range(40), member_prefix="x"), now + timedelta(seconds=n))
        for n in range(4)
    ]

    def apply(chat: dict, observed_at) -> None:
        group_chat_apply(group_chat=chat, observed_at=observed_at, actor="t")

    assert run_together(*(partial(apply, c, t) for c, t in observations)) == []

    assert Group.objects.count() == 2
    assert Customer.objects.count() == 40
    open_stays = GroupMembership.objects.filter(left_at=None)
    assert open_stays.filter(group__external_id="b").count() == 40
    assert open_stays.filter(group__external_id="a").count() == 39
    assert Group.objects.get(external_id="a").members_observed_at == now + timedelta(seconds=3)


def test_a_dismissal_racing_an_older_observation_wins() -> None:
    now = timezone.now()
    chat = group_chat("a", range(30))
    group_chat_apply(group_chat=chat, observed_at=now, actor="t")

    assert (
        run_together(
            partial(
                group_chat_apply, group_chat=chat, observed_at=now + timedelta(seconds=1), actor="t"
            ),
            partial(
                group_chat_dismiss, chat_id="a", dismissed_at=now + timedelta(seconds=2), actor="t"
            ),
        )
        == []
    )

    assert Group.objects.get().dismissed_at == now + timedelta(seconds=2)
    assert not GroupMembership.objects.filter(left_at=None).exists()
