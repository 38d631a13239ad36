"""Shared fixtures: API clients holding keys with given scopes."""

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from crm.services.api_keys import api_key_create


@pytest.fixture
def api_client_with_scopes(db: None) -> Callable[..., APIClient]:
    """`api_client_with_scopes("orders:write", ...)`: a client sending a fresh key."""

    def make(*scopes: str) -> APIClient:
        _, raw_key = api_key_create(name="test", scopes=scopes)
        client = APIClient(HTTP_ACCEPT_LANGUAGE="en")  # messages asserted in English
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
        return client

    return make


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")
