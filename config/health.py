"""`GET /healthz`: the state of the database and the broker; 200 when both answer, else 503."""

import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from config.celery import app

logger = logging.getLogger(__name__)


def _database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception:
        logger.exception("healthz.database_unavailable")
        return "unavailable"


def _broker_state() -> str:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception:
        logger.exception("healthz.broker_unavailable")
        return "unavailable"


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_state(), "broker": _broker_state()}
    healthy = all(state == "ok" for state in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )
