"""Production settings: `check --deploy` passes with strong values, HTTPS is enforced (the
local health probe excepted), and a weak secret stops the service before it starts. Each case
runs in a process of its own with DJANGO_ENV=production."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
# Strong values, fixed so that a failure is reproducible; never used outside these tests.
SECRET_KEY = "k7Qv2pX9sLm4Rz8Tn1Wb6Yc3Hd5Jf0Ge-Aq_Bw7Ex2Ur9Io4Pl1Ks8Mj3Nh6Vt0Zy5"
PII_HASH_KEY = "Xw4Lq9Zr2Tp7Nv1Ks6Hd3Jm8Bf5Gc0Ya-Ue_Ri4Oo7"
FERNET_KEY = "q6vE3m6q2x2m0bT1bN7kP9yZ4sW8rL5dH3jF1gK0aCc="


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PII_", "WEBHOOK_", "API_RATE_"))
    }
    env.update(
        {
            "DJANGO_ENV": "production",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_SECRET_KEY": SECRET_KEY,
            "DJANGO_ALLOWED_HOSTS": "crm.example.com,testserver",
            "PII_HASH_KEY": PII_HASH_KEY,
            "PII_ENCRYPTION_KEYS": FERNET_KEY,
            "DATABASE_URL": os.environ.get(
                "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/crm"
            ),
            "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
        }
    )
    env.update(overrides)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_deploy_check_passes_with_the_production_settings() -> None:
    ran = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env())
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "System check identified no issues (0 silenced)." in ran.stdout


PROBE = """
import django
django.setup()
from django.test import Client
client = Client()
admin = client.get("/admin/")
print("admin", admin.status_code, admin.get("Location"))
forwarded = client.get("/admin/", headers={"X-Forwarded-Proto": "https"})
print("forwarded", forwarded.status_code, forwarded.get("Strict-Transport-Security"))
health = client.get("/healthz")
print("healthz", health.status_code == 301, health.get("Location"))
"""


def test_plain_http_is_redirected_but_the_local_health_probe() -> None:
    lines = run(["-c", PROBE], production_env()).stdout.splitlines()
    assert lines[-3:] == [
        "admin 301 https://testserver/admin/",
        # Without DJANGO_SECURE_PROXY_SSL_HEADER, a client's X-Forwarded-Proto is not believed.
        "forwarded 301 None",
        "healthz False None",
    ]


def test_behind_a_tls_proxy_its_header_marks_requests_secure() -> None:
    env = production_env(DJANGO_SECURE_PROXY_SSL_HEADER="1")
    lines = run(["-c", PROBE], env).stdout.splitlines()
    assert lines[-2] == "forwarded 302 max-age=31536000; includeSubDomains; preload"


ALL_ZERO_FERNET_KEY = base64.urlsafe_b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("DJANGO_SECRET_KEY", "Short-but-varied-0123456789", "is shorter than 50 characters"),
        ("DJANGO_SECRET_KEY", "ab" * 40, "has fewer than 10 distinct characters"),
        (
            "DJANGO_SECRET_KEY",
            "django-insecure-" + SECRET_KEY,
            "has Django's 'django-insecure-' prefix",
        ),
        (
            "DJANGO_SECRET_KEY",
            "insecure-development-key-change-me-0123456789abcdef",
            "is a published example value",
        ),
        ("PII_HASH_KEY", "hash-key-0123456789", "is shorter than 32 characters"),
        ("PII_HASH_KEY", "changeme", "is a published example value"),
        ("PII_ENCRYPTION_KEYS", "not-a-fernet-key", "key 1 is not a Fernet key generated at"),
        (
            "PII_ENCRYPTION_KEYS",
            f"{FERNET_KEY},{ALL_ZERO_FERNET_KEY}",
            "key 2 is not a Fernet key generated at random",
        ),
    ],
)
def test_a_weak_secret_stops_production_from_starting(
    variable: str, value: str, reason: str
) -> None:
    ran = run(["manage.py", "check"], production_env(**{variable: value}))
    assert ran.returncode == 1
    last_line = ran.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"django.core.exceptions.ImproperlyConfigured: {variable}")
    assert reason in last_line
    assert value not in ran.stderr
    assert value not in ran.stdout
