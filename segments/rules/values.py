"""Values of the rule language: the operators, the forms a leaf's `value` may take, and the value
types that check a raw JSON value for an operator (raising RuleError with the path of the first
problem) and, for column types, write the SQL comparison of a column with the checked value.

Checked values are plain Python: Decimal for numbers, str, bool for `is_null`, tuples for lists
and `[low, high]` pairs, Day / Instant / DaysAgo for dates, and References for rows a rule names
(tags, tag groups, groups, segments), which the compiler looks up in one go."""

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Choices
from django.utils.translation import gettext as _

from core.validators import text_error
from segments.rules.errors import RuleError
from segments.rules.sql import Sql, param

NUMBER_OPS = frozenset(
    {"eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "between", "is_null"}
)
STRING_OPS = frozenset({"eq", "neq", "in", "not_in", "contains", "is_null"})
CHOICE_OPS = frozenset({"eq", "neq", "in", "not_in", "is_null"})
DATETIME_OPS = frozenset(
    {"gt", "gte", "lt", "lte", "between", "before", "after", "within_last_days", "is_null"}
)
COUNT_OPS = frozenset({"eq", "neq", "gt", "gte", "lt", "lte", "between"})
HAS_OPS = frozenset({"has", "has_any", "has_all", "has_none"})
SEGMENT_OPS = frozenset({"in", "not_in"})
ALL_OPS = NUMBER_OPS | STRING_OPS | DATETIME_OPS | HAS_OPS

T = TypeVar("T")


# --- References: rows a rule names, looked up by the compiler -------------------------------


@dataclass(frozen=True, kw_only=True)
class Reference:
    """A database row named in a rule. `path` says where, for the error if the row is gone; it
    takes no part in equality, so that one row named twice is looked up once."""

    path: str = field(compare=False)


@dataclass(frozen=True, kw_only=True)
class TagRef(Reference):
    """A tag by id, or by its group's name and its own."""

    tag_id: int | None = None
    group: str = ""
    name: str = ""

    def __str__(self) -> str:
        return str(self.tag_id) if self.tag_id is not None else f"{self.group}/{self.name}"


@dataclass(frozen=True, kw_only=True)
class TagGroupRef(Reference):
    """A tag group by id or by name."""

    group_id: int | None = None
    name: str = ""

    def __str__(self) -> str:
        return str(self.group_id) if self.group_id is not None else self.name


@dataclass(frozen=True, kw_only=True)
class GroupRef(Reference):
    group_id: int


@dataclass(frozen=True, kw_only=True)
class SegmentRef(Reference):
    segment_id: int


# --- Date values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    """A business day (settings.TIME_ZONE), written `"2026-01-01"`: it covers the whole day."""

    day: date


@dataclass(frozen=True)
class Instant:
    """An instant, written as an ISO datetime with a UTC offset."""

    at: datetime


@dataclass(frozen=True)
class DaysAgo:
    """`{"days_ago": N}`: the instant N days before the compilation's as_of."""

    days: int


DateValue = Day | Instant | DaysAgo


def business_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=business_zone())


def date_lower_bound(value: DateValue, *, as_of: datetime) -> datetime:
    """The first instant a date value covers."""
    if isinstance(value, Day):
        return start_of_day(value.day)
    if isinstance(value, Instant):
        return value.at
    return as_of - timedelta(days=value.days)


# --- Parsers shared by value types and parameter parsers -----------------------------------


def parse_bool(raw: object, path: str) -> bool:
    if not isinstance(raw, bool):
        raise RuleError(path, _("expected true or false"))
    return raw


# Sizes a rule's values may have. A list is checked for its length before any of its items,
# so that a list of a million values is refused at once. Strings compare with profile fields
# and names (at most 255 characters); a NUL or a lone surrogate cannot reach PostgreSQL.
MAX_LIST_LENGTH = 1000
MAX_STRING_LENGTH = 255


def parse_string(raw: object, path: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise RuleError(path, _("expected a non-empty string"))
    if len(raw) > MAX_STRING_LENGTH:
        raise RuleError(
            path,
            _("expected at most %(maximum)s characters") % {"maximum": MAX_STRING_LENGTH},
        )
    if text_error(raw) is not None:
        raise RuleError(path, _("the text holds a character that cannot be stored"))
    return raw


def parse_id(raw: object, path: str) -> int:
    # bool is an int to Python, never an id to an operator.
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise RuleError(path, _("expected an id (a positive whole number)"))
    return raw


# Day counts and dates a rule may name: a century either way keeps every date arithmetic of
# the compiler within Python's and PostgreSQL's calendars.
MAX_DAYS = 36_500
EARLIEST_YEAR, LATEST_YEAR = 1900, 2199


def parse_whole_number(raw: object, path: str, *, minimum: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
        raise RuleError(
            path, _("expected a whole number of at least %(minimum)s") % {"minimum": minimum}
        )
    return raw


def parse_day_count(raw: object, path: str, *, minimum: int) -> int:
    days = parse_whole_number(raw, path, minimum=minimum)
    if days > MAX_DAYS:
        raise RuleError(path, _("expected at most %(maximum)s days") % {"maximum": MAX_DAYS})
    return days


def parse_list(raw: object, path: str, item: Callable[[object, str], T]) -> tuple[T, ...]:
    """A non-empty list of at most MAX_LIST_LENGTH items, each checked by `item` at its own
    path."""
    if not isinstance(raw, list) or not raw:
        raise RuleError(path, _("expected a non-empty list"))
    if len(raw) > MAX_LIST_LENGTH:
        raise RuleError(
            path, _("expected at most %(maximum)s values") % {"maximum": MAX_LIST_LENGTH}
        )
    return tuple(item(value, f"{path}[{index}]") for index, value in enumerate(raw))


def parse_pair(raw: object, path: str, item: Callable[[object, str], T]) -> tuple[T, T]:
    """`[low, high]` for `between`."""
    if not isinstance(raw, list) or len(raw) != 2:
        raise RuleError(path, _("expected [low, high]"))
    return item(raw[0], f"{path}[0]"), item(raw[1], f"{path}[1]")


def parse_object(
    raw: object, path: str, *, allowed: frozenset[str], required: frozenset[str] = frozenset()
) -> Mapping[str, object]:
    """A JSON object with only `allowed` keys, holding every `required` one."""
    if not isinstance(raw, dict):
        raise RuleError(path, _("expected an object"))
    for key in raw:
        if key not in allowed:
            raise RuleError(f"{path}.{key}", _("unknown key"))
    for key in sorted(required):
        if key not in raw:
            raise RuleError(f"{path}.{key}", _("this key is required"))
    return raw


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


_YEARS = {"first": EARLIEST_YEAR, "last": LATEST_YEAR}


def parse_date_value(raw: object, path: str) -> DateValue:
    expected = _(
        'expected a date (YYYY-MM-DD), an ISO datetime with a UTC offset or {"days_ago": N}'
    )
    if isinstance(raw, dict):
        days = parse_object(
            raw, path, allowed=frozenset({"days_ago"}), required=frozenset({"days_ago"})
        )
        return DaysAgo(parse_day_count(days["days_ago"], f"{path}.days_ago", minimum=0))
    if not isinstance(raw, str):
        raise RuleError(path, expected)
    try:
        if _DAY.fullmatch(raw):
            day = date.fromisoformat(raw)
            if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
                raise RuleError(path, _("expected a year from %(first)s to %(last)s") % _YEARS)
            return Day(day)
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise RuleError(path, expected) from None
    if at.tzinfo is None:
        raise RuleError(path, expected)
    if not EARLIEST_YEAR <= at.year <= LATEST_YEAR:
        raise RuleError(path, _("expected a year from %(first)s to %(last)s") % _YEARS)
    return Instant(at)


# --- Value types ---------------------------------------------------------------------------


class ValueType(ABC):
    """Checks a leaf's value for an operator of the type."""

    ops: ClassVar[frozenset[str]]

    @abstractmethod
    def parse(self, op: str, raw: object, path: str) -> Any:
        """The checked value; raises RuleError naming the first problem."""


class ColumnType(ValueType):
    """The type of a value held in one column (or computed by one expression). Besides checking
    values it writes the comparison of that column with a checked value, for every operator
    but `is_null`: what a missing value looks like is known only where the column lives."""

    def parse(self, op: str, raw: object, path: str) -> Any:
        if op == "is_null":
            return parse_bool(raw, path)
        return self.parse_operand(op, raw, path)

    @abstractmethod
    def parse_operand(self, op: str, raw: object, path: str) -> Any:
        """The checked value of an operator other than `is_null`."""

    @abstractmethod
    def compare(self, op: str, value: Any, column: Sql, *, as_of: datetime) -> Sql:
        """The comparison; NULL when the column is, which the column's location turns false."""


_ORDERING = {"gt": " > ", "gte": " >= ", "lt": " < ", "lte": " <= "}


def _compare_equality(op: str, value: Any, column: Sql, *, array_type: str) -> Sql:
    if op == "eq":
        return column + " = " + param(value)
    if op == "neq":
        return column + " <> " + param(value)
    if op == "in":
        return column + " = ANY(" + param(list(value)) + f"::{array_type}[])"
    if op == "not_in":
        return column + " <> ALL(" + param(list(value)) + f"::{array_type}[])"
    raise ValueError(f"no equality operator {op}")


class NumberType(ColumnType):
    """Numbers, compared as NUMERIC. `is_integer` and the bounds narrow what a rule may say."""

    ops = NUMBER_OPS

    def __init__(
        self, *, is_integer: bool = False, minimum: int | None = None, maximum: int | None = None
    ) -> None:
        self.is_integer = is_integer
        self.minimum = minimum
        self.maximum = maximum

    def parse_number(self, raw: object, path: str) -> Decimal:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise RuleError(path, _("expected a number"))
        if isinstance(raw, float) and not math.isfinite(raw):
            raise RuleError(path, _("expected a number"))
        # Through str, so that 0.1 means 0.1 and not its binary approximation.
        number = Decimal(str(raw))
        if self.is_integer and number != number.to_integral_value():
            raise RuleError(path, _("expected a whole number"))
        too_small = self.minimum is not None and number < self.minimum
        too_large = self.maximum is not None and number > self.maximum
        if too_small or too_large:
            if self.maximum is None:
                message = _("expected a number of at least %(minimum)s")
            else:
                message = _("expected a number from %(minimum)s to %(maximum)s")
            raise RuleError(path, message % {"minimum": self.minimum, "maximum": self.maximum})
        return number

    def parse_operand(self, op: str, raw: object, path: str) -> Any:
        if op in ("in", "not_in"):
            return parse_list(raw, path, self.parse_number)
        if op == "between":
            low, high = parse_pair(raw, path, self.parse_number)
            if low > high:
                raise RuleError(path, _("the low bound exceeds the high bound"))
            return low, high
        return self.parse_number(raw, path)

    def compare(self, op: str, value: Any, column: Sql, *, as_of: datetime) -> Sql:
        if op in _ORDERING:
            return column + _ORDERING[op] + param(value)
        if op == "between":
            low, high = value
            return column + " BETWEEN " + param(low) + " AND " + param(high)
        return _compare_equality(op, value, column, array_type="numeric")


def count_comparison_holds(op: str, value: Any, count: int) -> bool:
    """Whether a count operator's comparison holds for `count`: the compiler must know whether
    customers without any counted row (a count of 0) match."""
    if op == "between":
        low, high = value
        return bool(low <= count <= high)
    holds: dict[str, bool] = {
        "eq": count == value,
        "neq": count != value,
        "gt": count > value,
        "gte": count >= value,
        "lt": count < value,
        "lte": count <= value,
    }
    return holds[op]


class StringType(ColumnType):
    """Text. `eq`, `in` compare exactly; `contains` is a case-insensitive substring."""

    ops = STRING_OPS

    def parse_operand(self, op: str, raw: object, path: str) -> Any:
        if op in ("in", "not_in"):
            return parse_list(raw, path, parse_string)
        return parse_string(raw, path)

    def compare(self, op: str, value: Any, column: Sql, *, as_of: datetime) -> Sql:
        if op == "contains":
            # LIKE's wildcards in the value are literal characters to the operator.
            escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return column + " ILIKE " + param(f"%{escaped}%")
        return _compare_equality(op, value, column, array_type="text")


class ChoiceType(ColumnType):
    """One of a fixed set of values (a model's TextChoices), with the labels operators read
    (`labels`, by value; the value itself where none is given)."""

    ops = CHOICE_OPS

    def __init__(self, choices: list[str], labels: Mapping[str, Any] | None = None) -> None:
        self.choices = tuple(choices)
        self.labels = dict(labels or {})

    @classmethod
    def of(cls, choices: type[Choices]) -> "ChoiceType":
        return cls(choices.values, labels=dict(choices.choices))

    def parse_choice(self, raw: object, path: str) -> str:
        if not isinstance(raw, str) or raw not in self.choices:
            raise RuleError(
                path, _("expected one of: %(choices)s") % {"choices": ", ".join(self.choices)}
            )
        return raw

    def parse_operand(self, op: str, raw: object, path: str) -> Any:
        if op in ("in", "not_in"):
            return parse_list(raw, path, self.parse_choice)
        return self.parse_choice(raw, path)

    def compare(self, op: str, value: Any, column: Sql, *, as_of: datetime) -> Sql:
        return _compare_equality(op, value, column, array_type="text")


class DateTimeType(ColumnType):
    """Instants. A Day value covers the whole business day: `gt`/`after` a day start at the
    next day, `lte` and the high end of `between` include the whole day, `lt`/`before` end
    at its start. Instant and DaysAgo values compare exactly."""

    ops = DATETIME_OPS

    def parse_operand(self, op: str, raw: object, path: str) -> Any:
        if op == "within_last_days":
            return parse_day_count(raw, path, minimum=1)
        if op == "between":
            return parse_pair(raw, path, parse_date_value)
        return parse_date_value(raw, path)

    def compare(self, op: str, value: Any, column: Sql, *, as_of: datetime) -> Sql:
        if op == "within_last_days":
            return column + " >= " + param(as_of - timedelta(days=value))
        if op == "between":
            low, high = value
            return (
                self.compare("gte", low, column, as_of=as_of)
                + " AND "
                + self.compare("lte", high, column, as_of=as_of)
            )
        op = {"before": "lt", "after": "gt"}.get(op, op)
        start = date_lower_bound(value, as_of=as_of)
        if isinstance(value, Day) and op in ("gt", "lte"):
            # Past the whole day: from the start of the next one.
            next_day = start_of_day(value.day + timedelta(days=1))
            return column + (" >= " if op == "gt" else " < ") + param(next_day)
        return column + _ORDERING[op] + param(start)


def parse_tag_ref(raw: object, path: str) -> TagRef:
    if isinstance(raw, dict):
        named = parse_object(
            raw, path, allowed=frozenset({"group", "name"}), required=frozenset({"group", "name"})
        )
        return TagRef(
            path=path,
            group=parse_string(named["group"], f"{path}.group"),
            name=parse_string(named["name"], f"{path}.name"),
        )
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise RuleError(path, _('expected a tag id or {"group": ..., "name": ...}'))
    return TagRef(path=path, tag_id=parse_id(raw, path))


def parse_group_ref(raw: object, path: str) -> GroupRef:
    return GroupRef(path=path, group_id=parse_id(raw, path))


def parse_segment_ref(raw: object, path: str) -> SegmentRef:
    return SegmentRef(path=path, segment_id=parse_id(raw, path))


class TagsType(ValueType):
    """Tags held: `has` one tag, the others a list."""

    ops = HAS_OPS

    def parse(self, op: str, raw: object, path: str) -> Any:
        if op == "has":
            return parse_tag_ref(raw, path)
        return parse_list(raw, path, parse_tag_ref)


class TagGroupType(ValueType):
    """A tag group, by id or by name."""

    ops = frozenset({"has", "has_none"})

    def parse(self, op: str, raw: object, path: str) -> Any:
        if isinstance(raw, str) and raw:
            return TagGroupRef(path=path, name=raw)
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise RuleError(path, _("expected a tag group id or name"))
        return TagGroupRef(path=path, group_id=parse_id(raw, path))


class GroupsType(ValueType):
    """Groups (社群) by id: `has` one, the others a list."""

    ops = HAS_OPS

    def parse(self, op: str, raw: object, path: str) -> Any:
        if op == "has":
            return parse_group_ref(raw, path)
        return parse_list(raw, path, parse_group_ref)


class SegmentsType(ValueType):
    """A list of segment ids."""

    ops = SEGMENT_OPS

    def parse(self, op: str, raw: object, path: str) -> Any:
        return parse_list(raw, path, parse_segment_ref)
