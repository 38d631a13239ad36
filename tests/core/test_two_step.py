"""二次验证, a user's own page: adding an authenticator app shows its QR code and otpauth URI,
and the device counts only once the user typed a code it made; a wrong code confirms nothing;
a user who must give a code reaches the page only once verified."""

import time

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client, override_settings
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.services.roles import BRAND_ADMIN

pytestmark = pytest.mark.django_db

URL = reverse("admin:two_step")


def _code(device: TOTPDevice) -> str:
    current = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    current.time = time.time()
    return f"{current.token():0{device.digits}d}"


@pytest.fixture
def brand_admin() -> User:
    user = User.objects.create_user("pinpai", password="secret-pass-123", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=BRAND_ADMIN)[0])
    return user


@pytest.fixture
def client_of_brand_admin(brand_admin: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(brand_admin)
    return client


def test_a_user_adds_and_confirms_their_authenticator_app(
    client_of_brand_admin: Client, brand_admin: User
) -> None:
    page = client_of_brand_admin.get(URL).content.decode()
    assert "二次验证" in page and "暂无。" in page

    assert client_of_brand_admin.post(URL, {"action": "add"}).status_code == 302
    pending = TOTPDevice.objects.get()
    assert (pending.user, pending.confirmed) == (brand_admin, False)
    page = client_of_brand_admin.get(URL).content.decode()
    assert pending.config_url.replace("&", "&amp;") in page
    assert 'src="data:image/svg+xml;base64,' in page

    wrong = f"{(int(_code(pending)) + 1) % 1_000_000:06d}"
    refused = client_of_brand_admin.post(URL, {"action": "confirm", "otp_token": wrong})
    assert "验证码错误或已过期。" in refused.content.decode()
    pending.refresh_from_db()
    assert pending.confirmed is False

    pending.throttle_reset()
    confirmed = client_of_brand_admin.post(URL, {"action": "confirm", "otp_token": _code(pending)})
    assert confirmed.status_code == 302
    pending.refresh_from_db()
    assert pending.confirmed is True
    # The session that proved the device is verified: it keeps the admin once codes are due.
    with override_settings(ADMIN_OTP_REQUIRED=True):
        assert client_of_brand_admin.get(reverse("admin:index")).status_code == 200


def test_adding_again_replaces_an_unconfirmed_device_only(
    client_of_brand_admin: Client, brand_admin: User
) -> None:
    kept = TOTPDevice.objects.create(user=brand_admin, name="手机", confirmed=True)
    client_of_brand_admin.post(URL, {"action": "add"})
    first = TOTPDevice.objects.get(confirmed=False)
    client_of_brand_admin.post(URL, {"action": "add"})
    second = TOTPDevice.objects.get(confirmed=False)
    assert second.pk != first.pk
    assert set(TOTPDevice.objects.values_list("pk", flat=True)) == {kept.pk, second.pk}


def test_a_user_confirms_no_one_elses_device(client_of_brand_admin: Client) -> None:
    other = User.objects.create_user("other", is_staff=True)
    theirs = TOTPDevice.objects.create(user=other, name="pending", confirmed=False)
    client_of_brand_admin.post(URL, {"action": "confirm", "otp_token": _code(theirs)})
    theirs.refresh_from_db()
    assert theirs.confirmed is False


@override_settings(ADMIN_OTP_REQUIRED=True)
def test_a_password_alone_does_not_reach_the_page_when_a_code_is_due(
    client_of_brand_admin: Client,
) -> None:
    response = client_of_brand_admin.post(URL, {"action": "add"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not TOTPDevice.objects.exists()


def test_the_page_needs_a_login() -> None:
    response = Client().get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
