"""Writes of the exports: the append-only record of who exported which customer list."""

import logging

from console.models import CustomerExport, ExportFormat

logger = logging.getLogger(__name__)


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
