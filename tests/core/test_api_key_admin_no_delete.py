"""API keys are revoked, never deleted (the audit trail and the usage counts name them): not
even a superuser finds a delete button, a delete action or a delete page."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from core.models import ApiKey
from core.services.api_keys import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(admin_user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)
    return client


def test_a_superuser_cannot_delete_a_key(superuser_client: Client) -> None:
    api_key, _raw = api_key_create(name="企微侧边栏-试用", scopes=["customers:read"])
    delete_url = reverse("admin:core_apikey_delete", args=[api_key.pk])

    change_page = superuser_client.get(reverse("admin:core_apikey_change", args=[api_key.pk]))
    assert change_page.status_code == 200
    assert delete_url not in change_page.content.decode()

    assert superuser_client.get(delete_url).status_code == 403
    assert superuser_client.post(delete_url, {"post": "yes"}).status_code == 403

    changelist = superuser_client.get(reverse("admin:core_apikey_changelist"))
    actions = [name for name, _label in changelist.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    assert "revoke" in actions

    posted = superuser_client.post(
        reverse("admin:core_apikey_changelist"),
        {"action": "delete_selected", "_selected_action": [api_key.pk], "post": "yes"},
    )
    assert posted.status_code in {200, 302}
    assert ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).count() == 1
