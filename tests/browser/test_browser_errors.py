"""The browser fixtures' error watch: a console or page error a test declares is recorded and
allowed, any other is unexpected (and fails the test, in the fixture's teardown)."""

import re

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import BrowserErrors


@pytest.mark.django_db(transaction=True)
@pytest.mark.expected_browser_errors("^console: 预期之内", "^page error: 故意抛出")
def test_a_declared_browser_error_is_recorded_and_allowed(
    page: Page, browser_errors: BrowserErrors
) -> None:
    page.goto("/admin/login/")
    with page.expect_console_message(lambda message: message.type == "error"):
        page.evaluate("console.error('预期之内的错误')")
    with page.expect_event("pageerror"):
        page.evaluate("setTimeout(() => { throw new Error('故意抛出') })")

    assert [text.split(" (")[0] for text in browser_errors.seen] == [
        "console: 预期之内的错误",
        "page error: 故意抛出",
    ]
    assert browser_errors.unexpected() == []


def test_an_undeclared_browser_error_is_unexpected() -> None:
    errors = BrowserErrors(
        expected=[re.compile("^console: 预期")],
        seen=["console: 预期之内 (http://x/)", "page error: TypeError: x is undefined"],
    )

    assert errors.unexpected() == ["page error: TypeError: x is undefined"]
