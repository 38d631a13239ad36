"""Writes of the exports: the append-only record of who exported which customer list, and its
event in the audit trail (the filter, the row count and the format)."""

import logging

from django.contrib.admin.views.main import SEARCH_VAR
from django.http import QueryDict

from console.models import CustomerExport, ExportFormat
from core.models import AuditAction
from core.services.audit import audit_record

logger = logging.getLogger(__name__)


def _audited_filter(query_string: str) -> dict[str, str]:
    """The list's filters as the admin's parameters (names of filters, codes and ids); the
    search term is left out: it may be a name or a phone number."""
    params = QueryDict(query_string)
    return {name: ",".join(params.getlist(name)) for name in sorted(params) if name != SEARCH_VAR}


def customer_export_record(
    *,
    actor: str,
    filters: str,
    query_string: str,
    row_count: int,
    file_format: ExportFormat,
    is_unmasked: bool,
) -> CustomerExport:
    """Record an export of `row_count` customers, before its rows are sent: an export that
    breaks off midway was still asked for, and may have been partly read."""
    record = CustomerExport.objects.create(
        actor=actor,
        filters=filters,
        query_string=query_string,
        row_count=row_count,
        file_format=file_format,
        is_unmasked=is_unmasked,
    )
    audit_record(
        actor=actor,
        action=AuditAction.EXPORT,
        object_type="customer_export",
        object_id=record.pk,
        detail={
            "filter": _audited_filter(query_string),
            "is_searched": SEARCH_VAR in QueryDict(query_string),
            "row_count": row_count,
            "format": str(file_format),
            "is_unmasked": is_unmasked,
        },
    )
    logger.info(
        "customer_export.recorded",
        extra={
            "export_id": record.pk,
            "actor": actor,
            "row_count": row_count,
            "file_format": str(file_format),
            "is_unmasked": is_unmasked,
        },
    )
    return record
