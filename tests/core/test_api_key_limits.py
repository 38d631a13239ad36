"""An API key's limits, over HTTP: an expired key and a key used from an address outside its
allowed list (addresses and CIDR networks, IPv4 and IPv6) are refused with a 401 whose code
says which limit; the caller's address is REMOTE_ADDR unless TRUSTED_PROXY_COUNT proxies are
trusted to append to X-Forwarded-For. Creating a key checks its limits first."""

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.test import override_settings
from django.utils import translation
from rest_framework.test import APIClient

from core.errors import ValidationFailed
from core.models import ApiKey
from core.services.api_keys import api_key_create

pytestmark = pytest.mark.django_db

URL = "/api/v1/tags"  # any endpoint: authentication comes first
NOW = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)


def _client(raw_key: str, **meta: str) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en", **meta)
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


def _key(**limits: Any) -> tuple[ApiKey, str]:
    return api_key_create(name="erp", scopes=["tags:read"], **limits)


def test_a_key_works_until_its_expiry_and_is_refused_after_it() -> None:
    with time_machine.travel(NOW, tick=False):
        api_key, raw_key = _key(expires_at=NOW + dt.timedelta(hours=1))
    with time_machine.travel(NOW + dt.timedelta(minutes=59, seconds=59), tick=False):
        assert _client(raw_key).get(URL).status_code == 200
    with time_machine.travel(NOW + dt.timedelta(hours=1), tick=False):
        response = _client(raw_key).get(URL)
    assert response.status_code == 401
    assert response.json() == {"code": "api_key_expired", "detail": "This API key has expired."}
    assert response["WWW-Authenticate"] == "Api-Key"
    api_key.refresh_from_db()
    assert api_key.last_used_at == NOW + dt.timedelta(minutes=59, seconds=59)  # not touched


IP_NOT_ALLOWED = {
    "code": "api_key_ip_not_allowed",
    "detail": "This API key may not be used from this address.",
}


@pytest.mark.parametrize(
    ("allowed", "address", "status"),
    [
        (["203.0.113.7"], "203.0.113.7", 200),
        (["203.0.113.7"], "203.0.113.8", 401),
        (["10.1.0.0/16"], "10.1.255.254", 200),
        (["10.1.0.0/16"], "10.2.0.1", 401),
        (["10.1.0.0/16", "192.0.2.1"], "192.0.2.1", 200),
        (["2001:db8::/32"], "2001:db8:1234::5", 200),
        (["2001:db8::/32"], "2001:db9::5", 401),
        (["2001:db8::1"], "2001:0db8:0000::0001", 200),  # the same address, written longer
        (["10.1.0.0/16"], "::ffff:10.1.2.3", 200),  # IPv4 seen by a dual-stack server
        (["10.1.0.0/16"], "2001:db8::1", 401),
        ([], "198.51.100.1", 200),  # no list: anywhere
    ],
)
def test_a_key_is_used_only_from_its_allowed_addresses(
    allowed: list[str], address: str, status: int
) -> None:
    _api_key, raw_key = _key(allowed_ips=allowed)
    response = _client(raw_key, REMOTE_ADDR=address).get(URL)
    assert response.status_code == status
    if status == 401:
        assert response.json() == IP_NOT_ALLOWED


def test_x_forwarded_for_is_ignored_without_trusted_proxies() -> None:
    _api_key, raw_key = _key(allowed_ips=["203.0.113.7"])
    spoofed = _client(raw_key, REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert spoofed.get(URL).json() == IP_NOT_ALLOWED
    direct = _client(raw_key, REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert direct.get(URL).status_code == 200


@pytest.mark.parametrize(
    ("trusted", "forwarded_for", "status"),
    [
        # One proxy appends what it saw: the last entry. What the client wrote before is not read.
        (1, "203.0.113.7", 200),
        (1, "198.51.100.9, 203.0.113.7", 200),
        (1, "203.0.113.7, 198.51.100.9", 401),
        # Two proxies: the client's address is the second from the right.
        (2, "203.0.113.7, 10.0.0.2", 200),
        (2, "203.0.113.7 , 10.0.0.2", 200),
        (2, "10.0.0.2, 203.0.113.7", 401),
        (2, "[2001:db8::7], 10.0.0.2", 401),
        # Fewer entries than trusted proxies: the header is not what they wrote; REMOTE_ADDR.
        (2, "203.0.113.7", 401),
        (1, "not-an-address", 401),
    ],
)
def test_x_forwarded_for_through_trusted_proxies(
    trusted: int, forwarded_for: str, status: int
) -> None:
    _api_key, raw_key = _key(allowed_ips=["203.0.113.7"])
    client = _client(raw_key, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded_for)
    with override_settings(TRUSTED_PROXY_COUNT=trusted):
        response = client.get(URL)
    assert response.status_code == status


def test_an_ipv6_client_through_a_trusted_proxy() -> None:
    _api_key, raw_key = _key(allowed_ips=["2001:db8::/48"])
    client = _client(raw_key, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="[2001:db8::7]")
    with override_settings(TRUSTED_PROXY_COUNT=1):
        assert client.get(URL).status_code == 200


def test_an_expired_key_says_so_before_its_address() -> None:
    with time_machine.travel(NOW, tick=False):
        _api_key, raw_key = _key(expires_at=NOW + dt.timedelta(days=1), allowed_ips=["10.0.0.1"])
    with time_machine.travel(NOW + dt.timedelta(days=2), tick=False):
        response = _client(raw_key, REMOTE_ADDR="10.9.9.9").get(URL)
    assert response.json()["code"] == "api_key_expired"


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("limits", "code", "detail"),
    [
        (
            {"allowed_ips": ["10.0.0.1", "10.0.0.0/33", "fe80::zz"]},
            "invalid_allowed_ip",
            {
                "allowed_ips": [
                    "Not an IP address or network (CIDR): 10.0.0.0/33",
                    "Not an IP address or network (CIDR): fe80::zz",
                ]
            },
        ),
        (
            {"allowed_ips": [f"10.0.{n // 256}.{n % 256}" for n in range(101)]},
            "too_many_allowed_ips",
            {"allowed_ips": ["At most 100 allowed addresses or networks."]},
        ),
        (
            {"expires_at": NOW},
            "expiry_in_past",
            {"expires_at": ["The expiry must be in the future."]},
        ),
        (
            {"staff_member_id": 987654},
            "unknown_staff_member",
            {"staff_member_id": ["No such staff member."]},
        ),
    ],
)
def test_a_key_with_bad_limits_is_not_created(
    limits: dict[str, Any], code: str, detail: dict[str, list[str]]
) -> None:
    with translation.override("en"), pytest.raises(ValidationFailed) as refused:
        _key(**limits)
    assert (refused.value.code, refused.value.detail) == (code, detail)
    assert not ApiKey.objects.exists()


def test_allowed_ips_are_stored_canonical_and_once() -> None:
    api_key, _raw_key = _key(allowed_ips=[" 2001:DB8::1 ", "10.0.0.0/8", "2001:db8:0::1", ""])
    assert api_key.allowed_ips == ["2001:db8::1", "10.0.0.0/8"]
