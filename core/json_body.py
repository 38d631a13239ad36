"""JSON request bodies: the limits every JSON endpoint applies, whoever decodes the body (the
API's parser or the bulk endpoints' typed decoders).

A body must be UTF-8 (RFC 8259), valid JSON, and nest arrays and objects at most
`MAX_JSON_DEPTH` deep: no payload of this API needs more than a few levels (a segment rule
nests at most 20 groups), while a deeper one costs the decoder its stack (`[` × 5000 raised
RecursionError). Each failure is a 400 with its own code. (A lone surrogate escape,
`"\\ud800"`, is valid JSON: the field holding it is refused, or the exception handler's
safety net answers 400 `invalid_encoding` when PostgreSQL's encoder meets it.)

The API's parser decodes with the standard library, as DRF's did (any integer, NaN refused);
bulk bodies are decoded by msgspec straight into their row types (`crm.api.bulk`).
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from django.utils.translation import gettext as _

from core.errors import ValidationFailed

MAX_JSON_DEPTH = 64

ERROR_MALFORMED_JSON = "malformed_json"
ERROR_INVALID_ENCODING = "invalid_encoding"
ERROR_JSON_TOO_DEEP = "json_too_deep"


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether decoded JSON nests arrays and objects more than `limit` deep (`[]` and `{}` are
    one deep, a scalar none). Walks level by level, without recursion, and stops past `limit`."""
    level = [value]
    depth = 0
    while level:
        containers = [item for item in level if isinstance(item, list | dict)]
        if not containers:
            return False
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for container in containers
            for child in (container.values() if isinstance(container, dict) else container)
        ]
    return False


def too_deep_error() -> ValidationFailed:
    return ValidationFailed(
        ERROR_JSON_TOO_DEEP,
        _("The body nests arrays and objects more than %(limit)d deep.")
        % {"limit": MAX_JSON_DEPTH},
    )


@contextmanager
def json_decoding() -> Iterator[None]:
    """Around any msgspec decoding of a body: invalid UTF-8 and nesting too deep for the
    decoder's stack become 400s with their codes (msgspec raises UnicodeDecodeError and
    RecursionError for them, not DecodeError)."""
    try:
        yield
    except UnicodeDecodeError as error:
        raise ValidationFailed(
            ERROR_INVALID_ENCODING,
            _("The body is not valid UTF-8 (byte %(position)d).") % {"position": error.start},
        ) from None
    except RecursionError:
        raise too_deep_error() from None


def malformed_error(error: Exception) -> ValidationFailed:
    return ValidationFailed(
        ERROR_MALFORMED_JSON, _("The body is not valid JSON: %(error)s") % {"error": error}
    )


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


def json_decode(body: bytes) -> Any:
    """Decode a JSON body into Python values, within the limits above."""
    with json_decoding():
        text = body.decode("utf-8")
        try:
            value = json.loads(text, parse_constant=_refuse_constant)
        except ValueError as error:
            raise malformed_error(error) from None
    if json_depth_exceeds(value):
        raise too_deep_error()
    return value
