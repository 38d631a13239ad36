"""The group chat admin shows when a chat was dismissed and filters dismissed chats."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import GroupFactory

pytestmark = pytest.mark.django_db


def test_the_list_shows_and_filters_dismissed_chats(admin_client: Client) -> None:
    dismissed = GroupFactory(name="已解散的群", dismissed_at=timezone.now())
    active = GroupFactory(name="还在的群")
    url = reverse("admin:crm_group_changelist")

    every = admin_client.get(url)
    only_dismissed = admin_client.get(url, {"dismissed": "yes"})
    only_active = admin_client.get(url, {"dismissed": "no"})

    assert set(every.context["cl"].result_list) == {active, dismissed}
    assert list(only_dismissed.context["cl"].result_list) == [dismissed]
    assert list(only_active.context["cl"].result_list) == [active]
    change = admin_client.get(reverse("admin:crm_group_change", args=[dismissed.pk]))
    assert change.status_code == 200
    assert "dismissed_at" in change.context["adminform"].readonly_fields
