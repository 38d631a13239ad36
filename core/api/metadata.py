"""`OPTIONS` on any endpoint: its name, description, and the media types it renders and
parses (the allowed methods are in the `Allow` header).

DRF's SimpleMetadata also describes the `PUT`/`POST` input as the view's `serializer_class`,
which here is the output serializer (inputs have their own), and fetches the object for a
`PUT` through `get_object`, which views like `groups/{id}/members` (a list under a parent,
not an object) cannot answer: a 500. The input of every operation is in the OpenAPI schema
(`/api/schema/`) instead."""

from typing import Any

from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request


class ApiMetadata(SimpleMetadata):
    def determine_metadata(self, request: Request, view: Any) -> dict[str, Any]:
        return {
            "name": view.get_view_name(),
            "description": view.get_view_description(),
            "renders": [renderer.media_type for renderer in view.renderer_classes],
            "parses": [parser.media_type for parser in view.parser_classes],
        }
