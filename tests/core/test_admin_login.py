"""The admin login's guards, through the real login form with the test client: a username is
locked from one address after exactly ADMIN_LOGIN_FAILURE_LIMIT failures (not before), with a
Chinese page, until the cool-off passes; the API is never locked. With ADMIN_OTP_REQUIRED on,
superusers and 品牌管理员 give their TOTP code (a wrong or missing one is refused), everyone else
logs in as before; with it off, nothing changes."""

import datetime as dt
import time

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth.models import Group, User
from django.test import Client, override_settings
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.services.api_keys import api_key_create
from core.services.roles import BRAND_ADMIN

pytestmark = pytest.mark.django_db

LOGIN = reverse("admin:login")
INDEX = reverse("admin:index")
PASSWORD = "correct-horse-battery"
NOW = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
def staff() -> User:
    return User.objects.create_user("yunying", password=PASSWORD, is_staff=True)


def _client(address: str = "198.51.100.7") -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="zh-hans", REMOTE_ADDR=address)


def _login(client: Client, username: str, password: str, **extra: str):
    return client.post(LOGIN, {"username": username, "password": password, "next": INDEX, **extra})


def _logged_in(client: Client) -> bool:
    return client.get(INDEX).status_code == 200


def test_locked_after_exactly_the_configured_failures_and_not_before(staff: User) -> None:
    client = _client()
    for _attempt in range(4):
        response = _login(client, "yunying", "wrong")
        assert response.status_code == 200
        assert "请输入一个正确的" in response.content.decode()
    assert AccessAttempt.objects.get().failures_since_start == 4

    fifth = _login(client, "yunying", "wrong")
    assert fifth.status_code == 429
    page = fifth.content.decode()
    assert "该账号已在此地址连续 5 次登录失败后锁定" in page
    assert "30 分钟后再试" in page

    refused = _login(client, "yunying", PASSWORD)  # the right password, while locked
    assert refused.status_code == 429
    assert not _logged_in(client)


def test_four_failures_then_the_right_password_logs_in_and_forgets_them(staff: User) -> None:
    client = _client()
    for _attempt in range(4):
        _login(client, "yunying", "wrong")
    response = _login(client, "yunying", PASSWORD)
    assert response.status_code == 302
    assert _logged_in(client)
    assert not AccessAttempt.objects.exists()


@override_settings(AXES_FAILURE_LIMIT=2)
def test_the_limit_is_a_setting(staff: User) -> None:
    client = _client()
    assert _login(client, "yunying", "wrong").status_code == 200
    assert _login(client, "yunying", "wrong").status_code == 429


def test_the_lock_holds_one_username_from_one_address(staff: User) -> None:
    User.objects.create_user("daogou", password=PASSWORD, is_staff=True)
    attacker = _client("198.51.100.7")
    for _attempt in range(5):
        _login(attacker, "yunying", "wrong")
    assert _login(attacker, "yunying", PASSWORD).status_code == 429
    # Another username from the same address, and the same username from another address.
    assert _login(attacker, "daogou", PASSWORD).status_code == 302
    colleague = _client("203.0.113.20")
    assert _login(colleague, "yunying", PASSWORD).status_code == 302


def test_the_lock_lifts_after_the_cool_off(staff: User) -> None:
    with time_machine.travel(NOW, tick=False):
        client = _client()
        for _attempt in range(5):
            _login(client, "yunying", "wrong")
    with time_machine.travel(NOW + dt.timedelta(minutes=29, seconds=59), tick=False):
        assert _login(client, "yunying", PASSWORD).status_code == 429
    # That failure, during the lock, started the wait again.
    with time_machine.travel(NOW + dt.timedelta(minutes=59, seconds=58), tick=False):
        assert _login(client, "yunying", PASSWORD).status_code == 429
    with time_machine.travel(NOW + dt.timedelta(minutes=90), tick=False):
        assert _login(client, "yunying", PASSWORD).status_code == 302
        assert _logged_in(client)


def test_the_lockout_counts_the_address_behind_trusted_proxies(staff: User) -> None:
    with override_settings(TRUSTED_PROXY_COUNT=1):
        for index in range(5):
            # Each request from the same proxy, each client at its own address: none locked.
            client = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"203.0.113.{index}")
            assert _login(client, "yunying", "wrong").status_code == 200
        assert sorted(AccessAttempt.objects.values_list("ip_address", flat=True)) == [
            f"203.0.113.{index}" for index in range(5)
        ]


def test_the_api_is_never_locked(staff: User) -> None:
    client = _client()
    for _attempt in range(5):
        _login(client, "yunying", "wrong")
    _api_key, raw_key = api_key_create(name="erp", scopes=["tags:read"])
    response = client.get("/api/v1/tags", HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert response.status_code == 200
    wrong_keys = [client.get("/api/v1/tags", HTTP_AUTHORIZATION="Api-Key x.y") for _ in range(6)]
    assert {response.status_code for response in wrong_keys} == {401}
    assert AccessAttempt.objects.get().failures_since_start == 5


def test_test_clients_log_in_without_a_request(staff: User) -> None:
    """Django's test client authenticates without a request: the lockout lets it through."""
    client = Client()
    assert client.login(username="yunying", password=PASSWORD)
    assert _logged_in(client)
    assert not client.login(username="yunying", password="wrong")


# --- The second factor ---------------------------------------------------------------------


def _device(user: User, *, confirmed: bool = True) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="手机", confirmed=confirmed)


def _code(device: TOTPDevice) -> str:
    """The code the user's app shows now."""
    current = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    current.time = time.time()
    return f"{current.token():0{device.digits}d}"


@pytest.fixture
def brand_admin() -> User:
    user = User.objects.create_user("pinpai", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=BRAND_ADMIN)[0])
    return user


def test_without_the_setting_nobody_is_asked_for_a_code(brand_admin: User) -> None:
    _device(brand_admin)
    superuser = User.objects.create_superuser("root", password=PASSWORD)
    _device(superuser)
    for user in (brand_admin, superuser):
        client = _client()
        page = client.get(LOGIN).content.decode()
        assert "otp_token" not in page
        assert _login(client, user.username, PASSWORD).status_code == 302
        assert _logged_in(client)


@override_settings(ADMIN_OTP_REQUIRED=True)
@pytest.mark.parametrize("kind", ["brand_admin", "superuser"])
def test_with_the_setting_brand_admins_and_superusers_give_their_code(
    kind: str, brand_admin: User
) -> None:
    user = (
        brand_admin
        if kind == "brand_admin"
        else User.objects.create_superuser("root", "", PASSWORD)
    )
    device = _device(user)
    client = _client()
    assert "验证码" in client.get(LOGIN).content.decode()

    missing = _login(client, user.username, PASSWORD)
    assert missing.status_code == 200
    assert "请输入身份验证器应用中的验证码。" in missing.content.decode()
    wrong_code = f"{(int(_code(device)) + 1) % 1_000_000:06d}"
    wrong = _login(client, user.username, PASSWORD, otp_token=wrong_code)
    assert wrong.status_code == 200
    assert "验证码错误或已过期。" in wrong.content.decode()
    assert not _logged_in(client)

    device.refresh_from_db()
    device.throttle_reset()  # the wrong code made the device wait a second
    right = _login(client, user.username, PASSWORD, otp_token=_code(device))
    assert right.status_code == 302
    assert _logged_in(client)


@override_settings(ADMIN_OTP_REQUIRED=True)
def test_a_code_does_not_replace_the_password(brand_admin: User) -> None:
    device = _device(brand_admin)
    client = _client()
    response = _login(client, "pinpai", "wrong", otp_token=_code(device))
    assert response.status_code == 200
    assert "请输入一个正确的" in response.content.decode()
    assert not _logged_in(client)


@override_settings(ADMIN_OTP_REQUIRED=True)
def test_with_the_setting_other_staff_log_in_as_before(staff: User) -> None:
    client = _client()
    assert _login(client, "yunying", PASSWORD).status_code == 302
    assert _logged_in(client)


@override_settings(ADMIN_OTP_REQUIRED=True)
def test_a_brand_admin_without_a_confirmed_device_is_told_to_get_one(brand_admin: User) -> None:
    _device(brand_admin, confirmed=False)
    client = _client()
    response = _login(client, "pinpai", PASSWORD, otp_token="123456")
    assert "尚未绑定身份验证器" in response.content.decode()
    assert not _logged_in(client)


def test_a_session_opened_without_the_code_is_refused_once_the_setting_is_on(
    brand_admin: User,
) -> None:
    client = _client()
    client.force_login(brand_admin)
    assert _logged_in(client)
    with override_settings(ADMIN_OTP_REQUIRED=True):
        response = client.get(INDEX)
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


@override_settings(AXES_COOLOFF_TIME=None)  # ADMIN_LOGIN_LOCKOUT_MINUTES=0
def test_without_a_cool_off_the_lock_holds_until_an_administrator_lifts_it(staff: User) -> None:
    with time_machine.travel(NOW, tick=False):
        client = _client()
        for _attempt in range(5):
            response = _login(client, "yunying", "wrong")
    assert "请联系管理员解锁" in response.content.decode()
    with time_machine.travel(NOW + dt.timedelta(days=30), tick=False):
        assert _login(client, "yunying", PASSWORD).status_code == 429
        AccessAttempt.objects.all().delete()  # 后台登录 › 登录失败记录: deleted
        assert _login(client, "yunying", PASSWORD).status_code == 302
