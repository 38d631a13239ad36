"""The API's error mapping: nothing a caller sends, and no race it loses, answers 500."""

from django.db import DataError, IntegrityError
from django.utils import translation

from crm.api.errors import exception_handler
from crm.errors import Conflict


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
