"""The admin login's guards in a real browser, in Chinese: the lockout page after the configured
failures, and the verification code of the second factor when ADMIN_OTP_REQUIRED is on."""

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from tests.browser.conftest import OPERATOR_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def _submit(page: Page, username: str, password: str) -> None:
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


@override_settings(AXES_FAILURE_LIMIT=3)
@pytest.mark.expected_browser_errors(r"status of 429 \(Too Many Requests\)")  # the lockout's
def test_the_lockout_page_after_the_configured_failures(
    page: Page, operator: User, screenshot: Callable[..., Path]
) -> None:
    page.goto("/admin/login/")
    for _attempt in range(2):
        _submit(page, operator.username, "not-the-password")
        expect(page.locator(".errornote")).to_contain_text("请输入一个正确的")
    _submit(page, operator.username, "not-the-password")

    expect(page.locator("#login-locked-out")).to_contain_text(
        "该账号已在此地址连续 3 次登录失败后锁定。请 30 分钟后再试"
    )
    screenshot(page, "locked")
    page.get_by_role("link", name="返回登录页").click()
    _submit(page, operator.username, OPERATOR_PASSWORD)
    expect(page.locator("#login-locked-out")).to_be_visible()


@override_settings(ADMIN_OTP_REQUIRED=True)
def test_a_superuser_logs_in_with_the_code_of_their_app(
    page: Page, operator: User, screenshot: Callable[..., Path]
) -> None:
    device = TOTPDevice.objects.create(user=operator, name="手机", confirmed=True)
    page.goto("/admin/")
    expect(page.get_by_label("验证码")).to_be_visible()
    screenshot(page, "form")
    _submit(page, operator.username, OPERATOR_PASSWORD)
    expect(page.locator(".errornote")).to_contain_text("请输入身份验证器应用中的验证码。")

    code = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    code.time = time.time()
    page.get_by_label("密码").fill(OPERATOR_PASSWORD)
    page.get_by_label("验证码").fill(f"{code.token():06d}")
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#user-tools")).to_contain_text("注销")


def test_an_operator_sets_up_their_authenticator_app(
    operator_page: Page, operator: User, screenshot: Callable[..., Path]
) -> None:
    page = operator_page
    page.goto("/admin/two-step/")
    expect(page.locator("#two-step-devices")).to_have_text("暂无。")
    page.get_by_role("button", name="绑定身份验证器").click()
    expect(page.locator("#two-step-qrcode")).to_be_visible()
    screenshot(page, "qrcode")
    device = TOTPDevice.objects.get(user=operator)
    code = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    code.time = time.time()
    page.get_by_label("验证码").fill(f"{code.token():06d}")
    page.get_by_role("button", name="确认").click()
    expect(page.locator(".messagelist")).to_contain_text("身份验证器已绑定。")
    expect(page.locator("#two-step-devices")).to_contain_text("authenticator")
