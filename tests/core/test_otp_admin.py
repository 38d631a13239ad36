"""Enrolling the second factor: `add_totp_device` gives a user a confirmed device and prints its
otpauth URI (and a QR code); the admin of TOTP devices, in Chinese, adds one and shows its QR
code page; the admin login's records (django-axes) read in Chinese."""

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db


@pytest.fixture
def chinese_admin(admin_user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)
    return client


def test_add_totp_device_prints_the_uri_of_a_new_confirmed_device() -> None:
    user = User.objects.create_user("pinpai", is_staff=True)
    out = StringIO()
    call_command("add_totp_device", "pinpai", "--name", "手机", stdout=out)
    device = TOTPDevice.objects.get()
    assert (device.user, device.name, device.confirmed) == (user, "手机", True)
    lines = out.getvalue().strip().splitlines()
    assert lines[-1] == device.config_url
    assert lines[-1].startswith("otpauth://totp/")
    assert f"secret={device.config_url.split('secret=')[1].split('&')[0]}" in lines[-1]
    assert len(lines) > 10  # the QR code drawn above


def test_add_totp_device_refuses_an_unknown_user() -> None:
    with pytest.raises(CommandError, match="No admin user has this username"):
        call_command("add_totp_device", "nobody", stdout=StringIO())
    assert not TOTPDevice.objects.exists()


def test_the_admin_adds_a_device_and_shows_its_qr_code(
    chinese_admin: Client, admin_user: User
) -> None:
    user = User.objects.create_user("pinpai", is_staff=True)
    add = chinese_admin.get(reverse("admin:otp_totp_totpdevice_add")).content.decode()
    assert "设备名称" in add and "已确认" in add
    response = chinese_admin.post(
        reverse("admin:otp_totp_totpdevice_add"),
        {"user": user.pk, "name": "手机", "confirmed": "on"},
    )
    assert response.status_code == 302
    device = TOTPDevice.objects.get()
    assert (device.user, device.confirmed) == (user, True)

    listing = chinese_admin.get(reverse("admin:otp_totp_totpdevice_changelist")).content.decode()
    assert "查看二维码" in listing
    page = chinese_admin.get(
        reverse("admin:otp_totp_totpdevice_config", kwargs={"pk": device.pk})
    ).content.decode()
    assert "二次验证：pinpai" in page
    assert device.config_url.replace("&", "&amp;") in page
    qr = chinese_admin.get(reverse("admin:otp_totp_totpdevice_qrcode", kwargs={"pk": device.pk}))
    assert qr["Content-Type"] == "image/svg+xml"
    assert b"<svg" in qr.content


def test_staff_without_permission_cannot_see_a_device_qr_code(admin_user: User) -> None:
    device = TOTPDevice.objects.create(user=admin_user, name="手机")
    staff = User.objects.create_user("yunying", is_staff=True)
    client = Client()
    client.force_login(staff)
    url = reverse("admin:otp_totp_totpdevice_config", kwargs={"pk": device.pk})
    assert client.get(url).status_code == 403
    qr_url = reverse("admin:otp_totp_totpdevice_qrcode", kwargs={"pk": device.pk})
    assert client.get(qr_url).status_code == 403


def test_the_login_records_read_in_chinese(chinese_admin: Client) -> None:
    Client(REMOTE_ADDR="198.51.100.7").post(
        reverse("admin:login"), {"username": "someone", "password": "wrong"}
    )
    index = chinese_admin.get(reverse("admin:index")).content.decode()
    assert "后台登录" in index and "登录失败记录" in index and "登录记录" in index
    assert "二次验证" in index
    attempts = chinese_admin.get(reverse("admin:axes_accessattempt_changelist")).content.decode()
    assert "来源地址" in attempts and "用户名" in attempts and "连续失败次数" in attempts
