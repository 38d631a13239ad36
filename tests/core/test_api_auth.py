"""Deny by default, on every route of the integration API: no key, a key without the needed
scope, and a revoked key are all refused, whatever the method."""

import pytest
from django.urls import URLPattern
from rest_framework.test import APIClient

from campaigns.api.urls import urlpatterns as campaigns_urlpatterns
from core.services.api_keys import RESOURCES, api_key_create, api_key_revoke
from crm.api.urls import urlpatterns as crm_urlpatterns
from segments.api.urls import urlpatterns as segments_urlpatterns

pytestmark = pytest.mark.django_db

ARGUMENTS = {"customer_id": "1", "order_id": "1", "group_id": "1", "tag_id": "1"}
ARGUMENTS |= {"segment_id": "1", "rule_id": "1", "campaign_id": "1", "contact_way_id": "1"}
ARGUMENTS |= {"provider": "phone", "value": "13912345678"}


def _routes() -> list[tuple[str, str, str]]:
    """(method, url, resource) of every route and method the API serves."""
    routes = []
    for pattern in [*crm_urlpatterns, *segments_urlpatterns, *campaigns_urlpatterns]:
        assert isinstance(pattern, URLPattern)
        view = pattern.callback.view_class  # type: ignore[attr-defined]
        url = "/api/v1/" + str(pattern.pattern)
        for name, value in ARGUMENTS.items():
            url = url.replace(f"<int:{name}>", value).replace(f"<str:{name}>", value)
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view, method):
                routes.append((method, url, view.scope_resource))
    return routes


ROUTES = _routes()


def test_every_resource_has_routes() -> None:
    assert {resource for _, _, resource in ROUTES} == set(RESOURCES)


@pytest.mark.parametrize(("method", "url", "resource"), ROUTES)
def test_refused_without_a_valid_key_with_the_scope(method, url, resource) -> None:
    view_reads = method == "post" and url.endswith(("/preview", "/portrait"))
    access = "read" if method == "get" or view_reads else "write"
    anonymous = APIClient()
    assert getattr(anonymous, method)(url, {}, format="json").status_code in (401, 403)

    others = [r for r in RESOURCES if r != resource]
    _, wrong_key = api_key_create(name="wrong", scopes=[*others, "personal_data:read"])
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION=f"Api-Key {wrong_key}")
    assert getattr(wrong, method)(url, {}, format="json").status_code == 403

    other_access = "write" if access == "read" else "read"
    _, half_key = api_key_create(name="half", scopes=[f"{resource}:{other_access}"])
    half = APIClient()
    half.credentials(HTTP_AUTHORIZATION=f"Api-Key {half_key}")
    assert getattr(half, method)(url, {}, format="json").status_code == 403

    revoked_key, raw_key = api_key_create(name="revoked", scopes=[f"{resource}:{access}"])
    api_key_revoke(prefix=revoked_key.prefix)
    revoked = APIClient()
    revoked.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert getattr(revoked, method)(url, {}, format="json").status_code in (401, 403)

    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key.split('.')[0]}.not-the-secret")
    assert getattr(forged, method)(url, {}, format="json").status_code in (401, 403)
