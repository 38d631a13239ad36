"""Retrying a whole transaction that PostgreSQL aborted to break a deadlock or a serialization
conflict. Only the outermost transaction can be retried: inside another one, the error goes up."""

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import OperationalError, connection
from psycopg import errors as pg_errors

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

ATTEMPTS = 4
_RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


def on_deadlock_retry(function: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if connection.in_atomic_block:
            return function(*args, **kwargs)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return function(*args, **kwargs)
            except OperationalError as error:
                if attempt == ATTEMPTS or not isinstance(error.__cause__, _RETRYABLE):
                    raise
                logger.warning(
                    "transaction.retry",
                    extra={"function": function.__name__, "attempt": attempt},
                )
                time.sleep(random.uniform(0.01, 0.05) * attempt)
        raise AssertionError("unreachable")

    return wrapper
