"""The API docs (`/api/docs/`) work offline: Swagger UI comes from this server's static files
(drf-spectacular-sidecar, collected like the admin's), never from a CDN."""

import os
import re

import pytest
from django.core.management import call_command
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db

_ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


def test_the_docs_page_loads_only_local_files(api_client_with_scopes, settings, tmp_path) -> None:
    settings.STATIC_ROOT = tmp_path  # collected as `make run` and a deployment do
    call_command("collectstatic", interactive=False, verbosity=0)

    page = api_client_with_scopes("customers:read").get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assets = _ASSET.findall(html)
    assert len(assets) == 4  # the favicon, the stylesheet and the two scripts
    assert "://" not in html  # no other host, in an attribute or in the inline script
    static = Client()  # a new client: its WhiteNoise finds the files just collected
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/swagger-ui-dist/")
        response = static.get(asset)
        assert (asset, response.status_code) == (asset, 200)
        assert b"".join(response.streaming_content)


def test_the_schema_generates_without_a_warning() -> None:
    """Each view is readable by the generator and no two components share a name."""
    call_command("spectacular", "--fail-on-warn", "--file", os.devnull)


def test_every_operation_documents_its_error_responses() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert schema["components"]["schemas"]["Error"]["required"] == ["code", "detail"]
    error = {"$ref": "#/components/schemas/Error"}
    operations = [
        (method.upper(), path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]
    assert len(operations) >= 60
    for method, path, operation in operations:
        expected = {"400", "401", "403", "404", "429"}
        if method in {"POST", "PUT", "PATCH", "DELETE"}:
            expected.add("409")
        if "requestBody" in operation:
            expected |= {"413", "415"}
        errors = {
            status: response["content"]["application/json"]["schema"]
            for status, response in operation["responses"].items()
            if status >= "400"
        }
        assert (method, path, errors) == (method, path, dict.fromkeys(sorted(expected), error))


def test_response_schemas_say_what_the_views_answer() -> None:
    """Found by schemathesis: an owner-less group or customer answers `owner: null`, a change
    of a static segment's members answers counts (not a customer), a refresh `queued`."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    for component in ("GroupOut", "CustomerOut"):
        assert components[component]["properties"]["owner"]["nullable"] is True
    members = schema["paths"]["/api/v1/segments/{segment_id}/members"]["post"]["responses"]
    assert members["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MembersChangeOut"
    }
    assert sorted(components["MembersChangeOut"]["properties"]) == [
        "entered",
        "exited",
        "size",
        "unknown_identities",
    ]
    refresh = schema["paths"]["/api/v1/segments/{segment_id}/refresh"]["post"]["responses"]
    assert components["RefreshQueued"]["properties"] == {"queued": {"type": "boolean"}}
    assert refresh["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RefreshQueued"
    }
