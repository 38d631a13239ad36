"""Environment helpers: rate lists."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import str_to_rates


@pytest.mark.parametrize(
    ("value", "rates"),
    [
        ("30/min,1000/day", [(30, 60), (1000, 86400)]),
        ("5/s, 100/hour", [(5, 1), (100, 3600)]),
        ("off", []),
        ("None", []),
    ],
)
def test_rates_are_read_as_requests_per_seconds(value: str, rates: list[tuple[int, int]]) -> None:
    assert str_to_rates(value) == rates


@pytest.mark.parametrize("value", ["30", "30/fortnight", "0/min", "-1/min", "x/min", ","])
def test_a_malformed_rate_is_refused(value: str) -> None:
    with pytest.raises(ImproperlyConfigured):
        str_to_rates(value)
