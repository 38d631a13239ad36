"""Schemathesis against the served OpenAPI schema of a running test server (`make fuzz`, and
in CI): every operation, bounded examples, with a key of every scope. The API must never
answer 500, and every response must match the schema (status and body), errors included.

Excluded: `POST /campaigns/{id}/launch` (it would send through a channel; its state rules are
tested in tests/campaigns). Rate limits are off for the run. Tasks run in the server's process
(eager), so nothing is left on a broker. Marked `fuzz`: `make test` leaves it out, `make fuzz`
runs it alone."""

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from config.celery import app
from core.services.api_keys import api_key_create

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
# Examples per operation in the fuzzing phase (the coverage phase, boundary values of each
# parameter, comes first), bounded so the run takes about five minutes on two cores.
MAX_EXAMPLES = 10
TIMEOUT_SECONDS = 900


@pytest.mark.fuzz
@pytest.mark.django_db(transaction=True)
def test_the_api_keeps_its_schema_under_fuzzing(
    live_server, monkeypatch, settings, tmp_path
) -> None:
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    # Thousands of requests on one key: rate limits off, so that every operation is exercised
    # rather than answered 429 (the limits have their own tests).
    settings.API_RATE_LIMITS = {}
    monkeypatch.setattr(logging.getLogger("django.request"), "level", logging.ERROR)  # 4xx
    _, raw_key = api_key_create(name="fuzz", scopes=["*"])
    report = tmp_path / "schemathesis.txt"
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{live_server.url}/api/schema/",
        "--header",
        f"Authorization: Api-Key {raw_key}",
        "--header",
        "Accept-Language: en",
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "14",
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--exclude-path-regex",
        r"/launch$",
        "--request-timeout",
        "30",
    ]
    with report.open("w") as output:
        result = subprocess.run(
            command,
            cwd=tmp_path,  # its cache folder (.schemathesis) goes there
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    text = report.read_text()
    print(text)  # the run's summary, shown when the test fails
    assert result.returncode == 0, text[-20000:]
