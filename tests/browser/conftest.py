"""Fixtures of the real-browser tests: Debian's Chromium driven by Playwright against pytest-
django's live server, one browser for the package, a fresh context per test reading Chinese,
console and page errors failing the test, the demo's operator logged in, and screenshots named
after the test under .local/screenshots/ (git-ignored).

The browser is Debian's `chromium` package at CHROMIUM_PATH (default /usr/bin/chromium);
Playwright's own browser download is never used. A missing browser fails every test here: the
run is red, never skipped."""

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    sync_playwright,
)
from pytest_django.live_server_helper import LiveServer

from devstack.management.commands.run_stack import OPERATOR_USERNAME, _ensure_operator

CHROMIUM_PATH_VARIABLE = "CHROMIUM_PATH"
DEFAULT_CHROMIUM_PATH = "/usr/bin/chromium"
SCREENSHOTS_DIR = Path(settings.BASE_DIR) / ".local" / "screenshots"
OPERATOR_PASSWORD = "browser-tests-operator"  # the operator's login in the test database
# What the browser asks for: Chinese first, as an operator's browser in China does.
ACCEPT_LANGUAGE = "zh-CN,zh;q=0.9"
VIEWPORT = {"width": 1366, "height": 900}


def chromium_path() -> Path:
    return Path(os.environ.get(CHROMIUM_PATH_VARIABLE) or DEFAULT_CHROMIUM_PATH)


def chinese_fonts() -> list[str]:
    """The font families fontconfig (which Chromium asks) has for Chinese; none without
    fontconfig's fc-list."""
    try:
        listed = subprocess.run(
            ["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return []
    return [line for line in listed.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Chromium, launched once for the browser tests.

    Playwright's synchronous API runs an asyncio loop on this thread, so Django's guard against
    blocking calls from async code would refuse every query the tests make; the guard is lifted
    for exactly as long as Playwright runs (package scope: the tests after these keep it)."""
    path = chromium_path()
    if not path.is_file():
        pytest.fail(
            f"Chromium not found at {path}: install Debian's package"
            f" (apt-get install -y chromium fonts-noto-cjk) or set {CHROMIUM_PATH_VARIABLE}"
            " to a Chromium executable. The browser tests never skip.",
            pytrace=False,
        )
    if not chinese_fonts():
        pytest.fail(
            "No font with Chinese glyphs (fontconfig's fc-list ':lang=zh' lists none): the"
            " pages would render as boxes. Install Debian's fonts-noto-cjk (and fontconfig).",
            pytrace=False,
        )
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=str(path), headless=True)
        try:
            yield launched
        finally:
            launched.close()
    finally:
        playwright.stop()
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class BrowserErrors:
    """The console errors and uncaught page errors of a test's pages, and the patterns of those
    the test expects."""

    expected: list[re.Pattern[str]] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        # The browser asks for /favicon.ico on its own, whatever the page says; the site has
        # no icon yet, and that request is no error of the page's.
        if urlsplit(url).path == "/favicon.ico":
            return
        self.seen.append(f"console: {message.text} ({url})")

    def on_page_error(self, error: Error) -> None:
        self.seen.append(f"page error: {error.message}")

    def watch(self, page: Page) -> None:
        page.on("console", self.on_console)
        page.on("pageerror", self.on_page_error)

    def unexpected(self) -> list[str]:
        return [
            text for text in self.seen if not any(pattern.search(text) for pattern in self.expected)
        ]


@pytest.fixture
def browser_errors(request: pytest.FixtureRequest) -> BrowserErrors:
    expected = [
        re.compile(pattern)
        for marker in request.node.iter_markers("expected_browser_errors")
        for pattern in marker.args
    ]
    return BrowserErrors(expected=expected)


@pytest.fixture
def browser_context(
    browser: Browser, live_server: LiveServer, browser_errors: BrowserErrors
) -> Iterator[BrowserContext]:
    """A fresh context (no cookies) on the live server, asking for Chinese, every page's
    errors recorded: any the test did not declare fails it once it has run."""
    context = browser.new_context(
        base_url=live_server.url,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        extra_http_headers={"Accept-Language": ACCEPT_LANGUAGE},
        viewport=VIEWPORT,
    )
    context.set_default_timeout(10_000)
    context.on("page", browser_errors.watch)
    try:
        yield context
    finally:
        context.close()
    unexpected = browser_errors.unexpected()
    if unexpected:
        pytest.fail("errors in the browser:\n" + "\n".join(unexpected), pytrace=False)


@pytest.fixture
def page(browser_context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page of the test's context; a screenshot of it is kept when the test fails (and the
    one an earlier failure left is removed)."""
    failed_path = screenshot_path(request.node.name, "failed")
    failed_path.unlink(missing_ok=True)
    opened = browser_context.new_page()
    yield opened
    report = getattr(request.node, "call_report", None)
    if report is not None and report.failed and not opened.is_closed():
        opened.screenshot(path=failed_path, full_page=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.when == "call":
        item.call_report = report  # type: ignore[attr-defined]
    return report


def screenshot_path(test_name: str, suffix: str = "") -> Path:
    name = re.sub(r"[^\w.-]+", "_", test_name).strip("_")
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS_DIR / (f"{name}-{suffix}.png" if suffix else f"{name}.png")


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[..., Path]:
    """`screenshot(page)` writes the whole page to .local/screenshots/<test name>.png,
    `screenshot(page, "login")` to <test name>-login.png."""

    def take(shown: Page, suffix: str = "") -> Path:
        path = screenshot_path(request.node.name, suffix)
        shown.screenshot(path=path, full_page=True)
        return path

    return take


@pytest.fixture
def operator(transactional_db: None) -> User:
    """The demo's operator, made as `make run` makes it, with a password known to the tests."""
    _ensure_operator(OPERATOR_PASSWORD)
    return User.objects.get(username=OPERATOR_USERNAME)


@pytest.fixture
def operator_page(page: Page, operator: User, live_server: LiveServer) -> Page:
    """A page logged in as the operator: a session made server-side and handed to the browser
    as its cookie (the login form itself has a test of its own)."""
    client = Client()
    client.force_login(operator)
    session_cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session_cookie.value,
                "url": live_server.url,
            }
        ]
    )
    return page
