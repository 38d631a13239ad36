"""The export of a customer list (导出) as operators read it: Chinese headers, choices by
their labels, times in business time, personal data masked unless the viewer may see it
(the phone number and the birthday, 敏感个人信息, and the display name: a list exported
without that permission names nobody),
text made safe from spreadsheet formulas. Written as CSV (streamed, with a byte-order mark
so that Excel reads it as UTF-8) or as .xlsx (openpyxl's write-only mode, row by row into
a temporary file, so memory stays flat whatever the row count).

One query for all rows, whatever their number: every column is a column of the list's
queryset or a correlated subquery in it, read through a server-side cursor in chunks."""

import csv
import io
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from django.conf import settings
from django.contrib.postgres.aggregates import StringAgg
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext
from openpyxl import Workbook

from console.formatting import zone_label
from crm.models import Customer, CustomerTag, Gender, Identity, IdentityProvider, SourceChannel
from crm.personal_data import decrypt, mask_birthday, mask_display_name
from segments.models import CustomerMetrics, LifecycleState, RfmTier

# Above this many rows an export is refused: the operator narrows the list first. A list
# this long is a data transfer, not a follow-up list for staff.
EXPORT_ROW_LIMIT = 100_000
# Rows per fetch from the server-side cursor, and per chunk of the CSV stream.
CHUNK_SIZE = 2_000

# A cell starting with one of these is read as a formula by spreadsheet programs (OWASP's
# "CSV injection"): such text gets a leading apostrophe, which shows it as plain text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Control characters an .xlsx file cannot hold (openpyxl refuses them); dropped from text.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
TAG_SEPARATOR = "、"


def cell_text(text: str) -> str:
    """Text as a spreadsheet cell may safely hold it: never a formula, no control character."""
    text = _CONTROL_CHARACTERS.sub("", text)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[dict[str, Any]], Any]  # the cell of one row (a dict of values())


def _business_time(value: datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _labels(choices: Iterable[tuple[Any, Any]]) -> dict[Any, str]:
    return {value: str(label) for value, label in choices}


def _field_header(model: type[Any], name: str) -> str:
    return capfirst(str(model._meta.get_field(name).verbose_name))


def _timed_header(header: str) -> str:
    return gettext("%(name)s (%(zone)s)") % {"name": header, "zone": zone_label()}


def customer_export_columns(*, may_see_personal_data: bool) -> list[Column]:
    """The export's columns, headed in the active language."""
    genders = _labels(Gender.choices)
    channels = _labels(SourceChannel.choices)
    states = _labels(LifecycleState.choices)
    tiers = _labels(RfmTier.choices)
    phone_key = "phone_encrypted" if may_see_personal_data else "phone_masked"
    home_prefix = f"+{settings.DEFAULT_PHONE_REGION}"

    def phone(row: dict[str, Any]) -> str:
        value = row[phone_key]
        if not value or not may_see_personal_data:
            return value or ""
        # Numbers of the brand's own region as its staff dial them (13812341234), as the
        # masks show them; a spreadsheet would take "+86…" for a sum to compute.
        return decrypt(value).removeprefix(home_prefix)

    def display_name(row: dict[str, Any]) -> str:
        name = row["display_name"]
        return name if may_see_personal_data else mask_display_name(name)

    def birthday(row: dict[str, Any]) -> str:
        value = row["birthday"]
        if not may_see_personal_data:
            return mask_birthday(value)
        return value.isoformat() if value else ""

    return [
        Column(gettext("Customer number"), lambda row: row["id"]),
        Column(_field_header(Customer, "display_name"), display_name),
        Column(capfirst(gettext("phone")), phone),
        Column(_field_header(Customer, "gender"), lambda row: genders.get(row["gender"], "")),
        Column(_field_header(Customer, "birthday"), birthday),
        Column(_field_header(Customer, "province"), lambda row: row["province"]),
        Column(_field_header(Customer, "city"), lambda row: row["city"]),
        Column(
            _field_header(Customer, "source_channel"),
            lambda row: channels.get(row["source_channel"], ""),
        ),
        Column(_field_header(Customer, "owner"), lambda row: row["owner__name"] or ""),
        Column(_field_header(Customer, "member_level"), lambda row: row["member_level"]),
        Column(_field_header(Customer, "member_points"), lambda row: row["member_points"]),
        Column(
            _field_header(CustomerMetrics, "lifecycle_state"),
            lambda row: states.get(row["metrics__lifecycle_state"], ""),
        ),
        Column(
            _field_header(CustomerMetrics, "rfm_tier"),
            lambda row: tiers.get(row["metrics__rfm_tier"], ""),
        ),
        Column(
            _field_header(CustomerMetrics, "lifetime_orders"),
            lambda row: row["metrics__lifetime_orders"],
        ),
        Column(
            _field_header(CustomerMetrics, "lifetime_net_spend"),
            lambda row: row["metrics__lifetime_net_spend"],
        ),
        Column(
            _timed_header(gettext("Last paid at")),
            lambda row: _business_time(row["metrics__last_paid_at"]),
        ),
        Column(
            _timed_header(_field_header(Customer, "first_seen_at")),
            lambda row: _business_time(row["first_seen_at"]),
        ),
        Column(capfirst(gettext("tags")), lambda row: row["tags"] or ""),
    ]


def customer_export_values(
    customers: QuerySet[Customer], *, may_see_personal_data: bool
) -> Iterator[dict[str, Any]]:
    """The values of the export's columns for every customer of `customers`, in its order:
    one query, read in chunks. A customer's first phone number (as the list shows it) comes
    from index identity's customer key, the tags from index customer_tag's; an encrypted
    number is read only for a viewer who may see it."""
    phones = Identity.objects.filter(
        customer_id=OuterRef("pk"), provider=IdentityProvider.PHONE
    ).order_by("id")
    phone_column = "value_encrypted" if may_see_personal_data else "value_masked"
    phone_key = "phone_encrypted" if may_see_personal_data else "phone_masked"
    tags = (
        CustomerTag.objects.filter(customer_id=OuterRef("pk"))
        .values("customer_id")
        .annotate(names=StringAgg("tag__name", delimiter=TAG_SEPARATOR, order_by="tag__name"))
        .values("names")
    )
    rows = (
        customers.select_related(None)
        .prefetch_related(None)
        .annotate(**{phone_key: Subquery(phones.values(phone_column)[:1])})
        .annotate(tags=Subquery(tags))
        .values(
            "id",
            "display_name",
            phone_key,
            "gender",
            "birthday",
            "province",
            "city",
            "source_channel",
            "owner__name",
            "member_level",
            "member_points",
            "metrics__lifecycle_state",
            "metrics__rfm_tier",
            "metrics__lifetime_orders",
            "metrics__lifetime_net_spend",
            "metrics__last_paid_at",
            "first_seen_at",
            "tags",
        )
    )
    return rows.iterator(chunk_size=CHUNK_SIZE)


def _cells(columns: list[Column], row: dict[str, Any]) -> list[Any]:
    return [
        cell_text(value) if isinstance(value, str) else value
        for value in (column.value(row) for column in columns)
    ]


def customer_export_csv(columns: list[Column], rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The CSV text, chunk by chunk: a byte-order mark and the headers, then CHUNK_SIZE rows
    at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow([cell_text(column.header) for column in columns])
    for count, row in enumerate(rows, start=1):
        writer.writerow(_cells(columns, row))
        if count % CHUNK_SIZE == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def customer_export_xlsx(columns: list[Column], rows: Iterable[dict[str, Any]]) -> IO[bytes]:
    """The .xlsx file, in a temporary file (removed once closed) read from its start."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=capfirst(str(Customer._meta.verbose_name_plural)))
    sheet.append([column.header for column in columns])
    for row in rows:
        sheet.append(_cells(columns, row))
    # Closed (and so removed) by the response that sends it.
    file = tempfile.TemporaryFile()  # noqa: SIM115
    workbook.save(file)
    file.seek(0)
    return file
