"""Rate limits per API key: 429 with Retry-After past a key's rate, keys apart, stricter
limits on phone lookups and searches, bulk ingestion in its own scope, and counts kept in a
cache that every process shares."""

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from core.services.api_keys import api_key_create
from crm.models import Customer, Identity
from tests.factories import CustomerFactory, IdentityFactory, UserFactory
from tests.factories.users import seeing_every_customer
from tests.support import client_of, subprocess_database_url

pytestmark = pytest.mark.django_db

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
PHONE = "13812347759"
MINUTE = 60
DAY = 86400


def limits(**scopes: list[tuple[int, int]]) -> override_settings:
    """Rate limits for a test: generous everywhere but the scopes given."""
    generous = [(1000, MINUTE)]
    rates = {"api": generous, "bulk": generous, "identity_lookup": generous, "search": generous}
    return override_settings(API_RATE_LIMITS={**rates, **scopes})


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def assert_rate_limited(response, retry_after: int) -> None:
    assert response.status_code == 429
    assert response["Retry-After"] == str(retry_after)
    assert response.json() == {
        "code": "rate_limited",
        "detail": f"Too many requests with this API key; retry in {retry_after} seconds.",
        "retry_after": retry_after,
    }


def test_a_key_is_refused_past_its_rate_until_the_window_frees(
    api_client_with_scopes, clock
) -> None:
    customer = CustomerFactory(city="上海")
    client = api_client_with_scopes("customers")
    url = f"/api/v1/customers/{customer.pk}"
    with limits(api=[(3, MINUTE)]):
        assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
        clock.shift(20)
        refused = client.patch(url, {"city": "杭州"}, format="json")
        assert_rate_limited(refused, retry_after=40)
        customer.refresh_from_db()
        assert customer.city == "上海"  # the refused write changed nothing
        clock.shift(39)
        assert_rate_limited(client.get(url), retry_after=1)
        clock.shift(1)  # the first three requests leave the window
        assert client.patch(url, {"city": "杭州"}, format="json").status_code == 200
    customer.refresh_from_db()
    assert customer.city == "杭州"


def test_refused_requests_do_not_count(api_client_with_scopes, clock) -> None:
    client = api_client_with_scopes("orders:read")
    with limits(api=[(2, MINUTE)]):
        assert [client.get("/api/v1/orders").status_code for _ in range(2)] == [200, 200]
        for _ in range(5):
            assert client.get("/api/v1/orders").status_code == 429
        clock.shift(MINUTE)
        assert [client.get("/api/v1/orders").status_code for _ in range(3)] == [200, 200, 429]


def test_a_request_refused_by_its_strict_limit_does_not_count_in_the_general_one(
    api_client_with_scopes, clock
) -> None:
    client = api_client_with_scopes("customers:read")
    with limits(api=[(3, MINUTE)], search=[(1, MINUTE)]):
        searches = [client.get("/api/v1/customers?search=13812340000") for _ in range(3)]
        assert [r.status_code for r in searches] == [200, 429, 429]
        listed = [client.get("/api/v1/customers").status_code for _ in range(3)]
        assert listed == [200, 200, 429]


def test_one_keys_excess_does_not_limit_another_key(api_client_with_scopes, clock) -> None:
    first = api_client_with_scopes("orders:read")
    second = api_client_with_scopes("orders:read")
    with limits(api=[(2, MINUTE)]):
        assert [first.get("/api/v1/orders").status_code for _ in range(3)] == [200, 200, 429]
        assert [second.get("/api/v1/orders").status_code for _ in range(2)] == [200, 200]
        assert_rate_limited(second.get("/api/v1/orders"), retry_after=MINUTE)


def test_phone_lookups_are_limited_more_strictly_per_minute_and_per_day(
    api_client_with_scopes, clock
) -> None:
    IdentityFactory(provider="phone", raw_value=PHONE)
    IdentityFactory(provider="unionid", raw_value="oU1")
    client = api_client_with_scopes("customers")
    phone_url = "/api/v1/customers/by-identity/phone/{}"
    with limits(api=[(100, MINUTE)], identity_lookup=[(2, MINUTE), (3, DAY)]):
        assert client.get(phone_url.format("13812340000")).status_code == 404
        assert client.get(phone_url.format(PHONE)).status_code == 200
        assert_rate_limited(client.get(phone_url.format("13812340001")), retry_after=MINUTE)
        # An upsert by phone tells as much (201 or 200): it counts, and is refused alike.
        refused = client.put(phone_url.format("13812340002"), {}, format="json")
        assert_rate_limited(refused, retry_after=MINUTE)
        assert Customer.objects.count() == 2
        # Lookups by other identities are not guessable from a mask: the general rate only.
        statuses = [client.get("/api/v1/customers/by-identity/unionid/oU1").status_code]
        statuses += [client.get("/api/v1/customers/by-identity/unionid/x").status_code]
        assert statuses == [200, 404]

        clock.shift(MINUTE)
        assert client.put(phone_url.format("13812340002"), {}, format="json").status_code == 201
        # Three in the day: the next waits for the first to be a day old.
        assert_rate_limited(client.get(phone_url.format(PHONE)), retry_after=DAY - MINUTE)
    assert Identity.objects.filter(provider="phone").count() == 2


def test_searches_are_limited_more_strictly(api_client_with_scopes, clock) -> None:
    IdentityFactory(provider="phone", raw_value=PHONE)
    client = api_client_with_scopes("customers:read")
    with limits(api=[(100, MINUTE)], search=[(2, MINUTE)]):
        found = [
            len(client.get(f"/api/v1/customers?search={term}").json()["results"])
            for term in ("13812340000", PHONE)
        ]
        assert found == [0, 1]
        assert_rate_limited(client.get("/api/v1/customers?search=13812340001"), MINUTE)
        # The list without a search is not a guess.
        assert client.get("/api/v1/customers").status_code == 200
        assert client.get("/api/v1/customers?search=").status_code == 200


def test_callers_who_see_personal_data_anyway_are_not_limited_more_strictly(
    api_client_with_scopes, clock
) -> None:
    IdentityFactory(provider="phone", raw_value=PHONE)
    client = api_client_with_scopes("customers:read", "personal_data:read")
    with limits(api=[(100, MINUTE)], identity_lookup=[(1, MINUTE)], search=[(1, MINUTE)]):
        lookups = [client.get(f"/api/v1/customers/by-identity/phone/{PHONE}") for _ in range(3)]
        searches = [client.get(f"/api/v1/customers?search={PHONE}") for _ in range(3)]
    assert [r.status_code for r in lookups + searches] == [200] * 6


def test_the_admin_search_of_an_operator_without_personal_data_is_limited(clock) -> None:
    IdentityFactory(provider="phone", raw_value=PHONE, customer=CustomerFactory(display_name="林"))
    client = client_of(
        UserFactory(
            permissions=seeing_every_customer(
                Permission.objects.filter(content_type__app_label="crm", codename="view_customer")
            )
        )
    )
    url = reverse("admin:crm_customer_changelist")
    with limits(search=[(2, MINUTE)]):
        assert client.get(url, {"q": "13812340000"}).status_code == 200
        assert "林" in client.get(url, {"q": PHONE}).content.decode()
        refused = client.get(url, {"q": PHONE}).content.decode()
        assert "Too many searches; retry in 60 seconds." in refused
        assert "林" not in refused
        assert "林" in client.get(url).content.decode()  # the list without a search
        clock.shift(MINUTE)
        assert "林" in client.get(url, {"q": PHONE}).content.decode()


def test_bulk_ingestion_has_its_own_scope(api_client_with_scopes, clock) -> None:
    client = api_client_with_scopes("orders")
    body = {"orders": [{"source": "youzan", "external_id": "SO1"}]}
    with limits(api=[(1, MINUTE)], bulk=[(2, MINUTE)]):
        assert client.get("/api/v1/orders").status_code == 200
        assert client.get("/api/v1/orders").status_code == 429
        posted = [client.post("/api/v1/orders/bulk", body, format="json") for _ in range(3)]
        assert [r.status_code for r in posted] == [200, 200, 429]
        assert_rate_limited(posted[2], retry_after=MINUTE)


def test_refusal_is_translated(clock) -> None:
    _, raw_key = api_key_create(name="zh", scopes=["orders:read"])
    client = APIClient(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    with limits(api=[(1, MINUTE)]):
        client.get("/api/v1/orders")
        response = client.get("/api/v1/orders")
    assert response.json()["detail"] == "该 API 密钥的请求过于频繁，请在 60 秒后重试。"


def test_the_default_cache_is_shared_by_processes_not_held_in_memory() -> None:
    backend = settings.CACHES["default"]["BACKEND"]
    assert backend in {
        "config.cache.PostgresCache",
        "django.core.cache.backends.redis.RedisCache",
    }


@pytest.mark.django_db(transaction=True)
def test_requests_counted_in_another_process_count_here() -> None:
    """Another process (a second web worker, say) spends the key's rate; this one refuses. A
    day's window: how long the other process takes to start does not matter."""
    _, raw_key = api_key_create(name="shared", scopes=["orders:read"])
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "API_RATE_LIMIT": "3/day",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    script = (
        "import django; django.setup()\n"
        "from rest_framework.test import APIClient\n"
        "client = APIClient()\n"
        f"client.credentials(HTTP_AUTHORIZATION='Api-Key {raw_key}')\n"
        "print([client.get('/api/v1/orders').status_code for _ in range(3)])\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=Path(settings.BASE_DIR),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().splitlines()[-1] == "[200, 200, 200]"
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    with limits(api=[(3, DAY)]):
        assert client.get("/api/v1/orders").status_code == 429


def test_lookups_with_the_phone_in_the_body_count_as_the_path_ones(
    api_client_with_scopes, clock
) -> None:
    IdentityFactory(provider="phone", raw_value=PHONE)
    IdentityFactory(provider="unionid", raw_value="oU1")
    client = api_client_with_scopes("customers")
    with limits(api=[(100, MINUTE)], identity_lookup=[(3, MINUTE)]):
        phone = {"provider": "phone", "value": PHONE}
        assert client.post("/api/v1/customers/lookup", phone).status_code == 200
        assert client.get(f"/api/v1/customers/by-identity/phone/{PHONE}").status_code == 200
        upsert = {"identity": {"provider": "phone", "value": "13812340002"}}
        assert client.post("/api/v1/customers/by-identity", upsert).status_code == 201
        assert_rate_limited(client.post("/api/v1/customers/lookup", phone), retry_after=MINUTE)
        assert_rate_limited(client.post("/api/v1/customers/by-identity", upsert), MINUTE)
        # Other providers, and bodies of no shape, are not counted in the strict scope.
        unionid = {"provider": "unionid", "value": "oU1"}
        assert client.post("/api/v1/customers/lookup", unionid).status_code == 200
        assert client.post("/api/v1/customers/lookup", ["phone"]).status_code == 400
    assert Customer.objects.count() == 3
