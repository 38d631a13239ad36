"""Management commands: API keys (the plain key is the last stdout line, by contract), with
their limits: expiry, allowed addresses, the staff member they are bound to."""

import datetime as dt
from collections.abc import Iterator
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import translation

from core.models import ApiKey
from core.services.api_keys import SCOPES, ApiKeyRefused, api_key_authenticate
from tests.factories import StaffMemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Commands speak the default language (Chinese); these tests assert English messages."""
    with translation.override("en"):
        yield


def _create(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_create_api_key_prints_the_plain_key_alone_on_the_last_line() -> None:
    lines = _create("--name", "shop backend", "--scopes", "orders:write, customers")
    api_key = api_key_authenticate(lines[-1])
    assert api_key is not None
    assert api_key.name == "shop backend"
    assert api_key.scopes == ["customers:read", "customers:write", "orders:write"]
    assert api_key.prefix in lines[0]
    assert "orders:write" in lines[0]
    assert lines[-1] not in lines[0]


def test_create_api_key_star_grants_every_scope() -> None:
    lines = _create("--name", "all", "--scopes", "*")
    api_key = api_key_authenticate(lines[-1])
    assert api_key is not None
    assert sorted(api_key.scopes) == sorted(SCOPES)


def test_create_api_key_rejects_an_unknown_scope_with_a_clear_message() -> None:
    with pytest.raises(CommandError, match="Unknown scope orders:delete"):
        _create("--name", "bad", "--scopes", "orders:delete")
    assert not ApiKey.objects.exists()


def test_create_api_key_rejects_empty_scopes_and_blank_name() -> None:
    with pytest.raises(CommandError, match="At least one scope"):
        _create("--name", "none", "--scopes", " , ")
    with pytest.raises(CommandError, match="needs a name"):
        _create("--name", "  ", "--scopes", "orders")


def test_revoke_api_key_stops_authentication_and_is_idempotent() -> None:
    raw_key = _create("--name", "temp", "--scopes", "tags:read")[-1]
    prefix = raw_key.partition(".")[0]
    out = StringIO()
    call_command("revoke_api_key", prefix, stdout=out)
    assert f"prefix={prefix}" in out.getvalue()
    assert api_key_authenticate(raw_key) is None
    call_command("revoke_api_key", prefix, stdout=StringIO())  # again: no error


def test_revoke_api_key_unknown_prefix_fails() -> None:
    with pytest.raises(CommandError, match="No such API key"):
        call_command("revoke_api_key", "000000000000", stdout=StringIO())


NOW = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)


@time_machine.travel(NOW, tick=False)
def test_create_api_key_with_every_limit() -> None:
    staff_member = StaffMemberFactory(wecom_userid="zhangsan")
    lines = _create(
        "--name", "sidebar", "--scopes", "customers:read",
        "--expires-in-days", "30",
        "--allow-ip", "203.0.113.7", "--allow-ip", " 10.1.0.0/16 ", "--allow-ip", "2001:db8::/32",
        "--owner", "zhangsan",
    )  # fmt: skip
    api_key = ApiKey.objects.get()
    assert api_key.expires_at == NOW + dt.timedelta(days=30)
    assert api_key.allowed_ips == ["203.0.113.7", "10.1.0.0/16", "2001:db8::/32"]
    assert api_key.staff_member_id == staff_member.pk
    assert f"staff_member_id={staff_member.pk}" in lines[0]
    assert "allowed_ips=203.0.113.7,10.1.0.0/16,2001:db8::/32" in lines[0]
    assert api_key_authenticate(lines[-1], client_ip="10.1.200.3") == api_key


@time_machine.travel(NOW, tick=False)
def test_create_api_key_expires_at_takes_a_zone_or_business_time() -> None:
    _create("--name", "a", "--scopes", "tags", "--expires-at", "2027-01-01T00:00:00+08:00")
    _create("--name", "b", "--scopes", "tags", "--expires-at", "2027-01-01T00:00")
    expiries = set(ApiKey.objects.values_list("expires_at", flat=True))
    assert expiries == {dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.UTC)}  # Asia/Shanghai


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--allow-ip", "10.0.0.1", "--allow-ip", "10.0.0.300"), "network \\(CIDR\\): 10.0.0.300"),
        (("--allow-ip", "10.0.0.1/24"), "network \\(CIDR\\): 10.0.0.1/24"),  # host bits set
        (("--allow-ip", "example.com"), "network \\(CIDR\\): example.com"),
        (("--expires-at", "2026-12-05T09:59:59Z"), "expiry must be in the future"),
        (("--expires-at", "next tuesday"), "not an ISO 8601 date and time: 'next tuesday'"),
        (("--expires-in-days", "0"), "--expires-in-days must be 1 or more"),
        (("--owner", "nobody"), "no staff member has this WeCom userid"),
    ],
)
def test_create_api_key_refuses_bad_limits_and_creates_nothing(
    args: tuple[str, ...], message: str
) -> None:
    StaffMemberFactory(wecom_userid="zhangsan")
    with pytest.raises(CommandError, match=message):
        _create("--name", "bad", "--scopes", "orders", *args)
    assert not ApiKey.objects.exists()


def test_create_api_key_expiry_options_exclude_each_other() -> None:
    with pytest.raises(CommandError, match="not allowed with argument"):
        _create(
            "--name", "x", "--scopes", "orders",
            "--expires-in-days", "3", "--expires-at", "2030-01-01T00:00:00Z",
        )  # fmt: skip
    assert not ApiKey.objects.exists()


def test_a_key_created_with_an_expiry_stops_working_after_it() -> None:
    raw_key = _create("--name", "temp", "--scopes", "orders", "--expires-in-days", "1")[-1]
    assert api_key_authenticate(raw_key) is not None
    later = time_machine.travel(dt.timedelta(days=1, seconds=1))
    with later, pytest.raises(ApiKeyRefused) as refused:
        api_key_authenticate(raw_key)
    assert refused.value.code == "api_key_expired"
