"""Bulk ingestion endpoints share one shape: `{"<rows>": [...]}` in, each row validated on its
own, the good rows written by one service call, the bad ones answered as `{"index", "errors"}`.

The body is decoded straight into the row structs of `crm.inputs` by msgspec. A valid batch is
decoded in one pass; only when that pass fails is the batch decoded row by row, to name every
bad row (with its first error, as `{"path": ["message"]}`, nested paths joined with dots, e.g.
`items.0.quantity`)."""

import re
from collections.abc import Callable, Hashable, Sequence
from functools import cache
from typing import Any, TypeVar

import msgspec
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.request import Request

from crm.api.parsers import body_too_large_error
from crm.errors import ValidationFailed
from crm.json_body import (
    MAX_JSON_DEPTH,
    json_decoding,
    json_depth_exceeds,
    malformed_error,
    too_deep_error,
)

ERROR_TOO_MANY_ROWS = "too_many_rows"
ERROR_NOT_A_LIST = "rows_not_a_list"

RowT = TypeVar("RowT")

_AT_PATH = re.compile(r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_ROW_CHECK = re.compile(r"^(?P<field>\w+): (?P<message>.*)$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>\w+)`$")


@cache
def _decoders(row_type: type, field: str) -> tuple[msgspec.json.Decoder[Any], Any]:
    batch_type = msgspec.defstruct(f"{row_type.__name__}Batch", [(field, list[row_type])])  # type: ignore[valid-type]
    return msgspec.json.Decoder(batch_type), msgspec.json.Decoder(row_type)


def _errors_of(error: msgspec.ValidationError) -> dict[str, list[str]]:
    text = str(error)
    match = _AT_PATH.match(text)
    message, path = (match["message"], match["path"]) if match else (text, "")
    parts = [p for p in re.split(r"[.\[\]]+", path) if p]
    if check := _ROW_CHECK.match(message):
        parts.append(check["field"])
        message = check["message"]
    elif missing := _MISSING.match(message):
        parts.append(missing["field"])
        message = _("This field is required.")
    return {".".join(parts) or "non_field_errors": [message]}


# Fields of free-form JSON (interaction properties): the only part of a row whose depth its
# type does not bound. The envelope, its list and the row hold them 3 deep.
_FREE_FORM_FIELDS = ("properties",)
_BLOB_DEPTH = MAX_JSON_DEPTH - 3


def _blobs_too_deep(rows: Sequence[Any]) -> bool:
    """Whether a decoded row's free-form JSON takes the body past MAX_JSON_DEPTH (msgspec
    decodes some 900 levels into `Any` before its stack runs out)."""
    return any(
        json_depth_exceeds(getattr(row, name), _BLOB_DEPTH)
        for row in rows
        for name in _FREE_FORM_FIELDS
        if hasattr(row, name)
    )


def _check_count(count: int, field: str) -> None:
    if count == 0:
        message = _("Expected a non-empty list.")
        raise ValidationFailed(ERROR_NOT_A_LIST, message, detail={field: [message]})
    limit = settings.API_BULK_MAX_ROWS
    if count > limit:
        message = _("At most %(limit)d rows per request.") % {"limit": limit}
        raise ValidationFailed(ERROR_TOO_MANY_ROWS, message, detail={field: [message]})


def rows_decode(
    request: Request, row_type: type[RowT], *, field: str
) -> tuple[list[tuple[int, RowT]], list[dict[str, Any]]]:
    """Decode the `field` list of a bulk body into `row_type` rows.
    Returns ([(index, row)], [{"index", "errors"}]); a malformed envelope is a 400."""
    batch_decoder, row_decoder = _decoders(row_type, field)  # type: ignore[arg-type]
    try:
        body = request.body
    except RequestDataTooBig as error:
        raise body_too_large_error() from error
    with json_decoding():  # invalid UTF-8, or nesting too deep for msgspec: 400s
        try:
            rows: list[RowT] = getattr(batch_decoder.decode(body), field)
        except msgspec.DecodeError:
            pass  # some row is bad, or the envelope is: look closer below
        else:
            _check_count(len(rows), field)
            if _blobs_too_deep(rows):
                raise too_deep_error()
            return list(enumerate(rows)), []

        body.decode("utf-8")  # invalid UTF-8 is invalid_encoding wherever it is
        try:
            envelope = msgspec.json.decode(body)
        except msgspec.DecodeError as error:
            raise malformed_error(error) from error
    if json_depth_exceeds(envelope):
        raise too_deep_error()
    raw_rows = envelope.get(field) if isinstance(envelope, dict) else None
    if not isinstance(raw_rows, list):
        message = _("Expected a non-empty list.")
        raise ValidationFailed(ERROR_NOT_A_LIST, message, detail={field: [message]})
    _check_count(len(raw_rows), field)
    valid: list[tuple[int, RowT]] = []
    rejected: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_rows):
        try:
            valid.append((index, row_decoder.decode(msgspec.json.encode(raw))))
        except msgspec.ValidationError as error:
            rejected.append({"index": index, "errors": _errors_of(error)})
    return valid, rejected


def rows_last_per_key(
    rows: Sequence[tuple[int, RowT]],
    key_of: Callable[[RowT], Hashable],
    rejected: list[dict[str, Any]],
    *,
    field: str,
) -> list[tuple[int, RowT]]:
    """Rows naming the same natural key twice in one batch: the last one stands (it is the
    later version); the earlier ones are rejected, naming the row that superseded them."""
    last: dict[Hashable, int] = {}
    for position, (_index, row) in enumerate(rows):
        last[key_of(row)] = position
    if len(last) == len(rows):
        return list(rows)
    kept: list[tuple[int, RowT]] = []
    for position, (index, row) in enumerate(rows):
        winner = last[key_of(row)]
        if winner == position:
            kept.append((index, row))
        else:
            message = _("Superseded by row %(index)d of the same batch.") % {
                "index": rows[winner][0]
            }
            rejected.append({"index": index, "errors": {field: [message]}})
    rejected.sort(key=lambda r: r["index"])
    return kept


class RejectedRowSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField())
    )


class BulkOutSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = RejectedRowSerializer(many=True)
