"""Management commands: API keys (the plain key is the last stdout line, by contract)."""

from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from core.models import ApiKey
from core.services.api_keys import SCOPES, api_key_authenticate

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
