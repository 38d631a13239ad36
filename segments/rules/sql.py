"""SQL fragments with their parameters, composed by concatenation so that the `%s` placeholders
and the values they stand for can never drift apart. Values only ever enter as parameters; text
comes from the field registry and the compiler, never from a rule."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sql:
    """SQL text with psycopg `%s` placeholders and their values, in order."""

    text: str
    params: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        # Any other `%` would be read by psycopg as a placeholder: patterns travel as values.
        placeholders = self.text.count("%s")
        if placeholders != len(self.params) or self.text.count("%") != placeholders:
            raise ValueError(f"SQL text and parameters disagree: {self.text!r}")

    def __add__(self, other: "Sql | str") -> "Sql":
        if isinstance(other, str):
            other = Sql(other)
        return Sql(self.text + other.text, self.params + other.params)

    def __radd__(self, other: str) -> "Sql":
        return Sql(other) + self


def param(value: Any) -> Sql:
    """One value, as a placeholder."""
    return Sql("%s", (value,))


def join(separator: str, parts: Iterable[Sql]) -> Sql:
    joined = Sql("")
    for index, part in enumerate(parts):
        joined = joined + separator + part if index else part
    return joined


def is_member(key: str, subquery: Sql) -> Sql:
    """`key IN (subquery)`: PostgreSQL runs it as a semi-join at the top of a WHERE and as a
    hashed subplan (built once, probed per row) under OR and NOT. The subquery's column must
    never be NULL, or a non-member would come out NULL instead of false."""
    return key + " IN (" + subquery + ")"


def negate(condition: Sql) -> Sql:
    return "NOT (" + condition + ")"
