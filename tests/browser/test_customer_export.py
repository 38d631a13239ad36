"""The customers list's export in a real browser, in Chinese: an operator filters the list by
lifecycle state, clicks 导出, and the file that arrives holds exactly the filtered customers;
the customer page shows its interactions and campaign history."""

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from console.models import CustomerExport
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    CustomerMetricsFactory,
    DeliveryFactory,
    IdentityFactory,
    InteractionFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _filter_sleeping(page: Page) -> None:
    page.goto("/admin/crm/customer/")
    page.locator("#changelist-filter").get_by_role("link", name="沉睡", exact=True).click()
    expect(page.locator("#result_list tbody tr")).to_have_count(2)


def test_an_operator_exports_the_filtered_customers(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    for name in ("林晓雨", "陈一鸣"):
        customer = CustomerMetricsFactory(
            customer=CustomerFactory(display_name=name), lifecycle_state="sleeping"
        ).customer
        IdentityFactory(customer=customer, provider="phone")
    active = CustomerFactory(display_name="周活跃")
    CustomerMetricsFactory(customer=active, lifecycle_state="active")

    _filter_sleeping(operator_page)
    screenshot(operator_page, "filtered")
    with operator_page.expect_download() as download_info:
        operator_page.get_by_role("link", name="导出 CSV").click()
    download = download_info.value

    assert download.suggested_filename.startswith("客户-")
    assert download.suggested_filename.endswith(".csv")
    text = Path(download.path()).read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["客户编号", "昵称", "手机号"]
    assert sorted(row[1] for row in rows[1:]) == ["林晓雨", "陈一鸣"]
    assert {row[11] for row in rows[1:]} == {"沉睡"}  # after the birthday
    record = CustomerExport.objects.get()
    assert (record.row_count, record.filters) == (2, "生命周期状态：沉睡")

    with operator_page.expect_download() as download_info:
        operator_page.get_by_role("link", name="导出 Excel").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(Path(download.path()).read_bytes()), read_only=True).active
    assert sorted(row[1] for row in sheet.iter_rows(min_row=2, values_only=True)) == [
        "林晓雨",
        "陈一鸣",
    ]

    operator_page.goto("/admin/console/customerexport/")
    expect(operator_page.locator("#result_list tbody tr")).to_have_count(2)
    expect(operator_page.locator("#result_list")).to_contain_text("生命周期状态：沉睡")
    screenshot(operator_page, "records")


def test_the_customer_page_shows_interactions_and_campaign_history(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    customer = CustomerFactory(display_name="林晓雨")
    InteractionFactory(customer=customer, kind="coupon_claim")
    InteractionFactory(customer=customer, kind="miniprogram_visit")
    DeliveryFactory(customer=customer, campaign=CampaignFactory(name="双十一预热"))

    operator_page.goto(f"/admin/crm/customer/{customer.pk}/change/")

    expect(operator_page.locator("#content")).to_contain_text("互动记录：最近 20 条")
    expect(operator_page.locator("#content")).to_contain_text("领取优惠券")
    expect(operator_page.locator("#content")).to_contain_text("营销活动记录：最近 50 条")
    expect(operator_page.get_by_role("link", name="双十一预热").first).to_be_visible()
    screenshot(operator_page, "customer")
