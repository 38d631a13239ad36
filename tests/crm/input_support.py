"""Helpers of the input tests: a JSON body sent as bytes (so that it may hold escapes such as
`\\ud800` that no UTF-8 encoder accepts), and the check that every list reading what was sent
still answers after a refusal."""

import json
from typing import Any

from django.test import Client
from rest_framework.test import APIClient

from core.services.api_keys import api_key_create
from tests.factories import UserFactory
from tests.support import client_of

NUL = "a\x00b"
LONE_SURROGATE = "a\ud800b"

API_LISTS = [
    "/api/v1/customers",
    "/api/v1/orders",
    "/api/v1/interactions",
    "/api/v1/consents",
    "/api/v1/consents/events",
    "/api/v1/groups",
    "/api/v1/tags",
    "/api/v1/tag-groups",
]
ADMIN_LISTS = [
    "/admin/crm/customer/",
    "/admin/crm/order/",
    "/admin/crm/interaction/",
    "/admin/crm/consent/",
    "/admin/crm/groupmembership/",
    "/admin/crm/group/",
    "/admin/crm/tag/",
    "/admin/crm/taggroup/",
]


def send_json(client: Client, method: str, url: str, body: Any) -> Any:
    """`body` encoded by the standard library (ASCII, every odd character escaped)."""
    return getattr(client, method)(url, data=json.dumps(body), content_type="application/json")


def assert_lists_still_answer() -> None:
    """Every API list and admin changelist that shows ingested data answers 200."""
    _, raw_key = api_key_create(name="reader", scopes=["*"])
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    for url in API_LISTS:
        response = api.get(url)
        assert response.status_code == 200, (url, response.content[:300])
    admin = client_of(UserFactory(username="reader-admin", is_superuser=True))
    for url in ADMIN_LISTS:
        response = admin.get(url)
        assert response.status_code == 200, (url, response.content[:300])


def invalid(errors: dict[str, Any]) -> dict[str, Any]:
    """The body of a 400 for fields a serializer refused: the contract's code and detail, and
    each field's messages under `errors`."""
    return {"code": "invalid_input", "detail": "Invalid input.", "errors": errors}
