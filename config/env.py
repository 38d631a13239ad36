"""Environment helpers: every environment-specific value is read through `get_from_env`."""

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
