"""The predicted fields of the rule language, registered as any field is: values of the latest
scoring (segments_customerprediction, one row per buyer; a customer who never paid has none,
so every comparison on them is false and only `is_null` sees them)."""

from django.utils.translation import gettext_lazy as _

from segments.rules.fields import FieldCategory, KeyedColumn, register_field
from segments.rules.values import NumberType

_PREDICTIONS = "segments_customerprediction"
_PROBABILITY = NumberType(minimum=0, maximum=1)

register_field(
    name="predicted_value",
    label=_("predicted value"),
    category=FieldCategory.PREDICTIONS,
    value_type=NumberType(),
    column=KeyedColumn(table=_PREDICTIONS, column="predicted_value"),
)
register_field(
    name="expected_purchases",
    label=_("expected purchases"),
    category=FieldCategory.PREDICTIONS,
    value_type=NumberType(minimum=0),
    column=KeyedColumn(table=_PREDICTIONS, column="expected_purchases"),
)
register_field(
    name="p_alive",
    label=_("probability still a customer"),
    category=FieldCategory.PREDICTIONS,
    value_type=_PROBABILITY,
    column=KeyedColumn(table=_PREDICTIONS, column="p_alive"),
)
register_field(
    name="churn_risk",
    label=_("churn risk"),
    category=FieldCategory.PREDICTIONS,
    value_type=_PROBABILITY,
    column=KeyedColumn(table=_PREDICTIONS, column="churn_risk"),
)
register_field(
    name="cluster",
    label=_("behaviour cluster"),
    category=FieldCategory.PREDICTIONS,
    value_type=NumberType(is_integer=True, minimum=1),
    column=KeyedColumn(table=_PREDICTIONS, column="cluster"),
)
