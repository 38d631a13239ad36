"""Bulk ingestion endpoints share one shape: `{"<rows>": [...]}` in, each row validated on its
own, the good rows written by one service call, the bad ones answered as `{"index", "errors"}`.

The body is decoded straight into the row structs of `crm.inputs` by msgspec. A valid batch is
decoded in one pass; only when that pass fails is the batch decoded row by row, to name every
bad row (with its first error, as `{"path": ["message"]}`, nested paths joined with dots, e.g.
`items.0.quantity`). msgspec refuses a whole body holding a lone surrogate (`"\\ud800"`, valid
JSON that no UTF-8 encoder accepts); such a body is decoded again by the standard library, so
that only the rows holding one are rejected."""

import json
import re
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

import msgspec
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from rest_framework import serializers
from rest_framework.request import Request

from core.api.parsers import body_too_large_error
from core.errors import ValidationFailed
from core.json_body import (
    MAX_JSON_DEPTH,
    json_decoding,
    json_depth_exceeds,
    malformed_error,
    too_deep_error,
)
from core.validators import json_error

ERROR_TOO_MANY_ROWS = "too_many_rows"
ERROR_NOT_A_LIST = "rows_not_a_list"

RowT = TypeVar("RowT")

_AT_PATH = re.compile(r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_ROW_CHECK = re.compile(r"^(?P<field>[\w.]+): (?P<message>.*)$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>\w+)`$")
# Fields holding free-form JSON objects (interaction properties).
_JSON_BLOB_FIELDS = frozenset({"properties"})
# The escape of a UTF-16 surrogate (\ud800-\udfff), lone or in a pair.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


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
            envelope = _decode_leniently(body, error)
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
        except UnicodeEncodeError:  # a lone surrogate somewhere in the row
            rejected.append({"index": index, "errors": _unstorable_errors(raw)})
    return valid, rejected


def _decode_leniently(body: bytes, error: msgspec.DecodeError) -> Any:
    """A body holding surrogate escapes decoded by the standard library, which accepts lone
    ones (the rows holding them are rejected one by one); any other body msgspec refused, or
    one that is not JSON even so, is a 400."""
    malformed = malformed_error(error)
    if _SURROGATE_ESCAPE.search(body) is None:
        raise malformed from error
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise malformed from error


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python's extension of JSON


def _unstorable_errors(raw: Any) -> dict[str, list[str]]:
    found = json_error(raw, max_bytes=None)
    path, message = found or ("", _("Must not contain a NUL character or a lone surrogate."))
    field, _dot, inner = path.partition(".")
    if field in _JSON_BLOB_FIELDS and inner:
        # As the row's own check reports it (crm.inputs.InteractionIn): keys of a free-form
        # blob may hold any character, so the path inside it goes into the message.
        return {field: [f"{inner}: {message}"]}
    return {path or "non_field_errors": [message]}


def rows_last_per_key(
    rows: Sequence[tuple[int, RowT]],
    key_of: Callable[[RowT], Hashable],
    rejected: list[dict[str, Any]],
    *,
    field: str,
    version_of: Callable[[RowT], datetime | None] | None = None,
) -> list[tuple[int, RowT]]:
    """Rows naming the same natural key twice in one batch: the last one stands (it is the
    later version); the earlier ones are rejected, naming the row that superseded them.
    With `version_of` (the source's update time of a row), the newest version stands instead,
    a row without one counting as older than any with one, and the last of equals."""
    last: dict[Hashable, int] = {}
    for position, (_index, row) in enumerate(rows):
        key = key_of(row)
        if version_of is not None and key in last:
            version, standing = version_of(row), version_of(rows[last[key]][1])
            if version is None and standing is not None:
                continue
            if version is not None and standing is not None and version < standing:
                continue
        last[key] = position
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
    code = serializers.CharField(
        required=False, help_text=_lazy("Why the row was refused, when not for its values.")
    )
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField())
    )


class BulkOutSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    stale = serializers.IntegerField(
        help_text=_lazy(
            "Older than the version stored (by source_updated_at): written nowhere. Not counted "
            "in unchanged."
        )
    )
    rejected = RejectedRowSerializer(many=True)
