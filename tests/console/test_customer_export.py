"""The customers list's export (导出): the list as filtered and searched, every page, as CSV
(streamed, with a byte-order mark) or .xlsx, in Chinese, masked unless the user may see
personal data, safe from formulas, refused above the limit, recorded; one query for all
rows."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

import console.admin
import core.admin
from console.exports import cell_text
from console.models import CustomerExport
from tests.factories import (
    CustomerFactory,
    CustomerMetricsFactory,
    CustomerTagFactory,
    IdentityFactory,
    StaffMemberFactory,
    TagFactory,
    UserFactory,
)
from tests.factories.users import seeing_every_customer

HEADERS = [
    "客户编号",
    "昵称",
    "手机号",
    "性别",
    "生日",
    "省份",
    "城市",
    "来源渠道",
    "跟进人",
    "会员等级",
    "会员积分",
    "生命周期状态",
    "RFM 层级",
    "累计订单数",
    "累计净消费",
    "最近付款时间（北京时间）",
    "首次触达时间（北京时间）",
    "标签",
]
LIST_URL = reverse("admin:crm_customer_changelist")
CSV_URL = reverse("admin:crm_customer_export", args=["csv"])
XLSX_URL = reverse("admin:crm_customer_export", args=["xlsx"])


def _chinese_client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(user)
    return client


def _viewer(*, personal_data: bool = False, may_export: bool = True):
    codenames = ["view_customer", *(["view_personal_data"] if personal_data else [])]
    permissions = [
        *Permission.objects.filter(content_type__app_label="crm", codename__in=codenames),
        *Permission.objects.filter(
            content_type__app_label="console",
            codename__in=["add_customerexport"] if may_export else [],
        ),
    ]
    return UserFactory(permissions=seeing_every_customer(permissions))


def _csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the Chinese right
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


@pytest.fixture
def sleeping_customer():
    """A customer with every column filled, sleeping, and a phone number."""
    owner = StaffMemberFactory(name="李导购")
    customer = CustomerFactory(
        display_name="王小美",
        gender="female",
        birthday=date(1992, 3, 4),
        province="浙江",
        city="杭州",
        source_channel="xiaohongshu",
        owner=owner,
        member_level=3,
        member_points=1200,
        first_seen_at=datetime(2026, 3, 1, 16, 30, tzinfo=UTC),
    )
    CustomerMetricsFactory(
        customer=customer,
        lifecycle_state="sleeping",
        rfm_tier="important_winback",
        lifetime_orders=4,
        lifetime_net_spend=Decimal("1288.50"),
        last_paid_at=datetime(2026, 6, 30, 17, 5, tzinfo=UTC),
    )
    IdentityFactory(customer=customer, provider="phone", raw_value="13812341234")
    CustomerTagFactory(customer=customer, tag=TagFactory(name="面膜"))
    CustomerTagFactory(customer=customer, tag=TagFactory(name="VIP"))
    return customer


def _expected_row(customer, phone: str, *, masked: bool) -> list[str]:
    """The row of `sleeping_customer`; its name and birthday masked for a viewer without
    personal data (a list exported without that permission names nobody)."""
    return [
        str(customer.pk),
        "王**" if masked else "王小美",
        phone,
        "女",
        "****-**-**" if masked else "1992-03-04",
        "浙江",
        "杭州",
        "小红书",
        "李导购",
        "3",
        "1200",
        "沉睡",
        "重要挽留客户",
        "4",
        "1288.50",
        "2026-07-01 01:05",  # business time (UTC+8)
        "2026-03-02 00:30",
        "VIP、面膜",
    ]


@pytest.mark.django_db
def test_the_csv_holds_the_filtered_list_masked_for_a_viewer_without_personal_data(
    sleeping_customer,
) -> None:
    active = CustomerMetricsFactory(lifecycle_state="active").customer
    client = _chinese_client(_viewer())

    response = client.get(CSV_URL, {"metrics__lifecycle_state__exact": "sleeping"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    rows = _csv_rows(response)
    assert rows == [HEADERS, _expected_row(sleeping_customer, "13****34", masked=True)]
    assert active.pk not in {row[0] for row in rows}


@pytest.mark.django_db
def test_a_viewer_who_may_see_personal_data_gets_the_numbers_unmasked(sleeping_customer) -> None:
    foreigner = CustomerFactory(display_name="Anna")
    client = _chinese_client(_viewer(personal_data=True))

    rows = _csv_rows(client.get(CSV_URL, {"q": "王小美"}))

    assert rows[1] == _expected_row(sleeping_customer, "13812341234", masked=False)
    IdentityFactory(customer=foreigner, provider="phone", raw_value="+4915112345678")
    rows = _csv_rows(client.get(CSV_URL, {"q": "Anna"}))
    assert rows[1][2] == "'+4915112345678"  # text, never a formula
    assert list(CustomerExport.objects.values_list("is_unmasked", flat=True)) == [True, True]


@pytest.mark.django_db
def test_the_xlsx_holds_the_same_rows_as_the_csv(sleeping_customer) -> None:
    CustomerFactory(display_name="张三")  # no metrics, no phone, no tags
    client = _chinese_client(_viewer())

    response = client.get(XLSX_URL, {"q": "王小美"})

    assert response.status_code == 200
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    sheet = workbook.active
    assert sheet.title == "客户"
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0] == HEADERS
    assert rows[1:] == [
        [
            sleeping_customer.pk,
            "王**",
            "13****34",
            "女",
            "****-**-**",
            "浙江",
            "杭州",
            "小红书",
            "李导购",
            3,
            1200,
            "沉睡",
            "重要挽留客户",
            4,
            1288.5,  # a number, summable in Excel
            "2026-07-01 01:05",
            "2026-03-02 00:30",
            "VIP、面膜",
        ]
    ]


@pytest.mark.django_db
def test_text_that_a_spreadsheet_would_run_as_a_formula_is_made_plain() -> None:
    customers = [
        CustomerFactory(display_name=name, city='=HYPERLINK("http://evil")')
        for name in ("=1+2", "+86 号码", "-SUM(A1)", "@cmd", "\tTab", "正常")
    ]
    customers[0].display_name = "=1+2\x07"  # a control character too
    customers[0].save()
    client = _chinese_client(_viewer(personal_data=True))  # names unmasked
    # By customer number, the list's first column (this viewer may run no action, so the
    # list has no checkbox column before it).
    by_number = {"o": "0"}

    csv_rows = _csv_rows(client.get(CSV_URL, by_number))
    book = load_workbook(io.BytesIO(b"".join(client.get(XLSX_URL, by_number).streaming_content)))

    names = ["'=1+2", "'+86 号码", "'-SUM(A1)", "'@cmd", "'\tTab", "正常"]
    assert [row[1] for row in csv_rows[1:]] == names
    assert {row[6] for row in csv_rows[1:]} == {'\'=HYPERLINK("http://evil")'}
    sheet = book.active
    assert [sheet.cell(row=i, column=2).value for i in range(2, 8)] == names
    assert all(sheet.cell(row=i, column=2).data_type == "s" for i in range(2, 8))


def test_cell_text_leaves_ordinary_text_alone() -> None:
    assert cell_text("王小美 - 杭州") == "王小美 - 杭州"
    assert cell_text("-") == "'-"
    assert cell_text("") == ""


@pytest.mark.django_db
def test_an_export_is_recorded_with_who_what_and_how_many(sleeping_customer) -> None:
    CustomerMetricsFactory(lifecycle_state="sleeping")
    CustomerMetricsFactory(lifecycle_state="active")
    user = _viewer()
    client = _chinese_client(user)

    response = client.get(XLSX_URL, {"metrics__lifecycle_state__exact": "sleeping", "q": "王"})
    assert response.status_code == 200

    record = CustomerExport.objects.get()
    assert record.actor == f"user:{user.pk}"
    assert record.file_format == "xlsx"
    assert record.row_count == 1
    assert record.is_unmasked is False
    assert record.filters == "生命周期状态：沉睡；搜索：王"
    assert record.query_string == "metrics__lifecycle_state__exact=sleeping&q=%E7%8E%8B"
    # Shown in the admin, read-only, and never deleted from it.
    admin_page = _chinese_client(UserFactory(is_superuser=True)).get(
        reverse("admin:console_customerexport_changelist")
    )
    assert "生命周期状态：沉睡；搜索：王" in admin_page.content.decode()
    export_admin = console.admin.CustomerExportAdmin(CustomerExport, console.admin.admin.site)
    request = admin_page.wsgi_request
    assert not export_admin.has_add_permission(request)
    assert not export_admin.has_change_permission(request, record)
    assert not export_admin.has_delete_permission(request, record)


@pytest.mark.django_db
def test_the_record_counts_the_rows_exported_where_the_list_shows_an_estimate(
    monkeypatch,
) -> None:
    # Past EXACT_COUNT_LIMIT the list shows the planner's estimate (here of a table never
    # analysed); the export and its record count the rows themselves.
    monkeypatch.setattr(core.admin, "EXACT_COUNT_LIMIT", 2)
    CustomerMetricsFactory.create_batch(7, lifecycle_state="new")

    exported = _chinese_client(_viewer()).get(CSV_URL)

    assert len(_csv_rows(exported)) == 1 + 7  # the header, then every customer
    assert CustomerExport.objects.get().row_count == 7


@pytest.mark.django_db
def test_an_export_above_the_limit_is_refused_with_how_to_narrow_it(monkeypatch) -> None:
    monkeypatch.setattr(console.admin, "EXPORT_ROW_LIMIT", 2)
    CustomerMetricsFactory.create_batch(3, lifecycle_state="new")
    CustomerMetricsFactory(lifecycle_state="active")
    client = _chinese_client(_viewer())

    refused = client.get(CSV_URL, {"metrics__lifecycle_state__exact": "new"})

    assert refused.status_code == 302
    assert refused["Location"] == f"{LIST_URL}?metrics__lifecycle_state__exact=new"
    shown = client.get(refused["Location"])
    assert [str(m) for m in shown.context["messages"]] == [
        "当前列表共有 3 位客户，一次最多导出 2 位。请先用右侧的筛选条件（生命周期状态、"
        "RFM 层级、标签、来源渠道等）或搜索缩小范围，再导出。"
    ]
    assert not CustomerExport.objects.exists()
    allowed = client.get(CSV_URL, {"metrics__lifecycle_state__exact": "active"})
    assert len(_csv_rows(allowed)) == 2


@pytest.mark.django_db
def test_a_user_without_the_view_permission_is_refused() -> None:
    CustomerFactory()
    client = _chinese_client(UserFactory())  # staff, no permission at all

    assert client.get(CSV_URL).status_code == 403
    assert client.get(XLSX_URL).status_code == 403
    assert not CustomerExport.objects.exists()


@pytest.mark.django_db
def test_a_viewer_without_the_export_permission_is_refused_and_not_offered_it() -> None:
    CustomerFactory()
    client = _chinese_client(_viewer(may_export=False))

    assert client.get(CSV_URL).status_code == 403
    assert client.get(XLSX_URL).status_code == 403
    assert not CustomerExport.objects.exists()
    assert "customer-export" not in client.get("/admin/crm/customer/").content.decode()


@pytest.mark.django_db
def test_unknown_formats_and_filters_are_answered_without_an_error() -> None:
    client = _chinese_client(_viewer())

    assert client.get(CSV_URL.replace("csv", "pdf")).status_code == 404
    wrong = client.get(CSV_URL, {"no_such_field": "1"})
    assert wrong.status_code == 302
    assert wrong["Location"] == f"{LIST_URL}?e=1"
    assert not CustomerExport.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", [CSV_URL, XLSX_URL])
def test_the_query_count_does_not_grow_with_the_rows(url) -> None:
    def export_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
            b"".join(response.streaming_content)
        return len(queries)

    client = _chinese_client(_viewer())
    tag = TagFactory()
    for customer in CustomerFactory.create_batch(2):
        CustomerMetricsFactory(customer=customer)
        IdentityFactory(customer=customer, provider="phone")
        CustomerTagFactory(customer=customer, tag=tag)
    few = export_queries()
    for customer in CustomerFactory.create_batch(20, owner=StaffMemberFactory()):
        CustomerMetricsFactory(customer=customer)
        IdentityFactory(customer=customer, provider="phone")
        CustomerTagFactory(customer=customer, tag=tag)

    assert export_queries() == few


@pytest.mark.django_db
def test_the_list_offers_the_export_of_what_it_shows() -> None:
    client = _chinese_client(_viewer())

    page = client.get(LIST_URL, {"metrics__lifecycle_state__exact": "sleeping"}).content.decode()

    assert f'href="{CSV_URL}?metrics__lifecycle_state__exact=sleeping"' in page
    assert f'href="{XLSX_URL}?metrics__lifecycle_state__exact=sleeping"' in page
    assert "导出 Excel" in page
    assert "最多 10万 位" in page


@pytest.mark.django_db
def test_a_tag_filter_decides_the_rows_and_is_recorded_by_its_name() -> None:
    tag = TagFactory(name="高意向")
    tagged = CustomerFactory(display_name="林晓雨")
    CustomerTagFactory(customer=tagged, tag=tag)
    CustomerFactory(display_name="陈一鸣")
    client = _chinese_client(_viewer())

    rows = _csv_rows(client.get(CSV_URL, {"tag": str(tag.pk)}))

    assert [row[1] for row in rows[1:]] == ["林**"]
    assert CustomerExport.objects.get().filters == f"标签：{tag}"
