"""The API's error mapping: nothing a caller sends, and no race it loses, answers 500."""

import re

import pytest
from django.db import DataError, IntegrityError
from django.urls import get_resolver
from django.utils import translation
from drf_spectacular.generators import SchemaGenerator
from rest_framework.exceptions import Throttled
from rest_framework.test import APIClient

from core.api.errors import exception_handler
from core.errors import Conflict
from crm.models import Customer, Interaction, TagGroup
from tests.crm.support import bulk_answer
from tests.factories import GroupFactory


def test_domain_errors_keep_code_and_detail() -> None:
    response = exception_handler(Conflict("x_taken", "Taken.", detail={"x": ["Taken."]}), {})
    assert response is not None
    assert (response.status_code, response.data) == (
        409,
        {"code": "x_taken", "detail": "Taken.", "errors": {"x": ["Taken."]}},
    )


def test_a_lost_race_is_a_409_to_retry() -> None:
    with translation.override("en"):
        response = exception_handler(IntegrityError("fk violation"), {"view": object()})
    assert response is not None
    assert response.status_code == 409
    assert response.data["code"] == "conflict_retry"


def test_a_value_the_database_cannot_store_is_a_400() -> None:
    response = exception_handler(DataError("value out of range\nDETAIL: ..."), {})
    assert response is not None
    assert (response.status_code, response.data["code"]) == (400, "invalid_value")
    assert response.data["detail"] == "value out of range"


# --- Over HTTP: every error body has the contract's shape, whoever raised it. ---

API_ROOT = "/api/v1/"
# A value for each path parameter of the API (a customer, group, segment... that need not
# exist: each check below answers before the object is looked up, or is about the lookup).
PATH_VALUES = {"provider": "phone", "value": "13812341234", "name": "churn_risk"}
DEEP = b"[" * 5000 + b"]" * 5000


def _api_urls() -> list[str]:
    """Every URL of the API v1, path parameters filled in."""
    urls = []
    for pattern in get_resolver().url_patterns:
        if "/" + str(pattern.pattern) != API_ROOT:
            continue
        for route in pattern.url_patterns:
            path = re.sub(
                r"<(?:(\w+):)?(\w+)>",
                lambda m: "1" if m[1] == "int" else PATH_VALUES[m[2]],
                str(route.pattern),
            )
            urls.append(API_ROOT + path)
    return sorted(set(urls))


def _body_operations() -> list[tuple[str, str]]:
    """(method, url) of every operation the served schema says takes a JSON body."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, methods in schema["paths"].items():
        url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m[1], "1"), path)
        for method, operation in methods.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                operations.append((method, url))
    return sorted(operations)


BULK_URLS = ["/api/v1/customers/bulk", "/api/v1/orders/bulk", "/api/v1/interactions/bulk"]


def _nested(depth: int) -> bytes:
    """A tag group whose ignored extra field makes the body `depth` deep."""
    inner = b"[" * (depth - 1) + b"]" * (depth - 1)
    return b'{"name": "deep", "extra": ' + inner + b"}"


@pytest.mark.django_db
def test_every_json_endpoint_refuses_deep_nesting_with_a_code(api_client_with_scopes) -> None:
    client = api_client_with_scopes("*")
    operations = _body_operations()
    assert len(operations) >= 27  # the schema's operations, not an empty loop
    for method, url in operations:
        response = getattr(client, method)(url, DEEP, content_type="application/json")
        assert (method, url, response.status_code, response.json()) == (
            method,
            url,
            400,
            {
                "code": "json_too_deep",
                "detail": "The body nests arrays and objects more than 64 deep.",
            },
        )
    assert not TagGroup.objects.exists()


@pytest.mark.django_db
def test_the_depth_limit_is_64(api_client_with_scopes) -> None:
    client = api_client_with_scopes("tags:write")
    refused = client.post("/api/v1/tag-groups", _nested(65), content_type="application/json")
    assert (refused.status_code, refused.json()["code"]) == (400, "json_too_deep")
    assert not TagGroup.objects.exists()
    accepted = client.post("/api/v1/tag-groups", _nested(64), content_type="application/json")
    assert accepted.status_code == 201
    assert list(TagGroup.objects.values_list("name", flat=True)) == ["deep"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", BULK_URLS)
def test_a_bulk_body_too_deep_is_a_400(api_client_with_scopes, url) -> None:
    field = url.split("/")[3]
    body = b'{"' + field.encode() + b'": [' + DEEP + b"]}"
    response = api_client_with_scopes("*").post(url, body, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "json_too_deep")
    assert not Customer.objects.exists()


@pytest.mark.django_db
def test_interaction_properties_count_toward_the_depth_limit(api_client_with_scopes) -> None:
    """The only free-form part of a bulk body: one row too deep refuses the body, even when
    every row would decode into its type (msgspec would decode ~900 levels)."""

    def row(key: str, depth: int) -> dict:
        properties: dict = {}
        for _ in range(depth - 1):
            properties = {"p": properties}
        return {
            "customer": {"identities": [{"provider": "phone", "value": "13912345678"}]},
            "kind": "link_click",
            "occurred_at": "2026-06-18T20:15:00+08:00",
            "source": "shop",
            "idempotency_key": key,
            "properties": properties,
        }

    client = api_client_with_scopes("interactions:write")
    refused = client.post(
        "/api/v1/interactions/bulk", {"interactions": [row("a", 61), row("b", 62)]}, format="json"
    )
    assert (refused.status_code, refused.json()["code"]) == (400, "json_too_deep")
    assert not Interaction.objects.exists()
    accepted = client.post(
        "/api/v1/interactions/bulk", {"interactions": [row("a", 61)]}, format="json"
    )
    assert accepted.json() == bulk_answer(created=1)


@pytest.mark.django_db
@pytest.mark.parametrize("url", BULK_URLS)
@pytest.mark.parametrize("where", ["in a value", "in a key", "alone"])
def test_invalid_utf8_in_a_bulk_body_is_a_400(api_client_with_scopes, url, where) -> None:
    field = url.split("/")[3].encode()
    body = {
        "in a value": b'{"' + field + b'": [{"source": "sh\xffop"}]}',
        "in a key": b'{"' + field + b'": [{"sour\xc3ce": "shop"}]}',
        "alone": b"\xff",
    }[where]
    response = api_client_with_scopes("*").post(url, body, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_encoding")
    assert not Customer.objects.exists()


@pytest.mark.django_db
def test_invalid_utf8_is_a_400_on_drf_endpoints(api_client_with_scopes) -> None:
    client = api_client_with_scopes("tags:write")
    # A stray byte, and a surrogate encoded in UTF-8 (not UTF-8: RFC 3629).
    for body in (b'{"name": "sh\xffop"}', b'{"name": "\xed\xa0\x80"}'):
        response = client.post("/api/v1/tag-groups", body, content_type="application/json")
        assert (response.status_code, response.json()["code"]) == (400, "invalid_encoding")
    assert not TagGroup.objects.exists()


@pytest.mark.django_db
def test_a_lone_surrogate_escape_is_a_400_not_a_500(api_client_with_scopes) -> None:
    """`"\\ud800"` is valid JSON that PostgreSQL's encoder refuses. A field that checks its
    text refuses it (invalid_input); anything else reaching the database is caught by the
    exception handler's safety net (invalid_encoding)."""
    client = api_client_with_scopes("tags:write")
    response = client.post(
        "/api/v1/tag-groups", b'{"name": "a\\ud800b"}', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_encoding", "invalid_input"}
    assert not TagGroup.objects.exists()


def test_the_safety_net_maps_an_unencodable_value_to_a_400() -> None:
    error = UnicodeEncodeError("utf-8", "a\ud800b", 1, 2, "surrogates not allowed")
    with translation.override("en"):
        response = exception_handler(error, {})
    assert response is not None
    assert (response.status_code, response.data) == (
        400,
        {"code": "invalid_encoding", "detail": "A value holds a character that is not text."},
    )


@pytest.mark.django_db
def test_options_answers_on_every_endpoint(api_client_with_scopes) -> None:
    client = api_client_with_scopes("*")
    urls = _api_urls()
    assert len(urls) >= 40
    group = GroupFactory()  # answered once the group exists, too (it was a 500)
    for url in [*urls, f"/api/v1/groups/{group.pk}/members"]:
        response = client.options(url)
        assert (url, response.status_code) == (url, 200)
        assert response.json()["name"]


@pytest.mark.django_db
def test_a_validation_error_names_each_field_under_its_path(api_client_with_scopes) -> None:
    client = api_client_with_scopes("tags:write", "campaigns:write")
    response = client.post("/api/v1/tag-groups", {"is_exclusive": "maybe"}, format="json")
    assert (response.status_code, response.json()) == (
        400,
        {
            "code": "invalid_input",
            "detail": "Invalid input.",
            "errors": {
                "name": ["This field is required."],
                "is_exclusive": ["Must be a valid boolean."],
            },
        },
    )
    nested = client.post(
        "/api/v1/campaigns",
        {
            "name": "x",
            "channel": "wecom_customer",
            "variants": [{"name": "A", "content": "hi"}, {}],
        },
        format="json",
    )
    assert (nested.status_code, nested.json()["code"]) == (400, "invalid_input")
    assert nested.json()["errors"] == {
        "variants.1.name": ["This field is required."],
        "variants.1.content": ["This field is required."],
    }
    assert not TagGroup.objects.exists()


@pytest.mark.django_db
def test_drf_errors_follow_the_contract(api_client_with_scopes, anonymous_client) -> None:
    reader = api_client_with_scopes("orders:read")
    cases = [
        (anonymous_client.get("/api/v1/orders"), 401, "not_authenticated"),
        (
            APIClient(HTTP_AUTHORIZATION="Api-Key nope", HTTP_ACCEPT_LANGUAGE="en").get(
                "/api/v1/orders"
            ),
            401,
            "authentication_failed",
        ),
        (reader.post("/api/v1/orders/bulk", {}, format="json"), 403, "permission_denied"),
        (reader.get("/api/v1/orders/999999"), 404, "not_found"),
        (reader.get("/api/v1/no-such-endpoint"), 404, "not_found"),
        (reader.get("/api/v1/orders/not-a-number"), 404, "not_found"),
        (api_client_with_scopes("*").delete("/api/v1/orders"), 405, "method_not_allowed"),
        (reader.get("/api/v1/orders", HTTP_ACCEPT="application/xml"), 406, "not_acceptable"),
        (
            api_client_with_scopes("tags:write").post(
                "/api/v1/tag-groups", "name=x", content_type="application/x-www-form-urlencoded"
            ),
            415,
            "unsupported_media_type",
        ),
        (
            api_client_with_scopes("tags:write").post(
                "/api/v1/tag-groups", b'{"name": ', content_type="application/json"
            ),
            400,
            "malformed_json",
        ),
    ]
    for response, status_code, code in cases:
        body = response.json()
        assert (response.status_code, body["code"], sorted(body)) == (
            status_code,
            code,
            ["code", "detail"],
        )
        assert isinstance(body["detail"], str)
        assert body["detail"]
    assert cases[0][0]["WWW-Authenticate"] == "Api-Key"
    assert not TagGroup.objects.exists()


def test_throttled_has_a_code_and_keeps_retry_after() -> None:
    with translation.override("en"):
        response = exception_handler(Throttled(wait=7), {})
    assert response is not None
    assert (response.status_code, response.data, response["Retry-After"]) == (
        429,
        {
            "code": "rate_limited",
            "detail": "Too many requests with this API key; retry in 7 seconds.",
            "retry_after": 7,
        },
        "7",
    )


@pytest.mark.django_db
def test_a_body_over_the_limit_is_a_413_with_a_code_on_drf_endpoints(
    api_client_with_scopes, settings
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = api_client_with_scopes("tags:write").post(
        "/api/v1/tag-groups", {"name": "x", "description": "d" * 200}, format="json"
    )
    assert (response.status_code, response.json()) == (
        413,
        {"code": "body_too_large", "detail": "The body is larger than 100 bytes."},
    )
    assert not TagGroup.objects.exists()


@pytest.mark.django_db
def test_an_unexpected_error_under_api_is_json(api_client_with_scopes, monkeypatch) -> None:
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("crm.api.tags.tag_group_list", broken)
    client = api_client_with_scopes("tags:read")
    client.raise_request_exception = False
    response = client.get("/api/v1/tag-groups")
    assert (response.status_code, response["Content-Type"], response.json()) == (
        500,
        "application/json",
        {"code": "server_error", "detail": "A server error occurred."},
    )


@pytest.mark.django_db
def test_a_tag_filter_that_is_not_ids_is_a_400(api_client_with_scopes) -> None:
    """Found by schemathesis: `?tag=AAA` was a 500 (int() in the filter's selector)."""
    response = api_client_with_scopes("customers:read").get("/api/v1/customers?tag=AAA")
    assert (response.status_code, response.json()["code"], list(response.json()["errors"])) == (
        400,
        "invalid_input",
        ["tag"],
    )
