"""Environment helpers: every environment-specific value is read through `get_from_env`."""

import base64
import os
from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def str_to_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"Not a boolean: {value!r}")


def str_to_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def get_from_env(
    name: str,
    default: T | None = None,
    *,
    cast: Callable[[str], T] | None = None,
    required_in_production: bool = False,
) -> T:
    """Read `name` from the environment, cast it, and fail fast where production requires it."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        if required_in_production and is_production():
            raise ImproperlyConfigured(f"{name} must be set when DJANGO_ENV=production")
        return default  # type: ignore[return-value]
    if cast is None:
        return raw  # type: ignore[return-value]
    return cast(raw)


def is_production() -> bool:
    return os.environ.get("DJANGO_ENV", "development") == "production"


_RATE_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_RATE_PERIODS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATES_OFF = {"off", "none"}


def str_to_rates(value: str) -> list[tuple[int, int]]:
    """Rate limits as `30/min,1000/day`: (requests, seconds) pairs, each one enforced; `off`
    (or `none`) for no limit."""
    if value.strip().lower() in _RATES_OFF:
        return []
    rates: list[tuple[int, int]] = []
    for item in str_to_list(value):
        count, _sep, period = item.partition("/")
        seconds = _RATE_PERIODS.get(period.strip().lower())
        if not count.strip().isdigit() or int(count) < 1 or seconds is None:
            raise ImproperlyConfigured(
                f"Not a rate: {item!r} (expected N/s, N/min, N/hour or N/day, comma-separated)"
            )
        rates.append((int(count), seconds))
    if not rates:
        raise ImproperlyConfigured("An empty rate list: give rates such as 30/min, or off")
    return rates


# Values published as examples (in Django's and this project's docs) and never secret.
_KNOWN_EXAMPLE_SECRETS = frozenset(
    {
        "insecure-development-key-change-me-0123456789abcdef",
        "change-me",
        "changeme",
        "secret",
        "your-secret-key",
        "your-secret-key-here",
    }
)
SECRET_MIN_LENGTH = 32
SECRET_MIN_UNIQUE_CHARACTERS = 10


def check_secret_strength(name: str, value: str, *, min_length: int = SECRET_MIN_LENGTH) -> None:
    """Refuse a weak secret (raise ImproperlyConfigured naming `name`, never the value): shorter
    than `min_length`, fewer than SECRET_MIN_UNIQUE_CHARACTERS distinct characters, with
    Django's `django-insecure-` prefix, or a published example value."""
    problem = None
    if value.strip().lower() in _KNOWN_EXAMPLE_SECRETS:
        problem = "is a published example value"
    elif value.startswith("django-insecure-"):
        problem = "has Django's 'django-insecure-' prefix (a generated development key)"
    elif len(value) < min_length:
        problem = f"is shorter than {min_length} characters"
    elif len(set(value)) < SECRET_MIN_UNIQUE_CHARACTERS:
        problem = f"has fewer than {SECRET_MIN_UNIQUE_CHARACTERS} distinct characters"
    if problem is not None:
        raise ImproperlyConfigured(
            f"{name} {problem}; set a long random value, e.g. from "
            '`python -c "import secrets; print(secrets.token_urlsafe(50))"`'
        )


def check_fernet_keys(name: str, keys: list[str]) -> None:
    """Refuse a key list that is empty or holds anything but valid Fernet keys (32 url-safe
    base64-encoded random bytes), naming `name` and the position, never the value."""
    from cryptography.fernet import Fernet

    if not keys:
        raise ImproperlyConfigured(f"{name} holds no key")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
            # A valid key of few distinct bytes (all zeros, say) was typed, not generated.
            is_weak = len(set(base64.urlsafe_b64decode(key.encode()))) < 16
        except (ValueError, TypeError):
            is_weak = True
        if is_weak:
            raise ImproperlyConfigured(
                f"{name}: key {position} is not a Fernet key generated at random (32 url-safe "
                "base64-encoded random bytes); generate one with `python -c "
                '"from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"`'
            )
