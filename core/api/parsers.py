"""The API's only request parser: JSON, decoded within the limits of `core.json_body` and the
body size limit (`API_MAX_BODY_BYTES`), each failure a 400 or 413 with a code.

DRF's own JSONParser reads the request stream without any size limit and lets RecursionError
through (a 500). Forms are not parsed: the integration API takes JSON only (415 otherwise)."""

from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer

from core.errors import TooLarge
from core.json_body import json_decode

ERROR_BODY_TOO_LARGE = "body_too_large"


def body_too_large_error() -> TooLarge:
    return TooLarge(
        ERROR_BODY_TOO_LARGE,
        _("The body is larger than %(limit)d bytes.")
        % {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
    )


class JsonParser(BaseParser):
    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(body) > limit:
            raise body_too_large_error()
        return json_decode(body)
