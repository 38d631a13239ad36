"""The field registry of the rule language: each field a rule can name, with its value type, the
operators it accepts, its parameters and how a leaf on it compiles to SQL. The compiler knows no
field by name. The built-in fields register themselves (segments.rules.builtin) exactly as the
predicted ones do (segments.predictive.fields), through `register_field`:

    register_field(
        name="churn_risk",
        label=_("churn risk"),
        category=FieldCategory.PREDICTIONS,
        value_type=NumberType(minimum=0, maximum=1),
        column=KeyedColumn(table="segments_customerprediction", column="churn_risk"),
    )

A field's value lives either in a column (`column=`: RowColumn on the customer or metrics row,
KeyedColumn in another customer-keyed table), compared by its value type (segments.rules.values:
NumberType, StringType, ChoiceType, DateTimeType), or is computed by a function of its own
(`compiler=`, given the checked Leaf and the CompileContext). Either way a leaf compiles to a
condition that is true or false, never NULL.

A field's `label` and `category` (and its params' `ParamSpec`s) are what the segment builder
shows operators: the registry is the builder's one list of fields (segments.rules.catalogue)."""

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any, Protocol

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from segments.rules.sql import Sql, is_member, negate
from segments.rules.values import (
    ALL_OPS,
    ColumnType,
    Reference,
    TagGroupRef,
    TagRef,
    ValueType,
    business_zone,
)


class FieldCategory(models.TextChoices):
    """Where the builder lists a field, in this order."""

    PROFILE = "profile", _("Profile")
    TAGS = "tags", _("Tags")
    GROUPS = "groups", _("Group chats")
    CONSENT = "consent", _("Marketing consent")
    METRICS = "metrics", _("Orders and lifecycle")
    BEHAVIOUR = "behaviour", _("Behaviour")
    PREDICTIONS = "predictions", _("Predictions")
    SEGMENTS = "segments", _("Segments")


class ParamKind(models.TextChoices):
    """How the builder asks for a param's value (codes only: operators never read them)."""

    TEXTS = "texts"  # a non-empty list of strings
    DAYS = "days"  # a whole number of days, at least 1
    CHOICE = "choice"  # one of `choices`
    GROUP = "group"  # a group (社群) id


@dataclass(frozen=True)
class ParamSpec:
    """One key a field's params may hold, as the builder offers it. Keys sharing an
    `alternative_of` name are alternatives: exactly one of them is given."""

    key: str
    label: str | Promise
    kind: ParamKind
    is_required: bool = False
    choices: tuple[tuple[str, str | Promise], ...] = ()
    alternative_of: str = ""


@dataclass(frozen=True)
class CompileContext:
    """What a field's compiler may use besides the leaf: the instant relative dates count from,
    the ids the rule's references resolved to, and the conditions of referenced segments."""

    as_of: datetime
    tag_ids: Mapping[TagRef, int]
    tag_group_ids: Mapping[TagGroupRef, int]
    segment_kinds: Mapping[int, str]
    segment_condition: Callable[[int], Sql]

    @property
    def business_date(self) -> date:
        return self.as_of.astimezone(business_zone()).date()


@dataclass(frozen=True)
class Leaf:
    """A checked condition on one field: `value` and `params` are what the field's value type
    and parameter parser made of the rule's JSON."""

    path: str
    field: "Field"
    op: str
    value: Any
    params: Mapping[str, Any]

    def references(self) -> Iterator[Reference]:
        yield from _references_in(self.value)
        yield from _references_in(self.params)


def _references_in(value: object) -> Iterator[Reference]:
    if isinstance(value, Reference):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _references_in(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _references_in(item)


FieldCompiler = Callable[[Leaf, CompileContext], Sql]
# Gets the leaf's raw "params" (None when absent) and their path; raises RuleError.
ParamsParser = Callable[[object, str], Mapping[str, Any]]


@dataclass(frozen=True)
class Field:
    name: str
    label: str | Promise
    category: FieldCategory
    value_type: ValueType
    ops: frozenset[str]
    compiler: FieldCompiler
    params_parser: ParamsParser | None
    params: tuple[ParamSpec, ...]
    picks: str


class Column(Protocol):
    """Where a column field's value lives, and so how a comparison and `is_null` reach it."""

    def condition(self, leaf: Leaf, value_type: ColumnType, ctx: CompileContext) -> Sql: ...


@dataclass(frozen=True)
class RowColumn:
    """A value on the customer's row or its metrics row: an SQL expression over the aliases `c`
    (crm_customer) and `m` (segments_customermetrics, LEFT JOINed, so NULL for a customer who
    has no metrics row yet). `expression` may depend on the compilation (as_of)."""

    expression: Sql | Callable[[CompileContext], Sql]
    is_nullable: bool = False

    def condition(self, leaf: Leaf, value_type: ColumnType, ctx: CompileContext) -> Sql:
        column = self.expression(ctx) if callable(self.expression) else self.expression
        if leaf.op == "is_null":
            return column + (" IS NULL" if leaf.value else " IS NOT NULL")
        comparison = value_type.compare(leaf.op, leaf.value, column, as_of=ctx.as_of)
        if self.is_nullable:
            # A comparison with a missing value is false, not NULL (two-valued logic).
            return "(" + comparison + ") IS TRUE"
        return comparison


@dataclass(frozen=True)
class KeyedColumn:
    """A value in another table holding at most one row per key (under `row_filter`, a fixed
    SQL condition over the alias `k`). A leaf becomes set membership,
    `key IN (SELECT k.key_column FROM table k WHERE row_filter AND <comparison of k.column>)`,
    and a customer without such a row has a missing (NULL) value. `key_column` must be NOT
    NULL; a nullable `key` (c.owner_id) makes the membership test itself possibly NULL, which
    `IS TRUE` turns false."""

    table: str
    column: str
    key: str = "c.id"
    key_column: str = "customer_id"
    row_filter: Sql | None = None
    is_key_nullable: bool = False

    def condition(self, leaf: Leaf, value_type: ColumnType, ctx: CompileContext) -> Sql:
        column = Sql(f"k.{self.column}")
        if leaf.op == "is_null":
            test = column + " IS NOT NULL"
        else:
            test = value_type.compare(leaf.op, leaf.value, column, as_of=ctx.as_of)
        # Table and column names come from the registry, never from a rule.
        rows = Sql(f"SELECT k.{self.key_column} FROM {self.table} k WHERE ")  # noqa: S608
        if self.row_filter is not None:
            rows = rows + self.row_filter + " AND "
        membership = is_member(self.key, rows + "(" + test + ")")
        if self.is_key_nullable:
            membership = "(" + membership + ") IS TRUE"
        # `is_null true` is the one test that holds for a customer without a value.
        return negate(membership) if leaf.op == "is_null" and leaf.value else membership


_REGISTRY: dict[str, Field] = {}


def register_field(
    *,
    name: str,
    label: str | Promise,
    category: FieldCategory,
    value_type: ValueType,
    column: Column | None = None,
    compiler: FieldCompiler | None = None,
    ops: Iterable[str] | None = None,
    params_parser: ParamsParser | None = None,
    params: Iterable[ParamSpec] = (),
    picks: str = "",
) -> Field:
    """Add a field to the language. Give `column` for a value held in one column (compared by
    `value_type`, a ColumnType) or `compiler` for anything else. `ops` narrows the value type's
    operators; `params_parser` admits a "params" object on the field's leaves, and `params`
    says what the builder asks for it. `label` (lazily translated) and `category` are what
    operators see; `picks` names the list the builder picks the field's values from by name
    (segments.selectors.RULE_REFERENCE_KINDS), for a field whose values are rows' keys. Names
    are the public contract of stored rules: one name, one field, for good."""
    if name in _REGISTRY:
        raise ValueError(f"rule field {name!r} is registered already")
    field_ops = value_type.ops if ops is None else frozenset(ops)
    if not field_ops <= value_type.ops or not field_ops <= ALL_OPS:
        raise ValueError(f"rule field {name!r}: operators {sorted(field_ops)} not of its type")
    field_compiler: FieldCompiler
    if column is not None and compiler is None:
        if not isinstance(value_type, ColumnType):
            raise ValueError(f"rule field {name!r}: a column needs a column value type")
        field_compiler = partial(_compile_column, column, value_type)
    elif compiler is not None and column is None:
        field_compiler = compiler
    else:
        raise ValueError(f"rule field {name!r} needs exactly one of column and compiler")
    specs = tuple(params)
    if specs and params_parser is None:
        raise ValueError(f"rule field {name!r}: params offered without a params parser")
    field = Field(
        name=name,
        label=label,
        category=category,
        value_type=value_type,
        ops=field_ops,
        compiler=field_compiler,
        params_parser=params_parser,
        params=specs,
        picks=picks,
    )
    _REGISTRY[name] = field
    return field


def _compile_column(column: Column, value_type: ColumnType, leaf: Leaf, ctx: CompileContext) -> Sql:
    return column.condition(leaf, value_type, ctx)


def field_named(name: str) -> Field | None:
    return _REGISTRY.get(name)


def registered_fields() -> list[Field]:
    """Every field, in the order of registration."""
    return list(_REGISTRY.values())
