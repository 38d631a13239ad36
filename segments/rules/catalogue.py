"""The rule language as the segment builder shows it: every registered field, by category, with
its label, the operators it takes (labelled), how its value is given and its params, in the
active language. Built from the field registry, the one list of fields, so that a field
registered anywhere (the predicted ones, say) appears in the builder as it is."""

from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from segments.rules.fields import Field, FieldCategory, ParamSpec, registered_fields
from segments.rules.values import (
    ChoiceType,
    DateTimeType,
    GroupsType,
    NumberType,
    SegmentsType,
    StringType,
    TagGroupType,
    TagsType,
    ValueType,
)

# The order operators are offered in.
OP_ORDER = (
    "eq",
    "neq",
    "in",
    "not_in",
    "contains",
    "has",
    "has_any",
    "has_all",
    "has_none",
    "within_last_days",
    "after",
    "before",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "is_null",
)

_OP_LABELS: dict[str, str | Promise] = {
    "eq": _("equals"),
    "neq": _("does not equal"),
    "in": _("is one of"),
    "not_in": _("is none of"),
    "gt": _("greater than"),
    "gte": _("at least"),
    "lt": _("less than"),
    "lte": _("at most"),
    "between": _("between"),
    "contains": _("contains"),
    "has": _("includes"),
    "has_any": _("includes any of"),
    "has_all": _("includes all of"),
    "has_none": _("includes none of"),
}
# Labels that read better for a kind of value; `gt` and `lt` of a date say what `after` and
# `before` say, so the builder lists them only where a rule already uses them.
_KIND_OP_LABELS: dict[str, dict[str, str | Promise]] = {
    "choice": {"eq": _("is"), "neq": _("is not")},
    "datetime": {
        "after": _("after"),
        "before": _("before"),
        "gt": _("after"),
        "lt": _("before"),
        "gte": _("on or after"),
        "lte": _("on or before"),
        "within_last_days": _("within the last days"),
    },
    "tag_group": {"has_none": _("does not include")},
    "segment": {"in": _("is in any of"), "not_in": _("is in none of")},
}
_ALIASES = {"datetime": frozenset({"gt", "lt"})}


def _value_kind(value_type: ValueType) -> str:
    kinds: list[tuple[type[ValueType], str]] = [
        (ChoiceType, "choice"),
        (NumberType, "number"),
        (StringType, "string"),
        (DateTimeType, "datetime"),
        (TagsType, "tag"),
        (TagGroupType, "tag_group"),
        (GroupsType, "group"),
        (SegmentsType, "segment"),
    ]
    for value_class, kind in kinds:
        if isinstance(value_type, value_class):
            return kind
    raise ValueError(f"no builder kind for {type(value_type).__name__}")


def _param(spec: ParamSpec) -> dict[str, Any]:
    return {
        "key": spec.key,
        "label": str(spec.label),
        "kind": spec.kind.value,
        "required": spec.is_required,
        "alternative_of": spec.alternative_of,
        "choices": [{"code": code, "label": str(label)} for code, label in spec.choices],
    }


def _field(field: Field) -> dict[str, Any]:
    kind = _value_kind(field.value_type)
    labels = {**_OP_LABELS, **_KIND_OP_LABELS.get(kind, {})}
    aliases = _ALIASES.get(kind, frozenset())
    described: dict[str, Any] = {
        "name": field.name,
        "label": str(field.label),
        "kind": kind,
        "ops": [
            {"code": op, "label": str(labels[op]), "alias": op in aliases}
            for op in OP_ORDER
            if op in field.ops and op != "is_null"
        ],
        "params": [_param(spec) for spec in field.params],
        "picks": field.picks,
    }
    if "is_null" in field.ops:
        # Two choices of the operator, each with its fixed value.
        described["ops"] += [
            {"code": "is_null", "value": True, "label": str(_("is empty")), "alias": False},
            {"code": "is_null", "value": False, "label": str(_("is not empty")), "alias": False},
        ]
    value_type = field.value_type
    if isinstance(value_type, NumberType):
        described.update(
            integer=value_type.is_integer, minimum=value_type.minimum, maximum=value_type.maximum
        )
    if isinstance(value_type, ChoiceType):
        described["choices"] = [
            {"code": code, "label": str(value_type.labels.get(code, code))}
            for code in value_type.choices
        ]
    return described


def rule_catalogue() -> dict[str, Any]:
    """The builder's data (JSON-ready, labels in the active language): `categories`, each with
    its `fields` in registration order. `is_null` is offered as two operators, each with its
    `value`."""
    fields = registered_fields()
    categories = [
        {
            "code": category.value,
            "label": str(category.label),
            "fields": [_field(field) for field in fields if field.category == category],
        }
        for category in FieldCategory
    ]
    return {"categories": [category for category in categories if category["fields"]]}
